"""The `fab` door: `fab -H web[01-99] deploy --env=prod`, `fab rollback`, `fab status`,
`fab -H 'web*' exec 'uptime'`, `fab run rolling-deploy --param recipe=hello`.

Fabric would run each task once per `-H` host, one after another, after
splitting the list on commas (which also breaks `web[01-03,07]`).  A rollout
must be ONE parallel run over all hosts, so this fabfile asks Fabric's
executor not to fan tasks out per host and hands the raw `-H` string to
fleetdist, which expands patterns and groups itself.  No logic lives here:
flags default to None (fleetdist applies its own defaults) and reach it as
typed, so every bad value or unknown flag gets fleetdist's own one-line error
and exit code 2 (`doors.install_usage_errors`).
"""

from __future__ import annotations

import shlex
from typing import Any

from fabric import executor
from invoke import task

from fleetdist.doors import install_usage_errors, run_verb, usage_exit

_expand_calls = executor.Executor.expand_calls


def _one_rollout(self: Any, calls: Any, apply_hosts: bool = True) -> Any:
    hosts = self.core[0].args.hosts.value
    self.config.load_overrides({"fleetdist_hosts": hosts or ""})
    return _expand_calls(self, calls, apply_hosts=False)


executor.Executor.expand_calls = _one_rollout  # type: ignore[method-assign]
install_usage_errors()


def _hosts(c: Any) -> list[str]:
    value = c.config.get("fleetdist_hosts") or ""
    return [value] if value else []


@task(iterable=["exclude", "limit"])
def deploy(c, env=None, recipe=None, inventory=None, exclude=None, limit=None, canary=None,
           batch=None, parallel=None, max_connect=None, max_fail=None, on_failure=None,
           lock_wait=None, artifact=None, release=None, version=None, resume=None,
           force_unlock=False, dry_run=False, json=False, accept_new_host_keys=False,
           persist=None, yes=False):  # fmt: skip
    """Roll out a release: prepare (stage + test in place) everywhere, then cut over."""
    run_verb("deploy", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, limit=limit, yes=yes, canary=canary, batch=batch, parallel=parallel,
             max_connect=max_connect, max_fail=max_fail, on_failure=on_failure,
             lock_wait=lock_wait, artifact=artifact, release=release, version=version,
             resume=resume,
             force_unlock=force_unlock, dry_run=dry_run, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


@task(iterable=["exclude", "limit"])
def rollback(c, env=None, recipe=None, inventory=None, exclude=None, limit=None, to=None,
             run=None, step_back=False, allow_untested=False, yes=False,
             parallel=None, max_connect=None, lock_wait=None, json=False,
             accept_new_host_keys=False, persist=None):  # fmt: skip
    """Undo the last rollout: its hosts flip back (run it again to flip forward)."""
    run_verb("rollback", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, limit=limit, yes=yes, to=to, run=run, step_back=step_back,
             allow_untested=allow_untested, parallel=parallel, max_connect=max_connect,
             lock_wait=lock_wait, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


@task(iterable=["exclude"])
def status(c, env=None, recipe=None, inventory=None, exclude=None, json=False,
           accept_new_host_keys=False, persist=None):  # fmt: skip
    """Show current and previous release per host, flagging drift."""
    run_verb("status", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, json=json, accept_new_host_keys=accept_new_host_keys,
             persist=persist)  # fmt: skip


@task(iterable=["exclude"])
def history(c, env=None, recipe=None, inventory=None, exclude=None, json=False):
    """Merged ledgers of the selected hosts."""
    run_verb("history", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, json=json)  # fmt: skip


@task(name="exec", iterable=["exclude", "limit"])
def exec_(c, command, shell=False, env=None, inventory=None, exclude=None, limit=None,
          canary=None, batch=None, max_fail=None, parallel=None, max_connect=None, json=False,
          accept_new_host_keys=False, persist=None):  # fmt: skip
    """Run COMMAND on each host: its words as an argv (quoted), or with --shell as sh -c."""
    try:
        words = [command] if shell else shlex.split(command)
    except ValueError as exc:  # an unclosed quote: fleetdist's one-line usage error
        raise usage_exit(["exec"], f"exec: {command!r}: {exc}") from None
    run_verb("exec", *words, hosts=_hosts(c), shell=shell, env=env, inventory=inventory,
             exclude=exclude, limit=limit, canary=canary, batch=batch, max_fail=max_fail,
             parallel=parallel, max_connect=max_connect, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


_RUN_HELP = {
    "runbook": "a runbook name in runbooks/, or a path",
    "param": "NAME=VALUE for one of the runbook's declared params (repeatable)",
    "dry-run": "print every step each host would be sent, run nothing",
    "resume": "finish that run of this runbook (a run id, or `last`)",
    "yes": "confirm a confirm: true inventory; pause steps go on without asking",
}


@task(name="run", iterable=["exclude", "limit", "param"], help=_RUN_HELP)
def run_(c, runbook, param=None, env=None, recipe=None, inventory=None, exclude=None, limit=None,
         dry_run=False, resume=None, yes=False, lock_wait=None, max_connect=None, json=False,
         accept_new_host_keys=False, persist=None):  # fmt: skip
    """Run RUNBOOK (runbooks/NAME.yaml or a path): its steps on each host, batch by batch."""
    run_verb("run", runbook, hosts=_hosts(c), param=param, env=env, recipe=recipe,
             inventory=inventory, exclude=exclude, limit=limit, dry_run=dry_run, resume=resume,
             yes=yes, lock_wait=lock_wait, max_connect=max_connect, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


@task(iterable=["exclude", "limit"])
def releases(c, env=None, recipe=None, inventory=None, exclude=None, limit=None, json=False,
             accept_new_host_keys=False, persist=None):  # fmt: skip
    """List the releases each host keeps: current, previous, tested."""
    run_verb("releases", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, limit=limit, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


@task
def disconnect(c, json=False):
    """Close the SSH connections that --persist keeps open for the next run."""
    run_verb("disconnect", json=json)

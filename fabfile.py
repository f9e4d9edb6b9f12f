"""The `fab` door: `fab -H web[01-99] deploy --env=prod`, `fab rollback`, `fab status`.

Fabric would run each task once per `-H` host, one after another, after
splitting the list on commas (which also breaks `web[01-03,07]`).  A rollout
must be ONE parallel run over all hosts, so this fabfile asks Fabric's
executor not to fan tasks out per host and hands the raw `-H` string to
fleetdist, which expands patterns and groups itself.  No logic lives here.
"""

from __future__ import annotations

from typing import Any

from fabric import executor
from invoke import task

from fleetdist.doors import run_verb

_expand_calls = executor.Executor.expand_calls


def _one_rollout(self: Any, calls: Any, apply_hosts: bool = True) -> Any:
    hosts = self.core[0].args.hosts.value
    self.config.load_overrides({"fleetdist_hosts": hosts or ""})
    return _expand_calls(self, calls, apply_hosts=False)


executor.Executor.expand_calls = _one_rollout  # type: ignore[method-assign]


def _hosts(c: Any) -> list[str]:
    value = c.config.get("fleetdist_hosts") or ""
    return [value] if value else []


@task(iterable=["exclude"])
def deploy(c, env="prod", recipe=None, inventory=None, exclude=None, canary=0, batch=None,
           parallel=10, max_connect=10, max_fail=None, on_failure="halt", lock_wait=0.0,
           artifact=None, resume=None, force_unlock=False, dry_run=False, json=False,
           accept_new_host_keys=False, persist=60.0):  # fmt: skip
    """Roll out a release: prepare (stage + test in place) everywhere, then cut over."""
    run_verb("deploy", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, canary=canary or None, batch=batch, parallel=parallel,
             max_connect=max_connect, max_fail=max_fail, on_failure=on_failure,
             lock_wait=lock_wait or None, artifact=artifact, resume=resume,
             force_unlock=force_unlock, dry_run=dry_run, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


@task(iterable=["exclude"])
def rollback(c, env="prod", recipe=None, inventory=None, exclude=None, to=None, run=None,
             step_back=False, allow_untested=False,
             parallel=10, max_connect=10, lock_wait=0.0, json=False,
             accept_new_host_keys=False, persist=60.0):  # fmt: skip
    """Undo the last rollout: its hosts flip back (run it again to flip forward)."""
    run_verb("rollback", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, to=to, run=run, step_back=step_back,
             allow_untested=allow_untested, parallel=parallel, max_connect=max_connect,
             lock_wait=lock_wait or None, json=json,
             accept_new_host_keys=accept_new_host_keys, persist=persist)  # fmt: skip


@task(iterable=["exclude"])
def status(c, env="prod", recipe=None, inventory=None, exclude=None, json=False,
           accept_new_host_keys=False, persist=60.0):  # fmt: skip
    """Show current and previous release per host, flagging drift."""
    run_verb("status", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, json=json, accept_new_host_keys=accept_new_host_keys,
             persist=persist)  # fmt: skip


@task(iterable=["exclude"])
def history(c, env="prod", recipe=None, inventory=None, exclude=None, json=False):
    """Merged ledgers of the selected hosts."""
    run_verb("history", hosts=_hosts(c), env=env, recipe=recipe, inventory=inventory,
             exclude=exclude, json=json)  # fmt: skip


@task
def disconnect(c):
    """Close the SSH connections that --persist keeps open for the next run."""
    run_verb("disconnect")

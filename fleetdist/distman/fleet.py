"""`fleetdist dist --hosts`: the same dist.json on many hosts, gated like a rollout.

The controller checks the repo (sources, git state) and every host's
targets (`DEPLOY_ROOT` from its inventory vars, each path and name against
`config.names`) before anything runs; then the pipeline runs once, here,
and its result (one slot per target, copied as `dist` copies a version)
becomes fleetdist's canonical tar (`shipping.payload`), sent once to each
host that must make a version.  `orchestrate.distrun` does the rest, host
by host: versions, in-place tests, links, in canary and batches, with a
journal `--resume` reads.  `-n/-c/--reset --hosts` moves links back the same
way.  Exit codes are the rollout's (0-5), not distman's.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetdist import shipment
from fleetdist.config.distman import FILENAME, DistError, read_dist_file
from fleetdist.config.project import Project
from fleetdist.distman import env, hostplan
from fleetdist.distman.api import DistArgs, choice, int_env
from fleetdist.distman.engine import Console, Context, DistFlags, check, info_fields
from fleetdist.distman.files import copy_source
from fleetdist.distman.gitinfo import behind, read_git
from fleetdist.distman.pipeline import run_pipeline
from fleetdist.distman.targets import Request, Target, plan_targets
from fleetdist.errors import ConfigError, UsageError
from fleetdist.orchestrate.distrun import Decide, DistJob, DistRollout, DistWork
from fleetdist.orchestrate.runner import Uploads
from fleetdist.orchestrate.stale import stale_run
from fleetdist.orchestrate.work import HostJob, RolloutOptions
from fleetdist.release import steps
from fleetdist.release.distlayout import Version
from fleetdist.release.diststeps import state_layout
from fleetdist.report import ledger
from fleetdist.report.events import Reporter, fan_out
from fleetdist.report.journal import Journal, last_run, new_run_id, read_run
from fleetdist.report.outcome import FleetOutcome
from fleetdist.report.runlog import RunLog
from fleetdist.session import DeployOptions, lock_spec
from fleetdist.session import transports as transport_factory
from fleetdist.shipping.artifact import Artifact, file_sha256
from fleetdist.shipping.payload import shipped

LAST = "last"  # `--resume last`: the newest dist --hosts run of this env
APP = "dist"  # the app name a dist's runs, ledgers and leases are recorded under


def _refuse(args: DistArgs, *, dryrun_ok: bool = False) -> None:
    """Flags that have no meaning across hosts yet: a usage error, nothing touched."""
    for flag, given in (
        ("--delete", args.delete),
        ("-s/--show", args.show),
        ("--version-only", args.version_only),
        ("-d/--dryrun", args.dryrun and not dryrun_ok),
        ("--dest", args.dest is not None),
    ):
        if given:
            raise UsageError(f"{flag}: not with --hosts (run it on the host, or without --hosts)")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _no(question: str) -> bool:
    raise DistError(f"{question} (not asked across hosts)")


@dataclass(frozen=True)
class Prepared:
    """A `dist --hosts` run checked and planned, before anything is built or sent: the
    hosts, each one's plan, how each target's version is chosen there."""

    args: DistArgs
    hosts: hostplan.Selected
    ctx: Context
    ready: list[Target]
    per_host: dict[str, hostplan.HostPlan]
    decide: Decide
    moving: bool


def prepare(args: DistArgs, fleet: hostplan.FleetArgs) -> Prepared:
    """Every check a run makes before the pipeline runs (the dry run makes them too)."""
    _refuse(args, dryrun_ok=True)
    location = Path(args.location)
    if not location.is_dir():
        raise DistError(f"{args.location} is not a directory")
    number, commit = choice(args)
    moving = number is not None or commit is not None or args.reset
    with _configuration():
        dist_file = read_dist_file(location / FILENAME)
        controller = env.lookup(location)
    hosts = hostplan.select(fleet, args.yes or args.dryrun)
    yes = ("1", "true", "yes")
    request = Request(
        args.location,
        args.target,
        args.source,
        None,
        args.ignore_missing or controller.get("IGNORE_MISSING", "").lower() in yes,
        compat_pipeline=controller.get("FLEETDIST_DIST_COMPAT_PIPELINE", "") in yes,
    )
    with _configuration():
        planned = plan_targets(
            dist_file, request, hostplan.HostsKnow(controller), lambda w: _say(f"WARNING: {w}")
        )
    if not planned:
        raise DistError(f"No matching targets in {FILENAME}")
    git = read_git(location)
    ctx = Context(
        git,
        dist_file.author or os.environ.get("USER", "unknown"),
        controller["DEPLOY_ROOT"],
        controller,
        DistFlags(
            force=args.force,
            all_files=args.all,
            max_versions=int_env(controller, "MAX_VERSIONS", 5),
        ),
        Console(_say, _no),
    )
    _one_line_fields(planned, ctx)
    if moving:
        with _configuration():
            per_host = hostplan.plans(dist_file, request, planned, hosts, location)
        decide = hostplan.mover(planned, ctx, number=number, commit=commit)
        return Prepared(args, hosts, ctx, planned, per_host, decide, True)
    if not args.force and (why := behind(location, git)):
        raise DistError(why)
    ready = check(planned, ctx, here=False)
    with _configuration():
        per_host = hostplan.plans(dist_file, request, ready, hosts, location)
    return Prepared(args, hosts, ctx, ready, per_host, hostplan.decider(ready, ctx), False)


def _one_line_fields(targets: Sequence[Target], ctx: Context) -> None:
    """Every `.NAME.dist` field a host will be sent fits on its line: one holding a
    newline (an author, say) would add a `commit:` line of its choosing."""
    for t in targets:
        for key, value in info_fields(t, ctx, Version(0, "", False, "")).items():
            if any(ord(c) < 32 or c == "\x7f" for c in value):
                raise ConfigError(
                    f"{FILENAME}: {key}: {value!r} contains a control character "
                    "(a .dist file holds one line per field)"
                )


@contextmanager
def _configuration() -> Iterator[None]:
    """A bad dist.json, distman.env or `{VAR}`: distman's exit 1, but across hosts a
    configuration error (exit 2), as a bad recipe or inventory is."""
    try:
        yield
    except DistError as exc:
        raise ConfigError(str(exc)) from None


def dist_hosts(
    args: DistArgs, fleet: hostplan.FleetArgs, reporter: Reporter, *, run_id: str | None = None
) -> FleetOutcome:
    """Run `fleetdist dist ... --hosts`: see the module docstring."""
    _refuse(args)
    ready = prepare(args, fleet)
    hosts = ready.hosts
    run_id = run_id or new_run_id()
    header = {
        "action": "dist-move" if ready.moving else "dist",
        "app": APP,
        "env": hosts.sel.env,
        "inventory": hosts.sel.inventory,
        "hosts": [h.name for h in hosts.hosts],
        "dist": dataclasses.asdict(args),
        "commit": ready.ctx.git.head or None,  # what `--resume` must find checked out
        "fleet": {"env": fleet.env, "options": fleet.options.flags()},
    }
    if ready.moving:
        work = DistWork(f"move-{run_id}", ready.decide, moving=True)
        return _roll(hosts, fleet, ready.per_host, work, header, run_id, reporter, None)
    with (
        _payload(ready.ready, ready.ctx) as artifact,
        shipped(artifact, hosts.sel.project.state / "payloads") as payload,
    ):
        work = DistWork(f"dist-{payload.sha256[:12]}", ready.decide)
        uploads = shipment.uploads(artifact, payload)
        return _roll(hosts, fleet, ready.per_host, work, header, run_id, reporter, uploads)


@contextmanager
def _payload(ready: Sequence[Target], ctx: Context) -> Iterator[Artifact]:
    """The pipeline's result for every target, once, as a tar of slots `0`, `1`..."""
    with tempfile.TemporaryDirectory(prefix="fleetdist-dist.") as work:
        root = Path(work) / "payload"
        root.mkdir()
        for k, t in enumerate(ready):
            scratch = Path(tempfile.mkdtemp(dir=work))
            result = run_pipeline(
                t.name,
                list(t.steps),
                t.source,
                scratch,
                ctx.values,
                all_files=ctx.flags.all_files,
                say=_say,
            )
            copy_source(result, root / str(k), all_files=ctx.flags.all_files)
        tar = Path(work) / "dist.tar"
        stamp = _stamp(ctx)

        def dated(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.mtime = stamp
            return info

        with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as out:
            for k in range(len(ready)):
                out.add(root / str(k), arcname=str(k), filter=dated)
        sha = file_sha256(tar)
        yield Artifact(tar, APP, "0", f"{APP}-{sha[:10]}", "tar", sha, tar.stat().st_size)


def _stamp(ctx: Context) -> int:
    """Every file's mtime in the payload: the commit's time, so one commit always makes
    the same payload (and dist id: `--resume` and a re-run find it staged); now outside git."""
    if ctx.git.top is None or not ctx.git.head:
        return int(time.time())
    done = subprocess.run(
        ["git", "-C", str(ctx.git.top), "show", "-s", "--format=%ct", ctx.git.head],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(done.stdout.strip()) if done.stdout.strip().isdigit() else int(time.time())


def _roll(
    hosts: hostplan.Selected,
    fleet: hostplan.FleetArgs,
    per_host: Mapping[str, hostplan.HostPlan],
    work: DistWork,
    header: dict[str, Any],
    run_id: str,
    reporter: Reporter,
    uploads: Uploads | None,
) -> FleetOutcome:
    """The rollout itself: journal, per-host logs, options, jobs."""
    project, opts = hosts.sel.project, fleet.options
    journal = Journal(project.runs, run_id, {**header, "release_id": work.dist_id})
    runlog = RunLog(project.runs, run_id)
    outcome = FleetOutcome(run_id, header["action"], APP, hosts.sel.env, work.dist_id)
    outcome.log_dir = runlog.dir
    options = RolloutOptions(
        lock=lock_spec(run_id, opts.lock_wait),
        parallel=opts.parallel,
        batches=opts.batches,
        max_fail=opts.max_fail,
        operator=ledger.operator(),
        stale=lambda message: stale_run(message, project.runs),
    )
    jobs = dist_jobs(hosts, per_host, work.dist_id)
    rollout = DistRollout(
        work=work,
        fleet=outcome,
        factory=transport_factory(opts),
        reporter=fan_out([journal, runlog, reporter]),
        options=options,
    )
    try:
        rollout.run(jobs, uploads or _no_upload)
    finally:
        journal.close()
    return outcome


def dist_jobs(
    hosts: hostplan.Selected, per_host: Mapping[str, hostplan.HostPlan], dist_id: str
) -> list[DistJob]:
    """One job per host: its records' layout, root, targets and tests."""
    jobs = []
    for host in hosts.hosts:
        plan = per_host[host.name]
        ctx = steps.Context(state_layout(plan.root), APP, dist_id, hosts.sel.env, host.name)
        jobs.append(DistJob(host, ctx, plan.root, plan.targets, plan.tests))
    return jobs


def _no_upload(job: HostJob) -> steps.Upload:
    raise AssertionError("-n/-c/--reset send nothing")


def resume(run: str, fleet: hostplan.FleetArgs, reporter: Reporter) -> FleetOutcome:
    """`--resume RUN`: the same dist, hosts and flags as RUN, under its run id; hosts
    already switched are `unchanged`, the others are taken up where they stopped."""
    runs = Project(fleet.project).runs
    if run == LAST:
        newest = last_run(runs, app=APP, env=fleet.env or "prod", actions=("dist", "dist-move"))
        if newest is None:
            raise ConfigError(f"--resume: no dist --hosts run is recorded in {runs}")
        run = str(newest["run_id"])
    header, _ = read_run(runs, run)
    if header.get("action") not in ("dist", "dist-move"):
        raise ConfigError(f"--resume: run {run} was a {header.get('action')}, not a dist")
    saved = header["dist"]
    args = DistArgs(**{**saved, "target": tuple(saved["target"]) if saved["target"] else None})
    if header["action"] == "dist":  # a move names versions the hosts already hold
        _same_commit(run, header.get("commit"), Path(args.location))
    again = dataclasses.replace(
        fleet,
        hosts=tuple(header["hosts"]),
        exclude=(),
        limit=(),
        inventory=header["inventory"],
        env=header["fleet"]["env"],
        options=DeployOptions.parse(
            **{
                k: v
                for k, v in header["fleet"]["options"].items()
                if k not in ("release", "version", "on_failure")
            },
            accept_new_host_keys=fleet.options.accept_new_host_keys,
            persist=fleet.options.persist,
        ),
    )
    return dist_hosts(args, again, reporter, run_id=run)


def _same_commit(run: str, recorded: object, location: Path) -> None:
    """A resumed run dists the commit it started with, or nothing: after a new commit it
    would link that one on the hosts left, beside hosts holding the old one."""
    if not isinstance(recorded, str):
        return  # outside git, or a journal from before the commit was recorded
    head = read_git(location).head if location.is_dir() else ""
    if head != recorded:
        raise ConfigError(
            f"--resume: run {run} disted commit {recorded[:7]}, but HEAD of {location} is "
            f"{head[:7] or 'not a commit'} now: check out {recorded[:7]} or start a new run"
        )

"""Link moves and removals: `-n`, `-c`, `--reset`, `--delete`, and `-s/--show`.

Every target is checked before any link moves or any version is removed,
so a `-n 99` that one target lacks changes nothing anywhere.  Each change
bumps the epoch (distman 0.8.4 did not, so caches kept serving the old
link), and `.NAME.dist` is rewritten to describe the version now linked.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fleetdist.config.distman import DistError
from fleetdist.distman import disk, versions
from fleetdist.distman.engine import DRYRUN_MESSAGE, Context, info_fields, present
from fleetdist.distman.gitinfo import commit_summary
from fleetdist.distman.targets import Target
from fleetdist.release.distlayout import Version


def _describe(t: Target, ctx: Context, v: Version) -> None:
    """Rewrite the info file for `v`, keeping the repo fields it already had."""
    fields = {**disk.read_info(t.layout), "commit": info_fields(t, ctx, v)["commit"]}
    disk.write_info(t.layout, fields if len(fields) > 1 else info_fields(t, ctx, v))


def move(
    targets: Sequence[Target], ctx: Context, *, number: int | None, commit: str | None
) -> None:
    """Point each target at the version `-n`/`-c` names, or at the newest (`--reset`)."""
    chosen = []
    for t in targets:
        found = versions.listed(t.layout)
        if not found:
            ctx.console.say(f"Target {t.name}: No versioned files found for '{t.shown}'")
        elif number is None and commit is None:
            chosen.append((t, found[-1]))
        else:
            chosen.append((t, versions.resolve_choice(t.layout, number, commit, t.shown)))
    if not chosen:
        raise DistError("No targets found to change version")
    if ctx.flags.dryrun:
        ctx.console.say(DRYRUN_MESSAGE)
    changed = False
    with disk.locked(t.layout.folder for t, _ in chosen if os.path.isdir(t.layout.folder)):
        for t, v in chosen:
            kind = "d" if os.path.isdir(t.layout.version_path(v.filename)) else "f"
            ctx.console.say(f"{t.shown} ={kind}> {t.layout.version_path(v.filename)}")
            if ctx.flags.dryrun or versions.linked(t.layout) == v.filename:
                continue
            disk.flip(t.layout, v.filename)
            _describe(t, ctx, v)
            changed = True
        if changed:
            disk.bump_epoch(ctx.deploy_root)


def delete(
    targets: Sequence[Target], ctx: Context, *, number: int | None, commit: str | None
) -> None:
    """Remove a target (link, info, every version) or one version that is not linked."""
    plan: list[tuple[Target, list[Version]]] = []
    for t in targets:
        found = versions.listed(t.layout)
        if found and (number is not None or commit is not None):
            one = versions.resolve_choice(t.layout, number, commit, t.shown)
            if versions.linked(t.layout) == one.filename:
                raise DistError(
                    f"Cannot delete target '{t.name}' because it is linked to the version "
                    f"being deleted ({one.filename})"
                )
            found = [one]
        if found:
            plan.append((t, found))
    if not plan:
        raise DistError("No targets found to delete")
    for t, doomed in plan:
        question = (
            f"Delete {t.layout.version_path(doomed[0].filename)}?"
            if len(doomed) == 1
            else f"Delete {len(doomed)} versions for target '{t.name}'?"
        )
        if not ctx.flags.dryrun and not ctx.console.ask(question):
            raise DistError(f"Target {t.name}: nothing deleted")
    if ctx.flags.dryrun:
        ctx.console.say(DRYRUN_MESSAGE)
    with disk.locked(t.layout.folder for t, _ in plan):
        for t, doomed in plan:
            _delete_one(t, ctx, doomed, whole=number is None and commit is None)
        if not ctx.flags.dryrun:
            disk.bump_epoch(ctx.deploy_root)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _delete_one(t: Target, ctx: Context, doomed: list[Version], *, whole: bool) -> None:
    paths = [t.layout.dest, t.layout.info] if whole else []
    paths += [t.layout.version_path(v.filename) for v in doomed]
    for path in paths:
        if not os.path.lexists(path):
            ctx.console.say(f"Missing: {path}")
            continue
        ctx.console.say(f"Delete: {path}")
        if not ctx.flags.dryrun:
            _remove(path)


def describe_repo(ctx: Context) -> None:
    """`-vv`: the repo a run reads, as distman prints it."""
    git = ctx.git
    for label, value in (("Name", git.name), ("Path", git.origin), ("Branch", git.branch)):
        ctx.console.say(f"{label}: {value}")
    ctx.console.say(f"Head: {git.head} ({git.short})")


def show(targets: Sequence[Target], ctx: Context, verbose: int) -> None:
    """`src =k> versions/...` per target; -v adds each version, -vv its commit."""
    say, git = ctx.console.say, ctx.git
    targets = present(targets, ctx)
    if verbose >= 2:
        describe_repo(ctx)
    for t in targets:
        if not os.path.lexists(t.layout.dest):
            say(f"Missing: {t.layout.dest}")
        else:
            say(f"{t.shown} ={t.kind}> {os.readlink(t.layout.dest)}")
        if verbose < 1:
            continue
        for v in versions.listed(t.layout):
            path = t.layout.version_path(v.filename)
            say(f"{v.number}: {path} - {time.ctime(os.lstat(path).st_mtime)}")
            if verbose >= 2 and v.commit and git.top is not None:
                _say_commit(git.top, v.commit, say)


def _say_commit(top: Path, commit: str, say: Callable[[str], None]) -> None:
    for line in commit_summary(top, commit):
        say(f"    {line}")

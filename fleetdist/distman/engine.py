"""`fleetdist dist`: check every target, then copy, then flip, under a lock.

Order of a run (distman interleaves these per target; fleetdist does not):
1. plan: targets resolved (`targets.plan_targets`), no I/O beyond globbing;
2. check: every source exists, none is dirty (anywhere below it), the branch
   is not behind, every question asked; a failure here writes nothing;
3. stage, holding flock on each destination folder: per target, the
   pipeline runs in a temporary directory and its result is copied into a
   hidden temporary version; a failure here removes them all, no link moved;
4. flip: each staged version is renamed into place, each link flipped by
   rename, `.NAME.dist` rewritten to describe what the link now points at;
5. the epoch is bumped once if anything changed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.distman import DistError
from fleetdist.distman import disk, versions
from fleetdist.distman.files import copy_source, same_tree
from fleetdist.distman.gitinfo import GitInfo
from fleetdist.distman.pipeline import check_steps, run_pipeline
from fleetdist.distman.targets import Target
from fleetdist.release.distlayout import DistLayout, Version

DRYRUN_MESSAGE = "NOTICE: Dry run (no changes will be made)"


@dataclass(frozen=True)
class Console:
    """How the engine talks: `say` a line (stderr), `ask` a yes/no question."""

    say: Callable[[str], None]
    ask: Callable[[str], bool]


@dataclass(frozen=True)
class DistFlags:
    force: bool = False
    all_files: bool = False
    dryrun: bool = False
    version_only: bool = False
    max_versions: int = 5  # MAX_VERSIONS: how many versions `match: content` compares
    keep: int = 0  # KEEP_VERSIONS: prune beyond this many (0: never prune)


@dataclass(frozen=True)
class Context:
    git: GitInfo
    author: str
    deploy_root: str
    values: Mapping[str, str]  # what `{VAR}` means in this run (replace_tokens uses it)
    flags: DistFlags
    console: Console


def present(targets: Sequence[Target], ctx: Context) -> list[Target]:
    """Targets whose source exists; a missing one is skipped (ignore_missing) or an error."""
    found = []
    for t in targets:
        if os.path.lexists(t.source):
            found.append(t)
        elif t.ignore_missing:
            ctx.console.say(f"Target {t.name}: Source '{t.shown}' not found, skipping")
        else:
            raise DistError(f"Target {t.name}: Source '{t.shown}' does not exist")
    return found


def check(targets: Sequence[Target], ctx: Context, *, here: bool = True) -> list[Target]:
    """The targets to act on; raises before any write if one of them cannot go.

    `here`: the destinations are on this machine (not `dist --hosts`), so their
    folders are checked and their questions asked too."""
    ready = []
    for t in present(targets, ctx):
        dirty = ctx.git.dirty_under(t.source, all_files=ctx.flags.all_files)
        if dirty and not ctx.flags.force:
            raise DistError(
                f"Target {t.name}: Source '{t.shown}' has uncommitted changes "
                f"({os.path.relpath(dirty[0], t.source.parent)}). Commit or use --force."
            )
        check_steps(t.steps, ctx.values, t.name)
        ready.append(t)
    if here and not ctx.flags.dryrun:
        _confirm_destinations(ready, ctx)
    return ready


def _confirm_destinations(targets: Sequence[Target], ctx: Context) -> None:
    """Ask every question up front: a missing folder, a foreign file where a link goes."""
    for t in targets:
        folder = t.layout.folder
        _check_writable(t, folder)
        if not os.path.isdir(folder):
            question = f"Target {t.name}: Destination dir '{folder}' doesn't exist. Create?"
            if not ctx.console.ask(question):
                raise DistError(f"Target {t.name}: destination dir not created")
        elif _foreign(t.layout):
            kind = "dir" if os.path.isdir(t.layout.dest) else "file"
            dest = t.layout.dest
            question = f"Target '{dest}' already exists as a {kind} and will be deleted, continue?"
            if not ctx.console.ask(question):
                raise DistError(f"Target {t.name}: '{t.layout.dest}' left in place")


def _check_writable(t: Target, folder: str) -> None:
    """The nearest existing folder on the way to `folder` is a directory we may write."""
    here = folder
    while not os.path.lexists(here) and os.path.dirname(here) != here:
        here = os.path.dirname(here)
    if not os.path.isdir(here):
        raise DistError(f"Target {t.name}: '{here}' is not a directory")
    if not os.access(here, os.W_OK | os.X_OK):
        raise DistError(f"Target {t.name}: '{here}' is not writable")


def _foreign(layout: DistLayout) -> bool:
    """Something not made by dist sits where the link goes."""
    return os.path.lexists(layout.dest) and not os.path.islink(layout.dest)


def dist(targets: Sequence[Target], ctx: Context) -> None:
    """Deploy checked targets (see the module docstring for the order)."""
    if ctx.flags.dryrun:
        ctx.console.say(DRYRUN_MESSAGE)
        for t in targets:
            _plan_one(t, ctx)
        return
    for t in targets:
        os.makedirs(t.layout.folder, exist_ok=True)
    with (
        disk.locked(t.layout.folder for t in targets),
        tempfile.TemporaryDirectory(prefix="fleetdist-dist.") as work,
    ):
        ready: list[_Ready] = []
        try:
            for t in targets:  # every pipeline and copy first: a failure moves no link
                ready.append(_prepare(t, ctx, Path(work)))
        except BaseException:
            for r in ready:
                if r.staged is not None:
                    _remove(r.staged)
            raise
        changed = False
        for r in ready:
            if r.staged is not None:
                os.rename(r.staged, r.target.layout.version_path(r.version.filename))
            changed = _link(r.target, ctx, r.version, created=r.staged is not None) or changed
        if changed:
            disk.bump_epoch(ctx.deploy_root)


@dataclass(frozen=True)
class _Ready:
    """A target whose version exists (or is staged, to be renamed to `version`)."""

    target: Target
    version: Version
    staged: Path | None


def _remove(path: Path | str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def dirty(t: Target, ctx: Context) -> bool:
    """The source differs from the commit (only possible with --force)."""
    return bool(ctx.git.dirty_under(t.source, all_files=ctx.flags.all_files))


def by_commit(t: Target, ctx: Context) -> bool:
    """Versions are told apart by commit: `match: commit`, in git, and a clean source."""
    return t.match == "commit" and bool(ctx.git.head) and not dirty(t, ctx)


def _commit_match(t: Target, ctx: Context, found: list[Version]) -> Version | None:
    return versions.by_commit(found, ctx.git.short) if by_commit(t, ctx) else None


def _plan_one(t: Target, ctx: Context) -> None:
    found = versions.listed(t.layout)
    if not os.path.isdir(t.layout.folder):
        ctx.console.say(f"Creating destination directory '{t.layout.folder}'")
    if not os.path.exists(t.layout.info):
        ctx.console.say(f"Initializing: {t.layout.dest}")
    hit = _commit_match(t, ctx, found)
    if hit is not None:
        word = "Unchanged" if versions.linked(t.layout) == hit.filename else "Updated"
        ctx.console.say(f"{word}: {t.shown} ={t.kind}> {t.layout.version_path(hit.filename)}")
        return
    name = _new_name(t, ctx, found)
    ctx.console.say(f"Updated: {t.shown} ={t.kind}> {t.layout.version_path(name)}")


def _new_name(t: Target, ctx: Context, found: list[Version]) -> str:
    return t.layout.version_name(versions.next_number(found), ctx.git.short, dirty(t, ctx))


def _prepare(t: Target, ctx: Context, work: Path) -> _Ready:
    """Find the version `t` should link (by commit, then content), or stage a new one.

    A copy that may turn out equal to an old version is made in `work` first,
    so a content match leaves `versions/` untouched (not even its mtime).
    """
    layout = t.layout
    if not os.path.exists(layout.info) and not os.path.islink(layout.dest):
        ctx.console.say(f"Initializing: {layout.dest}")
    found = versions.listed(layout)
    hit = _commit_match(t, ctx, found)
    if hit is not None:
        return _Ready(t, hit, None)
    result = run_pipeline(
        t.name,
        list(t.steps),
        t.source,
        Path(tempfile.mkdtemp(dir=work)),
        ctx.values,
        all_files=ctx.flags.all_files,
        say=ctx.console.say,
    )
    if by_commit(t, ctx):
        staged = _stage(result, t, ctx)
    else:
        copy = Path(tempfile.mkdtemp(dir=work)) / layout.name
        copy_source(result, copy, all_files=ctx.flags.all_files)
        hit = _content_match(t, ctx, found, copy)
        if hit is not None:
            return _Ready(t, hit, None)
        staged = _stage(copy, t, ctx, moved=True)
    made = layout.parse(_new_name(t, ctx, found))
    assert made is not None
    return _Ready(t, made, staged)


def _stage(result: Path, t: Target, ctx: Context, *, moved: bool = False) -> Path:
    """`result` as a hidden temporary version beside the others (copied, or moved when it
    already is a finished copy)."""
    os.makedirs(t.layout.versions, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{t.layout.name}.tmp.", dir=t.layout.versions))
    staged.rmdir()
    try:
        if moved:
            shutil.move(result, staged)
        else:
            copy_source(result, staged, all_files=ctx.flags.all_files)
    except BaseException:
        _remove(staged)
        raise
    return staged


def _content_match(t: Target, ctx: Context, found: list[Version], staged: Path) -> Version | None:
    """An equal version among the newest MAX_VERSIONS: `match: content`, outside git, or a
    forced dirty source (so repeating `-f` on the same edit makes no new version)."""
    if by_commit(t, ctx):
        return None
    for v in reversed(versions.window(found, ctx.flags.max_versions)):
        if same_tree(staged, Path(t.layout.version_path(v.filename))):
            return v
    return None


def _link(t: Target, ctx: Context, v: Version, *, created: bool) -> bool:
    """Flip the link to `v` (unless --version-only), describe it, prune; True if changed."""
    layout, say = t.layout, ctx.console.say
    where = f"{t.shown} ={t.kind}> {layout.version_path(v.filename)}"
    if versions.linked(layout) == v.filename:
        disk.write_info(layout, info_fields(t, ctx, v))  # only if it drifted
        say(f"Unchanged: {where}")
        return created
    if ctx.flags.version_only:
        say(f"{'Updated' if created else 'Match'}: {where}")
        return created
    if _foreign(layout):
        _remove(layout.dest)
    previous = versions.linked(layout)
    disk.flip(layout, v.filename)
    disk.write_info(layout, info_fields(t, ctx, v))
    say(f"Updated: {where}")
    _prune(t, ctx, previous)
    return True


def info_fields(t: Target, ctx: Context, v: Version) -> dict[str, str]:
    """What `.NAME.dist` says: the repo, and the commit of the LINKED version."""
    return {
        "name": ctx.git.name,
        "origin": ctx.git.origin,
        "branch": ctx.git.branch,
        "commit": v.commit + ("-dirty" if v.dirty else ""),
        "source": t.shown,
        "author": ctx.author,
    }


def _prune(t: Target, ctx: Context, previous: str | None) -> None:
    """KEEP_VERSIONS (opt-in): distman never prunes, so deploy roots only grow."""
    if ctx.flags.keep <= 0:
        return
    found = versions.listed(t.layout)
    for v in versions.prunable(found, ctx.flags.keep, versions.linked(t.layout), previous):
        path = t.layout.version_path(v.filename)
        ctx.console.say(f"Prune: {path}")
        _remove(path)

"""`fleetdist cache`: distcache's contract, a local copy of what the deploy root links to.

Copies `$DEPLOY_ROOT` to `$CACHE_ROOT` without `versions/` except the
version objects the links point at; a file whose size and mtime match is
skipped.  `.distman/epoch` of the source is copied after a cache run, and
`.distman/last_check` records when the cache last looked, so within
`CACHE_TTL` seconds (`-t`) nothing is checked at all.  A dry run prints
whether the cache is fresh and exits 10 when it is stale.

Unlike distcache, versions are copied before the links that point at them
are moved (each by renaming a new link over the old one), so a program
reading the cache never follows a link into a version not yet there; and
`--diff` compares symlinked directories as links on both sides.
"""

from __future__ import annotations

import concurrent.futures as cf
import fnmatch
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fleetdist.config.distman import DistError
from fleetdist.distman import env
from fleetdist.distman.files import IGNORABLE
from fleetdist.distman.runlog import DistLog
from fleetdist.errors import FleetdistError
from fleetdist.release.distlayout import EPOCH, META_DIR, VERSIONS

STALE_EXIT = 10
STATE = ".fleetdist"  # under DEPLOY_ROOT: where `dist --hosts` keeps its records
LAST_CHECK = "last_check"
DEFAULT_TTL = 600


@dataclass(frozen=True)
class CacheArgs:
    """`fleetdist cache` flags, as distman's `distcache` takes them."""

    src: str | None = None
    dst: str | None = None
    workers: int | None = None
    delete: bool = False
    prune: bool = False
    diff: bool = False
    ttl: int | None = None
    force: bool = False
    dryrun: bool = False


def _skipped(name: str) -> bool:
    """distcache's rule: the ignorable patterns (dot-files are cached: `.NAME.dist`)."""
    return any(fnmatch.fnmatchcase(name, p) for p in IGNORABLE)


@dataclass(frozen=True)
class Entry:
    """One path the cache should hold: a directory, a file or a link (with its text)."""

    kind: str  # d | f | l
    link: str = ""


def plan(src: Path) -> dict[Path, Entry]:
    """Everything below `src` a cache holds, by relative path: links and the versions they use."""
    wanted: dict[Path, Entry] = {}
    versions_used: list[Path] = []
    for rel, entry in _walk(src, skip_versions=True):
        wanted[rel] = entry
        text = entry.link.replace("\\", "/")
        if entry.kind == "l" and text.startswith(f"{VERSIONS}/") and ".." not in text.split("/"):
            versions_used.append(rel.parent / text)
    for obj in sorted(set(versions_used)):
        full = src / obj
        wanted.setdefault(obj.parent, Entry("d"))
        if full.is_symlink():
            wanted[obj] = Entry("l", os.readlink(full))
        elif full.is_file():
            wanted[obj] = Entry("f")
        elif full.is_dir():
            wanted[obj] = Entry("d")
            for rel, entry in _walk(full, skip_versions=False):
                wanted[obj / rel] = entry
    return wanted


def _walk(root: Path, *, skip_versions: bool) -> Iterator[tuple[Path, Entry]]:
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        rel = here.relative_to(root)
        kept = []
        for d in sorted(dirs):
            if _skipped(d) or (skip_versions and d == VERSIONS):
                continue
            if skip_versions and rel == Path(".") and d == STATE:
                continue  # `dist --hosts`'s own records (lease, ledger), not a dist
            if (here / d).is_symlink():
                yield rel / d, Entry("l", os.readlink(here / d))
            else:
                yield rel / d, Entry("d")
                kept.append(d)
        dirs[:] = kept
        for f in sorted(files):
            if _skipped(f):
                continue
            path = here / f
            yield (rel / f, Entry("l", os.readlink(path)) if path.is_symlink() else Entry("f"))


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except FileNotFoundError:
        return False
    return sa.st_size == sb.st_size and sa.st_mtime_ns == sb.st_mtime_ns


def _copy(src: Path, dst: Path) -> bool:
    """Copy one file whole (temporary name, then rename); False when it was fresh."""
    if _same_file(src, dst):
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _relink(dst: Path, text: str) -> None:
    """Make `dst` a link holding `text`, by one rename over whatever was there."""
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.is_symlink() and os.readlink(dst) == text:
        return
    tmp = dst.with_name(f".{dst.name}.link.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(text, tmp)
    os.replace(tmp, dst)


def copy_cache(src: Path, dst: Path, workers: int, say: Callable[[str], None]) -> None:
    """Bring `dst` up to date with `src`'s plan: files and versions first, links last."""
    wanted = plan(src)
    dst.mkdir(parents=True, exist_ok=True)
    for rel, entry in wanted.items():
        if entry.kind == "d":
            (dst / rel).mkdir(parents=True, exist_ok=True)
    files = [rel for rel, e in wanted.items() if e.kind == "f"]
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        copied = sum(pool.map(lambda rel: _copy(src / rel, dst / rel), files))
    links = sorted((rel for rel, e in wanted.items() if e.kind == "l"), key=_versions_first)
    for rel in links:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        _relink(dst / rel, wanted[rel].link)
    say(f"cached {src} -> {dst}: {copied} copied, {len(files) - copied} fresh, {len(links)} links")


def _versions_first(rel: Path) -> tuple[bool, str]:
    """Links inside versions/ before the links that point into versions/."""
    return (VERSIONS not in rel.parts, str(rel))


def diff(src: Path, dst: Path, say: Callable[[str], None]) -> int:
    """Print `+ path` (missing in the cache), `- path` (extra), `~ path [why]`; the count."""
    wanted = plan(src)
    have = dict(_walk(dst, skip_versions=False)) if dst.is_dir() else {}
    have = {rel: e for rel, e in have.items() if rel.parts[:1] != (META_DIR,)}
    count = 0
    for rel in _collapse(set(wanted) - set(have), wanted):
        say(f"+ {rel}")
        count += 1
    for rel in _collapse(set(have) - set(wanted), have):
        say(f"- {rel}")
        count += 1
    for rel in sorted(set(wanted) & set(have)):
        why = _difference(wanted[rel], have[rel], src / rel, dst / rel)
        if why:
            say(f"~ {rel} [{why}]")
            count += 1
    return count


def _collapse(paths: set[Path], entries: dict[Path, Entry]) -> list[Path]:
    """Drop the children of a directory that is itself listed."""
    dirs = {p for p in paths if entries[p].kind == "d"}
    return sorted(p for p in paths if not any(parent in dirs for parent in p.parents))


def _difference(a: Entry, b: Entry, pa: Path, pb: Path) -> str:
    if a.kind != b.kind:
        return "symlink vs non-symlink mismatch" if "l" in (a.kind, b.kind) else "type mismatch"
    if a.kind == "l" and a.link != b.link:
        return "symlink target differs"
    if a.kind == "f" and not _same_file(pa, pb):
        return "changed"
    return ""


def _epoch(root: Path) -> str | None:
    try:
        return (root / META_DIR / EPOCH).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _fresh_check(dst: Path, ttl: float) -> bool:
    """True when the last check is younger than `ttl` seconds."""
    if ttl <= 0:
        return False
    try:
        last = float((dst / META_DIR / LAST_CHECK).read_text().strip())
    except (OSError, ValueError):
        return False
    return time.time() - last < ttl


def _mark(dst: Path, name: str, text: str, mode: int = 0o644) -> None:
    """Replace `.distman/NAME` whole (distcache: epoch 600, last_check 644)."""
    meta = dst / META_DIR
    meta.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=meta)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, meta / name)


def _dangerous(path: Path) -> bool:
    real = path.resolve()
    return real == Path(real.anchor) or len(real.parts) <= 2


def run(args: CacheArgs) -> int:
    """`fleetdist cache`: the exit code (0, 1, or 10 for a stale cache in a dry run)."""
    values = env.lookup(Path.cwd())
    log = DistLog(values, dryrun=args.dryrun)
    try:
        return _run(args, values, log.say)
    except FleetdistError as exc:
        log.error(str(exc))
        raise
    finally:
        log.close()


def _run(args: CacheArgs, values: Mapping[str, str], say: Callable[[str], None]) -> int:
    src = Path(args.src or values["DEPLOY_ROOT"]).resolve()
    dst = Path(args.dst or values["CACHE_ROOT"]).resolve()
    if not src.exists():
        raise DistError(f"source does not exist: {src}")
    if args.delete:
        return _delete(src, dst, args.dryrun, say)
    _separate(src, dst)
    if args.prune:
        return _prune(dst, args.dryrun, say)
    if args.diff:
        diff(src, dst, say)
        return 0
    ttl = args.ttl if args.ttl is not None else int(values.get("CACHE_TTL") or DEFAULT_TTL)
    if not args.dryrun and not args.force and _fresh_check(dst, ttl):
        print("cache check skipped (use -t 0 to override TTL)")
        return 0
    src_epoch, dst_epoch = _epoch(src), _epoch(dst)
    stale = src_epoch is None or dst_epoch is None or src_epoch != dst_epoch
    if args.dryrun:
        print(_staleness(src_epoch, dst_epoch, stale))
        return STALE_EXIT if stale else 0
    if not stale and not args.force:
        _mark(dst, LAST_CHECK, f"{time.time()}\n")
        print("cache is fresh")
        return 0
    workers = args.workers if args.workers is not None else min(32, (os.cpu_count() or 8) * 4)
    if workers < 1:
        raise DistError("--workers: must be at least 1")
    try:
        copy_cache(src, dst, workers, say)
    except OSError as exc:
        raise DistError(f"cache failed: {exc}") from None
    if src_epoch is not None:
        _mark(dst, EPOCH, src_epoch, 0o600)  # as distcache: the value, no newline
    _mark(dst, LAST_CHECK, f"{time.time()}\n")
    return 0


def _staleness(src_epoch: str | None, dst_epoch: str | None, stale: bool) -> str:
    if src_epoch is None:
        return "missing source epoch file"
    if dst_epoch is None:
        return "missing destination epoch file"
    if not stale:
        return "cache is fresh"
    try:
        when = datetime.fromtimestamp(int(dst_epoch) / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        when = dst_epoch
    return f"cache is stale (last update {when})"


def _separate(src: Path, dst: Path) -> None:
    """Refuse a cache that overlaps the deploy root: distcache would copy a cache inside
    it into itself level after level, and `--delete` would remove the deploy root."""
    if src == dst or src in dst.parents or dst in src.parents:
        raise DistError(
            f"the cache {dst} and the deploy root {src} overlap: give them separate folders"
        )


def _delete(src: Path, dst: Path, dryrun: bool, say: Callable[[str], None]) -> int:
    if not dst.exists():
        say("cache does not exist")
        return 0
    if _dangerous(dst):
        raise DistError(f"refusing to delete dangerous cache root: {dst}")
    _separate(src, dst)
    if dryrun:
        say(f"would delete cache: {dst}")
        return 0
    shutil.rmtree(dst)
    say(f"deleted cache: {dst}")
    return 0


def _prune(dst: Path, dryrun: bool, say: Callable[[str], None]) -> int:
    """Remove cache versions no link outside versions/ points at."""
    if not dst.exists():
        say("cache does not exist")
        return 0
    keep = {p for p, e in plan(dst).items() if len(p.parts) and VERSIONS in p.parts}
    removed = 0
    for folder in sorted(dst.rglob(VERSIONS)):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for child in sorted(folder.iterdir()):
            rel = child.relative_to(dst)
            if rel in keep:
                continue
            removed += 1
            if dryrun:
                print(f"would prune: {rel}")
            elif child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    say(f"pruned {removed} unreferenced versions")
    return 0

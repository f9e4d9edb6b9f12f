"""What git says about the repo being disted: commit, branch, origin, dirty paths.

Asked of the `git` command (no GitPython), once per run, before anything is
written.  Dirty paths come from one `git status` over the whole work tree,
untracked and ignored files included, so a change anywhere under a directory
target is seen (distman 0.8.4 compared only the changed files' immediate
parent directories and deployed nested edits under a clean hash).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.distman import DistError
from fleetdist.distman.files import ignorable

HASH_LEN = 7
MAIN_BRANCHES = ("main", "master")


@dataclass(frozen=True)
class GitInfo:
    """The repo at LOCATION (all empty outside git: versions are then `<name>.<N>`)."""

    top: Path | None
    head: str
    branch: str
    origin: str
    dirty: tuple[Path, ...]  # absolute, not resolved through symlinks below `top`

    @property
    def short(self) -> str:
        return self.head[:HASH_LEN]

    @property
    def name(self) -> str:
        return os.path.basename(self.origin).replace(".git", "")

    def dirty_under(self, source: Path, *, all_files: bool) -> list[Path]:
        """Changed paths at or below `source` that a dist would copy."""
        found = []
        for path in self.dirty:
            if path != source and source not in path.parents:
                continue
            rel = path.relative_to(source).parts if path != source else ()
            if all_files or not any(ignorable(part) for part in rel):
                found.append(path)
        return found


def _git(location: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(location), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
    )


def _out(location: Path, *args: str) -> str:
    done = _git(location, *args)
    return done.stdout.strip() if done.returncode == 0 else ""


def read_git(location: Path) -> GitInfo:
    """GitInfo for `location`; not a repo (or no commit yet) gives the empty one."""
    folder = location.resolve()
    top = _out(folder, "rev-parse", "--show-toplevel")
    head = _out(folder, "rev-parse", "--verify", "-q", "HEAD") if top else ""
    if not top or not head:
        return GitInfo(None, "", "", str(folder), ())
    remotes = _out(folder, "remote").split()
    remote = "origin" if "origin" in remotes else (remotes[0] if remotes else "")
    origin = _out(folder, "remote", "get-url", remote) if remote else str(folder)
    origin = origin.split("@", 1)[-1]
    branch = _out(folder, "symbolic-ref", "--short", "-q", "HEAD")
    return GitInfo(Path(top), head, branch, origin, _dirty(Path(top)))


def _dirty(top: Path) -> tuple[Path, ...]:
    done = _git(top, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored")
    if done.returncode != 0:
        raise DistError(f"{top}: git status failed: {done.stderr.strip()}")
    entries = done.stdout.split("\0")
    paths: list[Path] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(top / entry[3:].rstrip("/"))
        if entry[0] in "RC":  # a rename names its origin in the next entry
            paths.append(top / entries[i])
            i += 1
    return tuple(paths)


def behind(location: Path, info: GitInfo) -> str | None:
    """Why the branch is not up to date with its remote (None if it is, or has no remote).

    Counts commits on `origin/B` that `B` lacks (distman 0.8.4 counted the
    reverse, refusing unpushed work and deploying stale trees).
    """
    if not info.branch or not _out(location, "remote"):
        return None
    remote_ref = f"origin/{info.branch}"
    if not _out(location, "rev-parse", "--verify", "-q", remote_ref):
        return f"branch '{info.branch}' not found on remote"
    count = int(_out(location, "rev-list", "--count", f"{info.branch}..{remote_ref}") or 0)
    if count:
        return f"Directory is {count} commits behind remote. Run 'git pull' or use --force."
    return None


def commit_summary(top: Path, commit: str) -> list[str]:
    """`-s -vv`: a version's commit message and `date - author`, or nothing if unknown."""
    text = _out(top, "log", "-1", "--format=%B%x00%cd - %an", commit, "--")
    if not text:
        return []
    message, _, when = text.partition("\0")
    return [message.strip(), when.strip()]

"""The grammars of every name fleetdist lets cross to a host or into a path.

A release id becomes a directory under `releases/`, a run id a file under
`.fleetdist/runs/`, an app name a package name and a lock holder, an env
name an exported variable.  Each kind is checked here, once, wherever it
enters (recipe, `<file>.meta.json`, a flag, a run journal), so later code and
the host scripts can take it as plain, inert text: no `/`, no `..`, no
whitespace, no control character, no leading `-`.
"""

from __future__ import annotations

import re

from fleetdist.errors import ConfigError

RELEASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
RELEASE_ID_RULE = "letters, digits and . _ + -, starting with a letter or digit, max 128, no '..'"
HASH_SUFFIX = 11  # "-" and 10 hex of the tree hash: see shipping.artifact.release_id
APP_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")  # a POSIX login name, as useradd takes it
HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]{0,252}")
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV_PREFIX = "FLEETDIST_"


def _plain(value: object, grammar: re.Pattern[str]) -> bool:
    return isinstance(value, str) and bool(grammar.fullmatch(value)) and ".." not in value


def release_id_problem(value: object) -> str | None:
    """Why `value` cannot be a release id (nor a version), or None."""
    if _plain(value, RELEASE_ID):
        return None
    return f"{value!r} cannot be a release id ({RELEASE_ID_RULE})"


def check_release_id(value: object, where: str) -> str:
    """A release id (or a version, which is its prefix) that is safe as a directory name."""
    if problem := release_id_problem(value):
        raise ConfigError(f"{where}: {problem}")
    assert isinstance(value, str)
    return value


def check_version(value: str, where: str) -> str:
    """A resolved recipe version: a release id once the tree hash is appended."""
    check_release_id(value, where)
    if len(value) + HASH_SUFFIX > 128:
        raise ConfigError(f"{where}: {value!r} is too long (max {128 - HASH_SUFFIX} characters)")
    return value


def check_target(value: str | None, flag: str = "--to") -> str | None:
    """A release id named on the command line (`rollback --to`), if any."""
    return None if value is None else check_release_id(value, flag)


def check_run_id(value: object, where: str) -> str:
    """A run id names a journal file: the release id grammar keeps it inside `runs/`."""
    if not _plain(value, RELEASE_ID):
        raise ConfigError(f"{where}: {value!r} is not a run id ({RELEASE_ID_RULE})")
    assert isinstance(value, str)
    return value


def app_problem(value: object) -> str | None:
    """Why `value` cannot be an app name, or None."""
    if _plain(value, APP_NAME):
        return None
    return "use lowercase letters, digits, '.', '_' or '-' (max 64)"


def host_problem(value: object) -> str | None:
    """Why `value` cannot be a host's inventory name, or None."""
    if _plain(value, HOST_NAME):
        return None
    return f"{value!r} is not a valid host name"


def shared_path_problem(path: str) -> str | None:
    """Why `path` cannot be a recipe `shared:` entry (a path inside every release), or None."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "use a relative path inside the release, without '.', '..' or empty parts"
    if any(ord(c) < 32 or c == "\x7f" for c in path) or len(path.encode()) > 1024:
        return "no control characters, at most 1024 bytes"
    if parts[0].startswith(".fleetdist"):
        return "names starting with .fleetdist are fleetdist's own"
    return None


def env_var_problem(name: str) -> str | None:
    """Why `name` cannot be a recipe `env:` key, or None: it is exported as a shell variable."""
    if not ENV_VAR.fullmatch(name):
        return "env names must be identifiers: letters, digits and _, not starting with a digit"
    if name.startswith(RESERVED_ENV_PREFIX):
        return f"names starting with {RESERVED_ENV_PREFIX} are fleetdist's own"
    return None


# A distman target's link name and its version directories (`NAME.N.commit7`), as
# `fleetdist dist --hosts` sends them to hosts and reads them back (see `release.diststeps`).
DIST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")
DIST_NAME_RULE = "letters, digits and . _ + -, starting with a letter, digit or _, max 128"


def dist_name_problem(value: object) -> str | None:
    """Why `value` cannot be a dist target or version name on a host, or None."""
    if _plain(value, DIST_NAME):
        return None
    return f"{value!r} cannot be a dist name on a host ({DIST_NAME_RULE}, no '..')"


def dist_path_problem(path: str) -> str | None:
    """Why `path` cannot be a dist destination folder on a host, or None: absolute,
    normalised (no '.', '..' or empty parts), no control characters."""
    parts = [] if path == "/" else path.split("/")[1:]
    if not path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return f"{path!r} is not an absolute, normalised path"
    if any(ord(c) < 32 or c == "\x7f" for c in path) or len(path.encode()) > 4096:
        return f"{path!r} contains a control character or is longer than 4096 bytes"
    if any(p.startswith(".fleetdist") for p in parts):
        return f"{path!r}: names starting with .fleetdist are fleetdist's own"
    return None


def dist_destination_problem(text: str) -> str | None:
    """Why a dist.json `destination`, its `{VAR}`s filled with a host's values, cannot be
    a link on that host, or None: it must say where it goes as written (absolute, no
    '.' or '..' parts), since a relative one would be this machine's working directory
    and a '..' (in a host's value, say) a folder nobody wrote."""
    if not text.startswith("/"):
        return f"destination {text!r} is not absolute on a host"
    if any(p in (".", "..") for p in text.split("/")):
        return f"destination {text!r} has a '.' or '..' part: write the folder it means"
    return None

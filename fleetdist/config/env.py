"""The only module that talks to envstack: `--env NAME` and `{VAR}` expansion.

An environment is a real envstack stack (`env/<name>.env`, found through
`ENVPATH`, default `<project>/env`).  `{VAR}` placeholders in recipes and
inventories resolve, first match wins, from: host vars, group vars, inventory
default vars, the process environment, then the envstack environment.  So an
operator can override an env file value from the shell, and a host can
override anything for itself.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

from fleetdist.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def load_env(name: str, project: Path) -> dict[str, str]:
    """Load and resolve the envstack stack `name`; values come back as strings.

    Raises ConfigError naming the stack and the directories searched when no
    `<name>.env` exists there, because a typo in `--env` must never fall back
    to an empty environment and deploy to the wrong place.
    """
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(f"--env: {name!r} is not a valid environment name")
    envpath = os.environ.get("ENVPATH") or str(project / "env")
    dirs = [d for d in envpath.split(os.pathsep) if d]
    if not any((Path(d) / f"{name}.env").is_file() for d in dirs):
        raise ConfigError(f"--env: no {name}.env in ENVPATH ({os.pathsep.join(dirs)})")
    try:
        return resolve_stack(name, dirs)
    except EnvFileError as exc:
        raise ConfigError(_printed_error(name, exc.printed) if exc.printed else str(exc)) from None


class EnvFileError(Exception):
    """An env file envstack could not read; `printed` is what envstack printed about a
    malformed one (callers word that their own way)."""

    def __init__(self, message: str, printed: str = "") -> None:
        super().__init__(message)
        self.printed = printed


def resolve_stack(name: str, dirs: list[str]) -> dict[str, str]:
    """Stack `name` from `dirs`, resolved by envstack into strings; raises EnvFileError.

    The one place that drives envstack: `load_env` (`--env`) and the distman
    drop-in's `distman.env` both come through here.
    """
    import envstack.env  # imported lazily: slow import

    saved = os.environ.get("ENVPATH")
    os.environ["ENVPATH"] = os.pathsep.join(dirs)
    try:
        # envstack remembers every stack it has loaded in a process-wide set and
        # skips those on later `include:`s; forget them, or a second load in one
        # process (fab, tests, --env dev after prod) silently drops default.env.
        envstack.env.seen_stacks = set()
        # envstack reports a malformed file by printing to stdout and loading it as
        # empty; capture that, so it neither pollutes --json nor passes as valid.
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            raw = envstack.env.load_environ(name, ignore_missing=False)
            resolved = envstack.env.resolve_environ(raw)
    except Exception as exc:  # envstack raises many types; all mean a broken env file
        raise EnvFileError(f"{name}.env: {exc}") from exc
    finally:
        if saved is None:
            os.environ.pop("ENVPATH", None)
        else:
            os.environ["ENVPATH"] = saved
    if printed.getvalue().strip():
        raise EnvFileError(f"{name}.env: malformed", printed.getvalue())
    return {str(k): "" if v is None else str(v) for k, v in resolved.items()}


def _printed_error(name: str, text: str) -> str:
    """One line from what envstack printed: `FILE:LINE: malformed env file: PROBLEM`."""
    where = re.search(r'File "([^"]+)"(?: line (\d+))?', text)
    problem = re.search(r"SyntaxError: (.*)", text)
    place = f"{name}.env"
    if where:
        place = where.group(1) + (f":{where.group(2)}" if where.group(2) else "")
    reason = problem.group(1) if problem else text.strip().splitlines()[-1]
    return f"{place}: malformed env file: {reason}"


def fill_placeholders(text: str, value: str) -> str:
    """`text` with every `{VAR}` replaced by `value`: its shape, before any lookup."""
    return _PLACEHOLDER.sub(value, text)


def expand(text: str, lookup: Mapping[str, str], *, where: str) -> str:
    """Replace every `{VAR}` in `text`; a missing VAR is an error naming it and `where`."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in lookup:
            raise ConfigError(
                f"{where}: variable {{{key}}} is not set (env file, inventory vars or environment)"
            )
        return lookup[key]

    return _PLACEHOLDER.sub(sub, text)

"""`{VAR}` values for dist.json: the process environment, then distman.env, then defaults.

distman itself reads only `os.environ`, so teams run it as
`envstack distman -- dist`.  fleetdist loads `distman.env` itself (through
the envstack library, from `ENVPATH` and the repo folder), so plain
`fleetdist dist` fills the same tokens, and running under envstack still
works: the process environment comes first.  Last come distman's defaults,
computed from whatever `ENV` and `HOME` the first two gave, so `ENV=dev`
moves the default `DEPLOY_ROOT`.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path

from fleetdist.config.distman import DistError, DistFileError
from fleetdist.config.env import EnvFileError, resolve_stack

STACK = "distman"
_TOKEN = re.compile(r"\{([^{}]*)\}")


def defaults(values: Mapping[str, str]) -> dict[str, str]:
    """distman 0.8.4's built-in values (linux paths), given what is already known."""
    env = values.get("ENV", "prod")
    home = values.get("HOME", os.path.expanduser("~"))
    root = f"{home}/.local/pipe"
    return {
        "ENV": env,
        "HOME": home,
        "PLATFORM": platform.system().lower(),
        "ROOT": root,
        "DEPLOY_ROOT": f"{root}/{env}",
        "CACHE_ROOT": f"{home}/.cache/pipe/{env}",
    }


def load_stack(location: Path) -> dict[str, str]:
    """`distman.env` resolved by envstack, or {} when there is none (as envstack: silent)."""
    dirs = [d for d in os.environ.get("ENVPATH", "").split(os.pathsep) if d]
    dirs.append(str(location))
    if not any((Path(d) / f"{STACK}.env").is_file() for d in dirs):
        return {}
    try:
        return resolve_stack(STACK, dirs)
    except EnvFileError as exc:
        printed = exc.printed.strip()
        raise DistFileError(
            f"{STACK}.env: malformed env file: {printed}" if printed else str(exc)
        ) from None


def lookup(location: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every value a `{VAR}` may take, first source wins."""
    found = dict(load_stack(location))
    found.update(os.environ if environ is None else environ)
    return {**defaults(found), **found}


def resolve(text: str, values: Mapping[str, str], where: str) -> str:
    """`text` with each `{VAR}` replaced; an unknown VAR is distman's one-line error."""

    def sub(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise DistError(f"Cannot resolve token: {match[1]} in {where}")
        return values[match[1]]

    return _TOKEN.sub(sub, text)

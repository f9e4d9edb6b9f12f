"""`--param NAME=VALUE`: declared, typed, checked before anything else happens.

Values become text once, here (`8000`, `true`), and are substituted as that
text; an unknown name, a missing value without a default, a value of the
wrong type or off its pattern is a usage error (exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fleetdist.errors import UsageError
from fleetdist.runbook.model import Param, Runbook

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def resolve(runbook: Runbook, given: Sequence[str]) -> dict[str, str]:
    """Every declared param's value: given with `--param`, else its default."""
    out: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--param: {item!r}: use NAME=VALUE")
        param = runbook.params.get(name)
        if param is None:
            declared = ", ".join(runbook.params) or "none"
            raise UsageError(
                f"--param {name}: {runbook.source} declares no such param (declared: {declared})"
            )
        if name in out:
            raise UsageError(f"--param {name}: given twice")
        out[name] = checked(param, value, f"--param {name}")
    for name, param in runbook.params.items():
        if name not in out:
            if param.default is None:
                raise UsageError(
                    f"{runbook.source}: params.{name}: has no default: pass --param {name}=VALUE"
                )
            out[name] = param.default
    return out


def checked(param: Param, value: str, where: str) -> str:
    """`value` as the text a `param.type` param substitutes, or a usage error."""
    if param.type == "int":
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            raise UsageError(f"{where}: {value!r} is not an int")
        return str(int(text))
    if param.type == "bool":
        lowered = value.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise UsageError(f"{where}: {value!r} is not a bool (true or false)")
        return "true" if lowered in _TRUE else "false"
    if param.pattern and not re.fullmatch(param.pattern, value):
        raise UsageError(f"{where}: {value!r} does not match the pattern {param.pattern!r}")
    return value

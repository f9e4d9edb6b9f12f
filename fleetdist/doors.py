"""Shared by `fabfile.py` and `tasks.py`: turn a task's keyword arguments into
`fleetdist` argv and run the one CLI core, so the three doors cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping

from invoke.exceptions import Exit

from fleetdist import cli


def argv_for(verb: str, flags: Mapping[str, object]) -> list[str]:
    """`verb` plus `--flag value` for each set keyword (`True` -> bare `--flag`)."""
    argv = [verb]
    for key, value in flags.items():
        if value is None or value is False or value == "":
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def run_verb(verb: str, **flags: object) -> None:
    """Run a fleetdist verb; a non-zero result becomes invoke's Exit with the same code."""
    code = cli.main(argv_for(verb, flags))
    if code:
        raise Exit(code=code)

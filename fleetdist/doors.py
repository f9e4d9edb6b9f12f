"""Shared by `fabfile.py` and `tasks.py`: turn a task's keyword arguments into
`fleetdist` argv and run the one CLI core, so the three doors cannot drift.

Values reach the core as the strings the user typed (the tasks declare no
typed defaults), so a bad `--canary=abc` is refused by the same parser, with
the same one-line message and exit code 2, as `fleetdist deploy --canary abc`.
A flag the `fab`/`inv` parser itself refuses gets fleetdist's message too
(see `install_usage_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from invoke.exceptions import Exit, ParseError
from invoke.program import Program

from fleetdist import cli, cliargs
from fleetdist.errors import ExitCode


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


def run_verb(verb: str, *words: str, **flags: object) -> None:
    """Run a fleetdist verb; a non-zero result becomes invoke's Exit with the same code.

    `words` (exec's command) follow a `--`, so none of them is read as a flag.
    """
    code = cli.main(argv_for(verb, flags) + (["--", *words] if words else []))
    if code == cli.INTERRUPTED:
        cli.leave(code)  # as `fleetdist` does: no wait for worker threads, no traceback
    if code:
        raise Exit(code=code)


def usage_exit(argv: Sequence[str], refused: str) -> Exit:
    """What a door's parse error becomes: fleetdist's one-line message (its parser's
    own wording when it refuses `argv` too, else the door's), and exit code 2."""
    message = cli.usage_error(argv) or refused
    return Exit(code=cli.fail(argv, message, "UsageError", ExitCode.USAGE))


_parse_tasks = Program.parse_tasks


def _parse_tasks_like_fleetdist(self: Any) -> None:
    try:
        _parse_tasks(self)
    except ParseError as exc:
        argv = list(self.core.unparsed)
        if not argv or argv[0] not in cliargs.VERBS:
            raise  # a chore (`inv test --bogus`): invoke's own message and exit code
        raise usage_exit(argv, str(exc)) from None


def install_usage_errors() -> None:
    """Make invoke's parse errors for fleetdist verbs exit 2 with fleetdist's message.

    Invoke prints its own wording and exits 1, which is also fleetdist's "some
    hosts failed".  Patched on the class from the fabfile, which invoke loads
    before it parses the task flags.
    """
    Program.parse_tasks = _parse_tasks_like_fleetdist  # type: ignore[method-assign]

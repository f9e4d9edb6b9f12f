"""Host commands as data: the one place that quotes.

A `Sh` fragment carries two texts built side by side: `text`, what the host
runs, and `shown`, what logs and `--dry-run` print, with secret values
masked as `***`. A secret env value is in neither: it rides in `secrets`,
and `script` makes the host read it from stdin (`stdin_head`), because a
script's text is the argv of a process anyone on the host can list.
Fragments are built from argv lists (`cmd`), variable assignments (`assign`)
or the user's own shell snippets (`user_shell`, which run under `sh -c` so
their quoting is theirs, and ours stays intact), and combined with
`and_then`, `or_else` and `script`. No caller ever formats a path into a
shell string by hand.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MASK = "***"


@dataclass(frozen=True)
class Sh:
    """One piece of POSIX sh, with its display twin and the secret values it exports."""

    text: str
    shown: str
    # (variable, value) in the order exported; out of repr, so no traceback shows a value
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def and_then(self, other: Sh) -> Sh:
        return Sh(
            f"{self.text} && {other.text}",
            f"{self.shown} && {other.shown}",
            self.secrets + other.secrets,
        )

    def or_else(self, other: Sh) -> Sh:
        return Sh(
            f"{self.text} || {other.text}",
            f"{self.shown} || {other.shown}",
            self.secrets + other.secrets,
        )

    def append_to(self, target: str) -> Sh:
        """Append stdout to `target`, a shell expression over assigned variables ("$R/x")."""
        return Sh(f"{self.text} >> {target}", f"{self.shown} >> {target}", self.secrets)

    @property
    def stdin_head(self) -> bytes:
        """What the host must be sent first on stdin: one line per secret (see `script`).

        `\\` and newlines are escaped, so any value fits on one line; the
        script undoes that with `printf %b`.
        """
        lines = (v.replace("\\", "\\\\").replace("\n", "\\n") + "\n" for _, v in self.secrets)
        return "".join(lines).encode()


def cmd(*argv: str, secret: Iterable[str] = ()) -> Sh:
    """An argv list, each word quoted; words listed in `secret` are masked in `shown`."""
    hidden = set(secret)
    return Sh(shlex.join(argv), " ".join(MASK if a in hidden else shlex.quote(a) for a in argv))


def assign(name: str, value: str, *, secret: bool = False) -> Sh:
    """`NAME=value` with the value quoted; `name` must be a shell identifier."""
    if not name.isidentifier():
        raise ValueError(f"not a shell variable name: {name!r}")
    return Sh(f"{name}={shlex.quote(value)}", f"{name}={MASK if secret else shlex.quote(value)}")


def export(name: str, value: str, *, secret: bool = False) -> Sh:
    """`export NAME=value`; a secret's value is left to `script` to read from stdin.

    Exports belong in `steps`' `user_env` function, which only the subshell
    running a recipe command calls: the script's own variables never change.
    """
    a = assign(name, value, secret=secret)
    if secret:
        return Sh(f'export {name}="${_secret_var(name)}"', f"export {a.shown}", ((name, value),))
    return Sh(f"export {a.text}", f"export {a.shown}")


def _secret_var(name: str) -> str:
    """Where `script` keeps a secret until it is exported: a name of fleetdist's own
    (recipes may not use FLEETDIST_*), so a secret never overwrites a script variable."""
    return f"FLEETDIST_SECRET_{name}"


def raw(text: str) -> Sh:
    """Shell written by fleetdist itself that uses only `$VARIABLES` set by `assign`.

    Use it for control flow (`if`, `for`, `"$R/current"`); every value it
    touches must come from a variable assigned with `assign`, never from an
    f-string.
    """
    return Sh(text, text)


def user_shell(snippet: str) -> Sh:
    """A recipe's own command (test, hook, healthcheck), run as `sh -c SNIPPET`."""
    return cmd("sh", "-c", snippet)


def fail(fmt: str, *args: str, code: int = 1) -> Sh:
    """`{ printf FMT ARGS >&2; exit CODE; }`: report on stderr and stop the script."""
    message = cmd("printf", fmt + "\\n", *args)
    return Sh(f"{{ {message.text} >&2; exit {code}; }}", f"{{ {message.shown} >&2; exit {code}; }}")


def as_user(sh: Sh, user: str, *, mark: str = "") -> Sh:
    """`sh` run as `user` through `sudo -n` (never a password prompt: a host whose sudo
    wants one fails at once, see `SUDO_NEEDS_PASSWORD`).  stdin passes through sudo, so
    secrets and uploads still arrive; `shown` keeps the script readable.  `mark`, if
    given, is the first line the script prints: proof that sudo did start it."""
    text = f"printf '%s\\n' {shlex.quote(mark)}\n{sh.text}" if mark else sh.text
    wrapped = shlex.join(["sudo", "-n", "-H", "-u", user, "--", "sh", "-c", text])
    header = f"# as {user}: sudo -n -H -u {shlex.quote(user)} -- sh -c SCRIPT, where SCRIPT is:"
    return Sh(wrapped, f"{header}\n{sh.shown}", sh.secrets)


# What `sudo -n` says when it would have to ask for a password.
SUDO_NEEDS_PASSWORD = "sudo: a password is required"


def function(name: str, body: Sequence[Sh], *, joiner: str = " &&\n") -> Sh:
    """`name() { body }`; an empty body is `:`."""
    text = joiner.join(p.text for p in body) or ":"
    shown = joiner.join(p.shown for p in body) or ":"
    secrets = tuple(s for p in body for s in p.secrets)
    return Sh(f"{name}() {{\n{text}\n}}", f"{name}() {{\n{shown}\n}}", secrets)


def script(parts: Iterable[Sh]) -> Sh:
    """Join fragments into one script that stops at the first failing line.

    The script first reads its fragments' secret values, a line each, from
    stdin (the transport sends `stdin_head` before anything else), so no
    value is in its text; a fragment's `export NAME` then exports it.
    """
    items = list(parts)
    secrets: dict[str, str] = {}
    for name, value in (s for p in items for s in p.secrets):
        if secrets.setdefault(name, value) != value:
            raise ValueError(f"secret {name} exported with two values")
    reads = [
        raw(
            f'IFS= read -r {v} || {{ echo "secret {n} did not arrive on stdin" >&2; exit 1; }}\n'
            f'{v}=$(printf "%bx" "${v}"); {v}=${{{v}%x}}'
        )
        for n, v in ((n, _secret_var(n)) for n in secrets)
    ]
    items = [raw("set -eu"), *reads, *items]
    return Sh(
        "\n".join(p.text for p in items),
        "\n".join(p.shown for p in items),
        tuple(secrets.items()),
    )

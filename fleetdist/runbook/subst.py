"""`${name}`, `${host.name}`, `${host.vars.X}`: the only substitution there is.

No expression language: a reference names a declared parameter or a fact
of the host the step runs for, nothing else, and `$${` writes a literal
`${` (so a shell string can still say `$${HOME}`).  References are checked
when the runbook is loaded (`check`) and resolved per host (`Values`): a
host lacking a variable is an error naming the host and the field.

Where a value lands decides how it is quoted, so that no value can become
code: an argv item stays one argument (`text`, the argv is quoted later
as a whole), and in a `shell:` string (`shell`) a value is quoted for the
quoting context it sits in: `shlex.quote` outside quotes, and inside `'...'`
or `"..."` the escaping that keeps it literal there.  Contexts the scanner
cannot be sure of (after `$(` or a backquote inside double quotes, after
`$'` or a here-document) refuse a reference at load time.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from fleetdist.config.schema import Host
from fleetdist.errors import ConfigError
from fleetdist.runbook.model import Template

_REF = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
PARAM = re.compile(r"[a-z_][a-z0-9_]*")
_VAR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
HOST_VARS = "host.vars."

Context = Literal["plain", "single", "double"]
_Fmt = Callable[[str, str], str]  # (value, the reference's name) -> the text put in its place


def _matches(text: str) -> Iterator[re.Match[str]]:
    return _REF.finditer(text)


def check(t: Template, params: Mapping[str, object], *, host: bool = True) -> None:
    """Every reference in `t` names a declared param, or (if `host`) the host's name
    or one of its vars; `${` without its `}` is refused too."""
    for match in _matches(t.text):
        inner = match.group(1)
        if inner is None:
            continue
        if inner in params:
            continue
        if host and (inner == "host.name" or _is_var_ref(inner)):
            continue
        known = ", ".join(f"${{{p}}}" for p in params) or "none declared"
        extra = ", ${host.name}, ${host.vars.NAME}" if host else ""
        raise ConfigError(f"{t.where}: unknown reference ${{{inner}}} (params: {known}{extra})")
    stripped = _REF.sub("", t.text)
    if "${" in stripped:
        raise ConfigError(f"{t.where}: '${{' without a closing '}}' (write $${{ for a literal ${{)")


def _is_var_ref(inner: str) -> bool:
    return inner.startswith(HOST_VARS) and bool(_VAR.fullmatch(inner[len(HOST_VARS) :]))


def mentions_host(t: Template) -> bool:
    """True if `t` refers to the host (so it differs from host to host)."""
    return any((m.group(1) or "").startswith("host.") for m in _matches(t.text))


@dataclass(frozen=True)
class Values:
    """What references resolve to for one host: the run's params (as text) and the host."""

    params: Mapping[str, str]
    host: Host | None = None

    def get(self, inner: str, where: str) -> str:
        if inner in self.params:
            return self.params[inner]
        if self.host is not None and inner == "host.name":
            return self.host.name
        if self.host is not None and _is_var_ref(inner):
            name = inner[len(HOST_VARS) :]
            if name not in self.host.vars:
                raise ConfigError(f"{where}: host {self.host.name} has no var {name!r}")
            return self.host.vars[name]
        raise ConfigError(f"{where}: unknown reference ${{{inner}}}")


def text(t: Template, values: Values) -> str:
    """`t` with each reference replaced by its value, unquoted (an argv item, a URL)."""
    return _replace(t, values, lambda value, _ctx: value)


def shell(t: Template, values: Values) -> str:
    """`t` as a shell string, each value quoted for the context it sits in."""
    contexts = iter(contexts_of(t))
    return _replace(t, values, lambda value, _ctx: quote(value, next(contexts)))


def _replace(t: Template, values: Values, fmt: _Fmt) -> str:
    out, last = [], 0
    for match in _matches(t.text):
        out.append(t.text[last : match.start()])
        inner = match.group(1)
        out.append("${" if inner is None else fmt(values.get(inner, t.where), inner))
        last = match.end()
    out.append(t.text[last:])
    return "".join(out)


def quote(value: str, context: Context) -> str:
    """`value` made literal where it lands: a word of its own, or part of a quoted one."""
    if context == "single":  # close, a quote in double quotes, reopen
        return value.replace("'", "'\"'\"'")
    if context == "double":
        return re.sub(r'([\\"$`])', r"\\\1", value)
    return shlex.quote(value)


def contexts_of(t: Template) -> list[Context]:
    """The quoting context of each reference of a shell string, in order (see module).

    A small scanner of POSIX sh quoting: plain text, `'...'`, `"..."`, and the
    places it does not follow (a comment, a backquoted command, a command
    substitution inside double quotes, `$'...'`, a here-document), where a
    reference is refused rather than guessed at.
    """
    spans = {m.start(): m for m in _matches(t.text) if m.group(1) is not None}
    escapes = {m.start(): m.end() for m in _matches(t.text) if m.group(1) is None}
    found: list[Context] = []
    scan = _Scan(t.text)
    while scan.i < len(scan.s):
        if scan.i in spans:
            ref, context = spans[scan.i], _PLACED.get(scan.state)
            if scan.unsure or context is None:
                why = scan.unsure or f"the start of {_PLACES[scan.state]}"
                raise ConfigError(
                    f"{t.where}: ${{{ref.group(1)}}} comes after {why}, where fleetdist "
                    "cannot tell how to quote it: pass it as an argv item, or move it"
                )
            found.append(context)
            scan.i = ref.end()
        elif scan.i in escapes:
            scan.i = escapes[scan.i]
        elif scan.s[scan.i] == "\\" and scan.i + 1 in spans:  # `\${x}` would escape a quote
            inner = spans[scan.i + 1].group(1)
            raise ConfigError(
                f"{t.where}: ${{{inner}}} right after a backslash: drop the backslash"
            )
        else:
            scan.step()
    if len(found) != len(spans):  # a reference the scanner stepped over: never guess
        raise ConfigError(f"{t.where}: fleetdist cannot tell how to quote every reference here")
    return found


_PLACED: dict[str, Context] = {"plain": "plain", "single": "single", "double": "double"}
_PLACES = {"comment": "a comment", "backquote": "a backquoted command"}


class _Scan:
    """Where a character of a shell string stands: `state` is plain, single, double,
    comment or backquote; `unsure` says why nothing after it can be placed."""

    def __init__(self, s: str) -> None:
        self.s, self.i, self.state, self.unsure = s, 0, "plain", ""

    def step(self) -> None:
        ch, pair, state = self.s[self.i], self.s[self.i : self.i + 2], self.state
        if state == "single":
            self.state = "plain" if ch == "'" else state
        elif state == "comment":
            self.state = "plain" if ch == "\n" else state
        elif state == "backquote":
            self._backquote(ch)
        elif state == "double":
            self._double(ch, pair)
        else:
            self._plain(ch, pair)
        self.i += 1

    def _plain(self, ch: str, pair: str) -> None:
        starts_word = self.i == 0 or self.s[self.i - 1] in " \t\n;&|()"
        if ch == "\\":
            self.i += 1
        elif ch in "'\"`":
            self.state = {"'": "single", '"': "double", "`": "backquote"}[ch]
        elif ch == "#" and starts_word:
            self.state = "comment"
        elif pair == "$'":
            self.unsure = "a $'...' string"
        elif pair == "<<":
            self.unsure = "a here-document"

    def _double(self, ch: str, pair: str) -> None:
        if ch == "\\":
            self.i += 1
        elif ch == '"':
            self.state = "plain"
        elif pair == "$(" or ch == "`":
            self.unsure = "a command substitution inside double quotes"

    def _backquote(self, ch: str) -> None:
        if ch == "\\":
            self.i += 1
        elif ch == "`":
            self.state = "plain"
        elif ch in "'\"":
            self.unsure = "quotes inside a backquoted command"

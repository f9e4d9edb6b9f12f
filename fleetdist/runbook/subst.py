"""`${name}`, `${host.name}`, `${host.vars.X}`: the only substitution there is.

No expression language: a reference names a declared parameter or a fact
of the host the step runs for, nothing else, and `$${` writes a literal
`${` (so a shell string can still say `$${HOME}`).  References are checked
when the runbook is loaded (`check`) and resolved per host (`Values`): a
host lacking a variable is an error naming the host and the field.

Where a value lands decides how it is quoted, so that no value can become
code: an argv item stays one argument (`text`, the argv is quoted later
as a whole), and in a `shell:` string (`shell`) a value is quoted for the
quoting context it sits in: single quotes outside quotes, inside `'...'`
or `"..."` the escaping that keeps it literal there, and in `$((...))` only
an integer.  Contexts the scanner cannot be sure of (after `$(` or a
backquote inside double quotes, after `$'` or a here-document, the word
after `>&`/`<&` and inside a literal `${...}` or `[[ ... ]]`, which bash
expands a second time) refuse a reference at load time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote as quote_url
from urllib.parse import urlsplit

from fleetdist.config.schema import Host
from fleetdist.errors import ConfigError
from fleetdist.runbook.model import Template

_REF = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
PARAM = re.compile(r"[a-z_][a-z0-9_]*")
_VAR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
HOST_VARS = "host.vars."

Context = Literal["plain", "single", "double", "arith"]
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
        """The value of `${inner}`; one no command line can carry (a NUL) is refused."""
        if inner in self.params:
            return _carried(self.params[inner], f"{where}: param {inner!r}")
        if self.host is not None and inner == "host.name":
            return self.host.name
        if self.host is not None and _is_var_ref(inner):
            name = inner[len(HOST_VARS) :]
            if name not in self.host.vars:
                raise ConfigError(f"{where}: host {self.host.name} has no var {name!r}")
            return _carried(self.host.vars[name], f"{where}: host {self.host.name}: var {name!r}")
        raise ConfigError(f"{where}: unknown reference ${{{inner}}}")


def _carried(value: str, what: str) -> str:
    """`value`, unless it holds a NUL: a command cut short there would be another one."""
    if "\0" in value:
        raise ConfigError(f"{what} holds a NUL character, which no command can carry")
    return value


def text(t: Template, values: Values) -> str:
    """`t` with each reference replaced by its value, unquoted (an argv item, a URL)."""
    return _replace(t, values, lambda value, _ctx: value)


_URL_PARTS = ("scheme", "netloc", "path", "query", "fragment")
_HOSTISH = re.compile(r"[A-Za-z0-9._-]+")  # a host name, an IPv4 address or a port


def url(t: Template, values: Values) -> str:
    """`t` as a URL whose shape the runbook decides, not a value: a value in the host or
    port must be a host name, address or number (no `@`, `:` or `/` that would move the
    request elsewhere), one in the path, query or fragment is percent-encoded there."""
    counter = iter(range(1 << 30))
    marked = _replace(t, values, lambda _value, _inner: f"fleetdistref{next(counter)}x")
    parts = urlsplit(marked)
    where = [
        next((p for p in _URL_PARTS if f"fleetdistref{n}x" in getattr(parts, p)), "")
        for n in range(next(counter))
    ]
    places = iter(where)
    host = f" (host {values.host.name})" if values.host else ""

    def fmt(value: str, inner: str) -> str:
        place = next(places)
        if place in ("path", "query", "fragment"):
            return quote_url(value, safe="/" if place == "path" else "")
        if place == "netloc" and _HOSTISH.fullmatch(value):
            return value
        raise ConfigError(
            f"{t.where}: ${{{inner}}} is in the URL's {_NAMES.get(place, place)}: {value!r}"
            f" is not a host name, address or port{host}"
        )

    return _replace(t, values, fmt)


_NAMES = {"netloc": "host or port", "scheme": "scheme", "": "scheme"}


def shell(t: Template, values: Values) -> str:
    """`t` as a shell string, each value quoted for the context it sits in."""
    contexts = iter(contexts_of(t))
    host = f" (host {values.host.name})" if values.host else ""

    def fmt(value: str, inner: str) -> str:
        return quote(value, next(contexts), f"{t.where}: ${{{inner}}}", host)

    return _replace(t, values, fmt)


def _replace(t: Template, values: Values, fmt: _Fmt) -> str:
    out, last = [], 0
    for match in _matches(t.text):
        out.append(t.text[last : match.start()])
        inner = match.group(1)
        out.append("${" if inner is None else fmt(values.get(inner, t.where), inner))
        last = match.end()
    out.append(t.text[last:])
    return "".join(out)


_INT = re.compile(r"[+-]?[0-9]{1,18}")
_BARE = re.compile(r"[A-Za-z0-9_@%+:./-]+")  # nothing bash expands: no `,` `..` `=` `~` glob


def quote(value: str, context: Context, what: str = "a value", host: str = "") -> str:
    """`value` made literal where it lands: a word of its own, or part of a quoted one.

    Outside quotes it is single-quoted unless made only of characters no
    shell expands (`shlex.quote` leaves more bare: `a,b` or `1..3` inside
    `{...}` would be brace-expanded by bash, `A=1` in command position is
    an assignment).  In `$((...))` nothing can be
    quoted (bash evaluates `a[$(cmd)]` there even inside quotes), so only an
    integer may land there, written as a number (a negative one in brackets).
    """
    if context == "single":  # close, a quote in double quotes, reopen
        return value.replace("'", "'\"'\"'")
    if context == "double":
        return re.sub(r'([\\"$`])', r"\\\1", value)
    if context == "arith":
        if not _INT.fullmatch(value.strip()):
            raise ConfigError(
                f"{what} is in $((...)), where only an integer is safe, not {value!r}{host}"
            )
        number = int(value)
        return str(number) if number >= 0 else f"({number})"
    if _BARE.fullmatch(value) and ".." not in value:
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


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
            dollar = _LEAD.search(scan.s, 0, scan.i) is not None
            if scan.unsure or scan.dup or dollar or context is None:
                why = scan.unsure or scan.dup or f"the start of {_PLACES.get(scan.state, '')}"
                why = "a $ (with it the value would name a variable)" if dollar else why
                raise ConfigError(
                    f"{t.where}: ${{{ref.group(1)}}} comes after {why}, where fleetdist "
                    "cannot tell how to quote it: pass it as an argv item, or move it"
                )
            found.append(context)
            scan.i = ref.end()
        elif scan.i in escapes:
            scan.i = escapes[scan.i]
            scan.parameter()
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


_PLACED: dict[str, Context] = {
    "plain": "plain",
    "single": "single",
    "double": "double",
    "arith": "arith",
}
_PLACES = {
    "comment": "a comment",
    "backquote": "a backquoted command",
    "param": "a literal ${...} (bash evaluates parts of it as arithmetic)",
    "test": "a [[ ... ]] (bash evaluates its operands as arithmetic)",
}
_LEAD = re.compile(r"\$(?:\\\n)*\Z")  # a `$`, maybe across line continuations, just before
_DUP = "the word after >& or <& (bash expands it twice)"
_BREAKS = " \t\n;&|()<>"  # what ends an unquoted word


class _Scan:
    """Where a character of a shell string stands: `state` is plain, single, double,
    comment, backquote, arith (`$((...))`, `((...))`), param (a literal `${...}`) or test
    (`[[ ... ]]`); `unsure` says why nothing after it can be placed, `dup` that
    this is the word after `>&`/`<&`, which bash expands a second time."""

    def __init__(self, s: str) -> None:
        self.s, self.i, self.state, self.unsure = s, 0, "plain", ""
        self.dup, self.dup_word, self.outer, self.depth = "", False, "plain", 0

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
        elif state == "arith":
            self._arith(ch, pair)
        elif state in ("param", "test"):
            self._closing(ch, pair)
        else:
            self._plain(ch, pair)
        self.i += 1

    def parameter(self) -> None:
        """A `$${` escape: what follows is a parameter expansion up to its `}`."""
        if self.state in ("plain", "double"):
            self.outer, self.state = self.state, "param"
        elif self.state in ("param", "test", "arith"):
            self.unsure = "a literal ${ inside another expansion"

    def _plain(self, ch: str, pair: str) -> None:
        starts_word = self.i == 0 or self.s[self.i - 1] in " \t\n;&|()"
        if self.dup:  # the word after >& or <&: blanks before it, then up to a break
            if ch not in " \t":
                self.dup_word = True
            if pair == "$(":  # the word goes on past the command's `)`: never guess
                self.unsure = _DUP
            elif self.dup_word and ch in _BREAKS:
                self.dup, self.dup_word = "", False
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
        elif pair in (">&", "<&"):
            self.dup, self.i = _DUP, self.i + 1
        elif self.s.startswith("$((", self.i):
            self.state, self.depth, self.i = "arith", 0, self.i + 2
        elif pair == "((" and starts_word:  # bash's arithmetic command, `for ((...))`
            self.state, self.depth, self.i = "arith", 0, self.i + 1
        elif pair == "[[" and starts_word:
            self.outer, self.state, self.i = "plain", "test", self.i + 1

    def _double(self, ch: str, pair: str) -> None:
        if ch == "\\":
            self.i += 1
        elif ch == '"':
            self.state = "plain"
        elif pair == "$(" or ch == "`":
            self.unsure = "a command substitution inside double quotes"

    def _arith(self, ch: str, pair: str) -> None:
        if ch in "'\"`\\" or pair == "$(":
            self.unsure = "quotes or a command inside $((...))"
        elif ch == "(":
            self.depth += 1
        elif ch == ")" and self.depth == 0 and pair == "))":
            self.state, self.i = "plain", self.i + 1
        elif ch == ")":
            self.depth -= 1

    def _closing(self, ch: str, pair: str) -> None:
        """Inside a literal `${...}` or a `[[ ... ]]`: no reference, until it closes."""
        if ch in "'\"`\\" or pair == "$(":
            self.unsure = f"quotes or a command inside {_PLACES[self.state]}"
        elif self.state == "param" and ch == "}":
            self.state = self.outer
        elif self.state == "test" and pair == "]]":
            self.state, self.i = self.outer, self.i + 1

    def _backquote(self, ch: str) -> None:
        if ch == "\\":
            self.i += 1
        elif ch == "`":
            self.state = "plain"
        elif ch in "'\"":
            self.unsure = "quotes inside a backquoted command"

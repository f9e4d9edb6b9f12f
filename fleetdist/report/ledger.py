"""The per-host ledger: one JSON object per line, appended by a rendered command.

Fields: time (UTC ISO 8601), operator, action (deploy, rollback, unlock),
app, env, run, from, to, result (ok, failed, reverted, rolled-back), and
for failures the step and a one-line error.  Unknown fields are kept when
read, so older fleetdist versions and newer ledgers coexist.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from datetime import UTC, datetime
from typing import Any


def operator() -> str:
    """Who is acting: FLEETDIST_OPERATOR, else user@controller-host."""
    explicit = os.environ.get("FLEETDIST_OPERATOR")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(
    action: str,
    *,
    app: str,
    env: str,
    run: str,
    from_release: str | None,
    to_release: str | None,
    result: str,
    who: str,
    step: str | None = None,
    error: str | None = None,
) -> str:
    """One ledger line (no newline), compact and key-sorted so it greps well."""
    data: dict[str, Any] = {
        "time": now(),
        "operator": who,
        "action": action,
        "app": app,
        "env": env,
        "run": run,
        "from": from_release,
        "to": to_release,
        "result": result,
    }
    if step:
        data["step"] = step
    if error:
        data["error"] = error
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


_FROM, _TO = "@@from@@", "@@to@@"


def template(action: str, **fields: Any) -> tuple[str, str, str]:
    """A ledger line cut around its `from` and `to` values, which the host fills in.

    The host knows best which release it left and which it went to (a
    rollback picks its target there), so the controller renders everything
    else and the host splices in two JSON strings (`ledger` in release/sh/lib.sh).
    """
    line = record(action, from_release=_FROM, to_release=_TO, **fields)
    head, rest = line.split(json.dumps(_FROM), 1)
    middle, tail = rest.split(json.dumps(_TO), 1)
    return head, middle, tail


def parse(text: str) -> list[dict[str, Any]]:
    """Read ledger lines back; a torn or foreign line is skipped, never fatal."""
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries

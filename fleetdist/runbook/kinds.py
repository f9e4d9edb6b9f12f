"""Run one resolved action (`actions`) that is not a deploy or rollback; never raises.

Each returns `Done`: ok or not, why not in one line, and each line of output
goes to `on_line` as it arrives (the run log and the console take it from
the events the engine makes of it).  A remote command is sent exactly as
`actions` built it; a local one runs on the controller in the project
directory, its argv never through a shell unless it was a `shell:` string.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.errors import FleetdistError
from fleetdist.report.console import clean
from fleetdist.runbook.actions import HttpGet, LocalRun, Prompt, Remote, describe_get
from fleetdist.transport.base import LineSink, Transport

_PROMPT = threading.Lock()  # one question at a time on the terminal


@dataclass
class Done:
    """How an action ended: `error` is one line; `data` what the journal keeps of it."""

    ok: bool
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def remote(action: Remote, transport: Transport, timeout: float | None, on_line: LineSink) -> Done:
    try:
        result = transport.run(action.sent.text, timeout=timeout, on_line=on_line)
    except FleetdistError as exc:
        return Done(False, f"{exc} (step timeout {timeout:g}s)" if timeout else str(exc))
    if result.ok:
        return Done(True)
    return Done(False, result.tail() or f"exit code {result.exit_code}")


def local(action: LocalRun, cwd: Path, timeout: float | None, on_line: LineSink) -> Done:
    """Run the argv here; the output comes back whole and is passed on line by line."""
    try:
        ran = subprocess.run(
            action.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Done(False, f"{action.argv[0]}: still running after {timeout:g}s")
    except OSError as exc:
        return Done(False, f"{action.argv[0]}: {exc.strerror}")
    lines: dict[str, list[str]] = {}
    for stream, data in (("stdout", ran.stdout), ("stderr", ran.stderr)):
        lines[stream] = data.decode("utf-8", errors="replace").splitlines()
        for line in lines[stream]:
            on_line(stream, line)
    if ran.returncode == 0:
        return Done(True)
    tail = " | ".join((lines["stderr"] or lines["stdout"])[-5:])
    return Done(False, tail or f"exit code {ran.returncode}")


def http(get: HttpGet, deadline: float | None, on_line: LineSink) -> Done:
    """GET until the answer is as expected, `tries` times at most, `delay` apart."""
    last = "no answer"
    for n in range(1, get.tries + 1):
        status, body, last = _get(get)
        if status == get.status and (not get.body or get.body in body):
            on_line("stdout", f"GET {get.url}: status {status} (try {n})")
            return Done(True)
        if status == get.status:
            last = f"the body does not contain {get.body!r}"
        elif status:
            last = f"status {status}, want {get.status}"
        if n < get.tries:
            if deadline is not None and time.monotonic() + get.delay > deadline:
                break
            time.sleep(get.delay)
    return Done(False, f"{describe_get(get)}: {last}")


def _get(get: HttpGet) -> tuple[int, str, str]:
    """(status, body, what happened) of one GET; status 0 when nothing answered."""
    request = urllib.request.Request(get.url, headers={"User-Agent": "fleetdist"})
    try:
        with urllib.request.urlopen(request, timeout=get.timeout) as answer:
            status, body = answer.status, answer.read(1 << 20)
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read(1 << 20)
    except (OSError, ValueError) as exc:
        return 0, "", f"no answer ({exc})"
    return status, body.decode("utf-8", errors="replace"), f"status {status}"


def prompt(action: Prompt, *, yes: bool, host: str) -> Done:
    """Wait for Enter at a terminal; `--yes` goes on at once; without a terminal, fail."""
    if yes:
        return Done(True, data={"confirmed": "--yes"})
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return Done(False, f"pause: {action.message}: no terminal to confirm on (pass --yes)")
    with _PROMPT:  # the message may hold param and host var values: no escape reaches the tty
        line = f"[{host}] {clean(action.message)} (Enter to go on)"
        print(line, end=" ", file=sys.stderr, flush=True)
        sys.stdin.readline()
    return Done(True)

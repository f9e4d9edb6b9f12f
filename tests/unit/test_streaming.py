"""Output streamed as it is printed: line splitting, the local transport, the mux wire."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from fleetdist.config.schema import Host
from fleetdist.transport.base import MAX_LINE, Lines, Result
from fleetdist.transport.local import LocalTransport
from fleetdist.transport.mux import wire
from fleetdist.transport.mux.client import MuxTransport


def test_lines_are_split_across_chunks_and_the_last_one_is_flushed() -> None:
    seen: list[tuple[str, str]] = []
    lines = Lines("stderr", lambda stream, line: seen.append((stream, line)))
    for chunk in (b"fir", b"st\r\nsec", b"ond\n\nthi", b"rd \xff"):
        lines.add(chunk)
    assert seen == [("stderr", "first"), ("stderr", "second"), ("stderr", "")]
    lines.close()
    assert seen[-1] == ("stderr", "third \ufffd")


def test_a_line_that_never_ends_is_passed_on_in_pieces() -> None:
    seen: list[str] = []
    lines = Lines("stdout", lambda _stream, line: seen.append(line))
    lines.add(b"x" * (2 * MAX_LINE + 5))
    assert [len(piece) for piece in seen] == [MAX_LINE, MAX_LINE]
    assert len(lines.pending) == 5


def test_tail_never_shows_protocol_lines() -> None:
    result = Result(130, "previous\n@@send\n@@received\n@@staged\ntesting\n", "")
    assert result.tail() == "previous | testing"
    assert Result(1, "", "@@staged\nboom\n").tail() == "boom"


def test_local_lines_arrive_while_the_script_still_runs(tmp_path: Path) -> None:
    transport = LocalTransport(Host(name="web01", transport="local", local_root=str(tmp_path)))
    seen: list[tuple[str, str, float]] = []
    started = time.monotonic()
    result = transport.run(
        "echo first; echo oops >&2; sleep 1; printf last",
        on_line=lambda stream, line: seen.append((stream, line, time.monotonic())),
    )
    ended = time.monotonic()
    assert sorted((s, ln) for s, ln, _ in seen) == [
        ("stderr", "oops"),
        ("stdout", "first"),
        ("stdout", "last"),
    ]
    first = next(t for _, ln, t in seen if ln == "first")
    assert first - started < 0.8 < ended - started, "streamed before the sleep ended"
    assert result == Result(0, "first\nlast", "oops\n")


def test_mux_client_passes_streamed_lines_on_before_the_reply() -> None:
    """The daemon's side of the wire: `line` messages while the script runs, then the reply."""
    ours, daemon = socket.socketpair()
    seen: list[tuple[str, str]] = []

    def serve() -> None:
        request = wire.receive(daemon)
        assert request is not None and request["stream"] is True
        wire.send(daemon, {"op": "line", "stream": "stdout", "line": "hello [/srv]"})
        wire.send(daemon, {"op": "line", "stream": "stderr", "line": "warn"})
        wire.send(daemon, {"exit": 3, "stdout": "hello [/srv]\n", "stderr": "warn\n"})

    thread = threading.Thread(target=serve)
    thread.start()
    transport = MuxTransport(Host(name="web01"), ours)
    result = transport.run("true", on_line=lambda stream, line: seen.append((stream, line)))
    thread.join()
    assert seen == [("stdout", "hello [/srv]"), ("stderr", "warn")]
    assert result == Result(3, "hello [/srv]\n", "warn\n")
    transport.close()
    daemon.close()

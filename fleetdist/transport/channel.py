"""One command on one SSH session channel: send its input, collect its output, by a deadline.

Kept apart from the connection handling in `ssh.py`: this is the part that
moves bytes (bounded output tails, window-aware upload bursts, an abort
socket that ends the wait when the run that started the command went away).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from fleetdist.transport.base import Lines, Result

CHUNK = 1 << 16
BURST_PACKETS = 8  # upload bursts: see _upload
OUTPUT_LIMIT = 1 << 20  # bytes of each output stream kept per command


def exchange(
    chan: Any,
    feed: BinaryIO | None,
    deadline: float,
    abort: socket.socket | None = None,
    after: bytes | None = None,
    head: bytes = b"",
    sinks: tuple[Lines, Lines] | None = None,
) -> Result:
    """Send `head`, then `feed` (after the script printed the line `after`, if given); collect.

    Both output streams and the exit status are collected by `deadline`;
    `sinks` (stdout, stderr) see every chunk as it comes, split into lines.
    If the script stops reading early (it failed before taking the upload),
    sending stops quietly and its exit status tells what happened.
    """
    out, err = _Tail(), _Tail()
    out_lines, err_lines = sinks or (Lines("stdout", None), Lines("stderr", None))
    # poll, not select: with hundreds of hosts open, descriptors pass select's 1024 limit.
    watch = select.poll()
    watch.register(chan, select.POLLIN)
    if abort is not None:
        watch.register(abort, select.POLLIN)

    def drain() -> None:
        while chan.recv_ready():
            chunk = chan.recv(CHUNK)
            out.add(chunk)
            out_lines.add(chunk)
        while chan.recv_stderr_ready():
            chunk = chan.recv_stderr(CHUNK)
            err.add(chunk)
            err_lines.add(chunk)

    def wait(done: Callable[[], bool]) -> None:
        while not chan.eof_received and not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not chan.get_transport().is_active():
                raise EOFError("connection closed")
            ready = watch.poll(min(left, 5.0) * 1000)
            if abort is not None and any(fd == abort.fileno() for fd, _ in ready):
                # It sends nothing while it waits: readable (or hung up) means it is gone.
                raise EOFError("the run that started this command went away")
            drain()

    if head:  # a few lines the script reads first: the window always has room for them
        chan.sendall(head)
        if feed is None:
            chan.shutdown_write()
    if feed is not None:
        if after is not None:
            wait(lambda: out.has_line(after))
        if after is None or out.has_line(after):
            try:
                _upload(chan, feed, deadline)
            except TimeoutError:
                raise
            except (OSError, EOFError):
                pass  # the script stopped reading: its exit status and stderr tell why
        with contextlib.suppress(OSError, EOFError):
            chan.shutdown_write()
    wait(lambda: False)  # until the script closes its output
    if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError
    drain()
    out_lines.close()
    err_lines.close()
    return Result(chan.recv_exit_status(), out.text(), err.text())


def _upload(chan: Any, feed: BinaryIO, deadline: float) -> None:
    """Stream `feed` in bursts of whole SSH packets, each sent once the window has room for it.

    sshd grants window as its child drains the data, often a few KiB at a
    time, and Paramiko's `sendall` sends at once whatever the window allows:
    the upload then turns into thousands of 4-16 KiB packets, each costing a
    write, a wake-up and a decrypt on both ends (a deploy took twice the
    CPU).  Waiting for room for a burst of full packets costs the host
    nothing, as sshd still holds most of its window (2 MiB) of earlier data.
    The burst is a quarter of the window at most, so a server with a small
    window is still fed.  The wait is bounded by the command's deadline
    (Paramiko's own waits for window without one).
    """
    payload = max(1024, chan.out_max_packet_size - 64)  # Paramiko's own per-packet limit
    burst = max(1, min(BURST_PACKETS * payload, chan.out_window_size // 4))
    while data := feed.read(burst):
        with chan.lock:  # the condition Paramiko's window adjustments notify
            while chan.out_window_size < len(data) and not (chan.closed or chan.eof_sent):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if not chan.get_transport().is_active():
                    raise EOFError("connection closed")
                chan.out_buffer_cv.wait(min(left, 1.0))
        chan.sendall(data)


class _Tail:
    """The last OUTPUT_LIMIT bytes of a stream: a chatty test cannot exhaust memory."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * OUTPUT_LIMIT:
            del self.data[:-OUTPUT_LIMIT]

    def text(self) -> str:
        return self.data[-OUTPUT_LIMIT:].decode("utf-8", errors="replace")

    def has_line(self, line: bytes) -> bool:
        return self.data.startswith(line + b"\n") or b"\n" + line + b"\n" in self.data

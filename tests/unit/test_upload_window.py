"""The SSH upload waits for window room for a whole burst (see transport.channel._upload).

A stand-in channel with Paramiko's window fields: what is checked here is
how the upload slices the stream against the window, not SSH itself (the
real-sshd tests in tests/integration/test_ssh_transport.py stream through sshd).
"""

from __future__ import annotations

import io
import threading
import time

import pytest

from fleetdist.transport.channel import BURST_PACKETS, _upload

PACKET = 32768


class WindowedChannel:
    """Paramiko Channel's window bookkeeping, with the remote granting 8 KiB at a time."""

    def __init__(self, window: int) -> None:
        self.lock = threading.Lock()
        self.out_buffer_cv = threading.Condition(self.lock)
        self.out_window_size = window
        self.out_max_packet_size = PACKET
        self.closed = self.eof_sent = False
        self.sent: list[tuple[int, int]] = []  # (bytes, window when sent)
        self.data = bytearray()

    def get_transport(self) -> WindowedChannel:
        return self

    def is_active(self) -> bool:
        return True

    def sendall(self, data: bytes) -> None:
        with self.lock:
            assert self.out_window_size >= len(data), "sent more than the window allows"
            self.sent.append((len(data), self.out_window_size))
            self.out_window_size -= len(data)
        self.data += data

    def grant(self, nbytes: int) -> None:
        with self.lock:
            self.out_window_size += nbytes
            self.out_buffer_cv.notify_all()


def test_sends_whole_bursts_only_when_the_window_has_room() -> None:
    payload = bytes(range(256)) * 4096 * 4  # 4 MiB through a 1 MiB window
    chan = WindowedChannel(window=1024 * 1024)

    def remote() -> None:
        deadline = time.monotonic() + 10
        while len(chan.data) < len(payload) and time.monotonic() < deadline:
            chan.grant(8192)  # small grants, as a busy sshd sends them
            time.sleep(0.0005)

    granter = threading.Thread(target=remote)
    granter.start()
    _upload(chan, io.BytesIO(payload), time.monotonic() + 10)
    granter.join()
    burst = BURST_PACKETS * (PACKET - 64)
    assert bytes(chan.data) == payload
    assert all(size == burst for size, _ in chan.sent[:-1])
    assert len(chan.sent) == -(-len(payload) // burst)
    assert sum(1 for _, window in chan.sent if window < 2 * burst) > 5  # it did wait for room


def test_small_window_server_is_fed_in_smaller_bursts() -> None:
    chan = WindowedChannel(window=16384)  # e.g. an embedded sshd with a tiny window
    payload = b"x" * 100_000

    def remote() -> None:
        while len(chan.data) < len(payload):
            with chan.lock:
                room = 16384 - chan.out_window_size
            chan.grant(room)  # the host drained everything it had
            time.sleep(0.001)

    granter = threading.Thread(target=remote, daemon=True)
    granter.start()
    _upload(chan, io.BytesIO(payload), time.monotonic() + 10)
    assert bytes(chan.data) == payload
    assert max(size for size, _ in chan.sent) == 4096


def test_waiting_for_window_is_bounded_by_the_deadline() -> None:
    chan = WindowedChannel(window=65536)  # the remote never grants more
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _upload(chan, io.BytesIO(b"y" * 100_000), time.monotonic() + 0.3)
    assert len(chan.data) == 65536
    assert time.monotonic() - started < 2

"""A bounded HTTP client for the load balancer proofs.

`Traffic` sends GET requests to one URL on 127.0.0.1 from a thread, one after
another, until it is stopped, has sent `max_requests` or has run for
`max_seconds`.  Every answer is recorded in order: a `Reply` (which host and
which version answered) for a 200 whose body names both, else a failure
string (connection errors, timeouts, other statuses, bodies without them).
"""

from __future__ import annotations

import http.client
import itertools
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

FIELD = re.compile(r"^(version|host): (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Reply:
    host: str
    version: str


class Traffic:
    def __init__(
        self,
        url: str,
        max_requests: int = 50_000,
        max_seconds: float = 600.0,
        interval: float = 0.01,
        timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError(f"traffic goes to 127.0.0.1:<port> only, not {url}")
        self.port, self.path = parts.port, parts.path or "/"
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.interval, self.timeout = interval, timeout
        self.replies: list[Reply] = []
        self.failures: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> Traffic:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while (
            not self._stop.is_set()
            and self.sent < self.max_requests
            and time.monotonic() < deadline
        ):
            self.sent += 1
            self._one()
            self._stop.wait(self.interval)

    def _one(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path)
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            self.failures.append(f"request {self.sent}: {type(exc).__name__}: {exc}")
            return
        finally:
            conn.close()
        fields = dict(FIELD.findall(body))
        if resp.status != 200 or not {"host", "version"} <= fields.keys():
            self.failures.append(f"request {self.sent}: {resp.status} {body[:200]!r}")
            return
        self.replies.append(Reply(fields["host"], fields["version"]))

    def wait_for(self, pred: Callable[[Traffic], bool], timeout: float = 30.0) -> None:
        """Wait (bounded) until `pred(self)` holds, e.g. every host seen."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline or not self.running:
                raise AssertionError(f"traffic: condition not met after {timeout:g}s: {self}")
            time.sleep(0.05)

    def seen(self, hosts: Sequence[str], version: str, since: int = 0) -> bool:
        got = {r.host for r in self.replies[since:] if r.version == version}
        return set(hosts) <= got

    def versions(self) -> dict[str, list[str]]:
        """Host -> the versions it answered with, in order, repeats collapsed."""
        out: dict[str, list[str]] = {}
        for r in self.replies:
            seq = out.setdefault(r.host, [])
            if not seq or seq[-1] != r.version:
                seq.append(r.version)
        return out

    def first(self, version: str) -> dict[str, int]:
        """Host -> index of its first reply with `version`."""
        out: dict[str, int] = {}
        for i, r in enumerate(self.replies):
            if r.version == version:
                out.setdefault(r.host, i)
        return out

    def __repr__(self) -> str:
        return (
            f"Traffic(sent={self.sent}, replies={len(self.replies)}, "
            f"failures={self.failures[:5]}, versions={self.versions()})"
        )


def assert_rolled(client: Traffic, batches: Sequence[Sequence[str]], old: str, new: str) -> None:
    """Zero failures; each host answered `old` then `new`, once switched; the
    switch happened batch by batch (every host of a batch answered `new`
    before any host of the next one did)."""
    assert client.failures == [], f"{len(client.failures)} failed requests: {client.failures[:10]}"
    hosts = [h for b in batches for h in b]
    versions = client.versions()
    for host in hosts:
        assert versions.get(host) == [old, new], f"{host} answered {versions.get(host)}"
    first = client.first(new)
    for earlier, later in itertools.pairwise(batches):
        assert max(first[h] for h in earlier) < min(first[h] for h in later), (
            f"batch {list(later)} answered {new} before {list(earlier)} did: {first}"
        )

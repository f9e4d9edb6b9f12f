"""What happened on each host, and what the fleet's result means as an exit code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from fleetdist.errors import ExitCode


class Status(StrEnum):
    OK = "ok"  # on the target release now
    UNCHANGED = "unchanged"  # was already on the target release
    FAILED = "failed"  # a step failed; `current` untouched (or reverted)
    REVERTED = "reverted"  # activated, failed its healthcheck, flipped back
    ROLLED_BACK = "rolled-back"  # cut over, then undone by --on-failure rollback
    LOCKED = "locked"  # another rollout holds the lease
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"  # never cut over: the rollout stopped first


FAILURES = {Status.FAILED, Status.REVERTED, Status.ROLLED_BACK, Status.LOCKED, Status.UNREACHABLE}


@dataclass
class HostOutcome:
    host: str
    status: Status = Status.SKIPPED
    from_release: str | None = None
    to_release: str | None = None
    stage: str = "pending"  # the last stage reached: probed, uploaded, staged, tested, activated
    failed_step: str | None = None
    error: str | None = None
    seconds: float = 0.0  # this host's own work (see `clock`)

    @property
    def failed(self) -> bool:
        return self.status in FAILURES

    @contextmanager
    def clock(self) -> Iterator[None]:
        """Add the block's duration to `seconds`.

        Wrapped around each piece of work on this host, so `seconds` is what
        the host itself took, not the time it queued for a worker or waited
        for other hosts' batches.
        """
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds = round(self.seconds + time.monotonic() - started, 3)


@dataclass
class FleetOutcome:
    run_id: str
    action: str
    app: str
    env: str
    release_id: str | None
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    aborted: str | None = None  # why the rollout stopped early, if it did
    log_dir: Path | None = None  # each host's whole output: <log_dir>/<host>.log

    def log_of(self, host: str) -> Path | None:
        """Where `host`'s whole output of this run is, if it printed anything."""
        path = self.log_dir / f"{host}.log" if self.log_dir else None
        return path if path is not None and path.is_file() else None

    def exit_code(self) -> int:
        """3 aborted, else 1 if any step failed, else 4 locked, else 5 unreachable, else 0."""
        statuses = {o.status for o in self.hosts.values()}
        if self.aborted:
            return ExitCode.ABORTED
        if statuses & {Status.FAILED, Status.REVERTED, Status.ROLLED_BACK}:
            return ExitCode.FAILED
        if Status.LOCKED in statuses:
            return ExitCode.LOCKED
        if Status.UNREACHABLE in statuses:
            return ExitCode.UNREACHABLE
        return ExitCode.OK

    def to_json(self) -> dict[str, object]:
        """The `deploy`/`rollback`/`unlock` document (schema in README, "JSON output")."""
        return {
            "run_id": self.run_id,
            "action": self.action,
            "app": self.app,
            "env": self.env,
            "release_id": self.release_id,
            "aborted": self.aborted,
            "exit_code": self.exit_code(),
            "log_dir": str(self.log_dir) if self.log_dir else None,
            "hosts": [
                {**asdict(o), "log": str(log) if (log := self.log_of(o.host)) else None}
                for o in self.hosts.values()
            ],
        }

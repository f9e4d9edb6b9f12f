"""What a runbook run did, per host and per step, and the exit code that means.

Exit codes as for a deploy (README, "Exit codes"): 3 when the failure
budget was exceeded, else 1 if a host failed, else 4 if a lease was held
elsewhere, else 5 if a host was unreachable, else 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.errors import ExitCode

# Host statuses: ok (every step done), failed (a step failed: undone as the
# runbook says), skipped (never started: the budget was spent), locked,
# unreachable (before its first step), interrupted (Ctrl-C: it stopped after
# the step under way, nothing undone).
FAILED = frozenset({"failed", "locked", "unreachable"})


@dataclass
class StepResult:
    """One step on one host.  `status`: ok; done (in an earlier run of a resumed run,
    not run again); failed; and for a step a later failure undid: undone or undo-failed."""

    name: str
    status: str
    on: str | None = None
    seconds: float = 0.0
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class HostResult:
    host: str
    status: str = "skipped"
    failed_step: str | None = None
    error: str | None = None
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in FAILED


@dataclass
class RunbookOutcome:
    run_id: str
    runbook: str
    env: str
    params: dict[str, str]
    hosts: dict[str, HostResult] = field(default_factory=dict)
    aborted: str | None = None
    resumed: bool = False
    log_dir: Path | None = None

    def exit_code(self) -> int:
        statuses = {h.status for h in self.hosts.values()}
        if self.aborted:
            return ExitCode.ABORTED
        if "failed" in statuses:
            return ExitCode.FAILED
        if "locked" in statuses:
            return ExitCode.LOCKED
        if "unreachable" in statuses:
            return ExitCode.UNREACHABLE
        return ExitCode.OK

    def to_json(self) -> dict[str, object]:
        """The `run` document (README, "JSON output")."""
        return {
            "run_id": self.run_id,
            "action": "runbook",
            "runbook": self.runbook,
            "env": self.env,
            "params": self.params,
            "resumed": self.resumed,
            "aborted": self.aborted,
            "exit_code": self.exit_code(),
            "log_dir": str(self.log_dir) if self.log_dir else None,
            "hosts": [asdict(h) for h in self.hosts.values()],
        }

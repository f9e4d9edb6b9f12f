"""The controller's run journal: one JSON-lines file per rollout.

The first line describes the run (what, where, with which options) so
`deploy --resume ID` can redo it and `rollback --run ID` can undo it; the
following lines are the events as they happened, flushed one by one so a
SIGKILLed controller leaves a journal that is complete up to its last act.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetdist.config.names import check_run_id, host_problem, release_id_problem
from fleetdist.errors import ConfigError
from fleetdist.report.events import Event
from fleetdist.report.ledger import now

# Stages `rollback --run` and `--resume` can do without after a machine crash.
_ROUTINE = frozenset({"connected", "uploaded", "staged", "tested", "renewed", "renewal-missed"})
# Fields of a header, and of an event's data, that hold release or run ids.
_HEADER_IDS = ("run_id", "release_id", "to", "undo_run")
_EVENT_IDS = ("current", "previous", "release")


def new_run_id() -> str:
    """Sortable by time to the millisecond (so `last_run` is right), unique by its suffix."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}(?:\.[0-9]{3})?Z-[0-9a-f]{6}")


class Journal:
    """A reporter that appends every event of one run to `<runs>/<run_id>.jsonl`.

    It holds an exclusive flock(2) on that file for as long as the run lives:
    the kernel's proof, for `orchestrate.stale`, that the run's controller
    is alive, and what stops a `--resume` racing a run that still runs.
    """

    def __init__(self, runs: Path, run_id: str, header: dict[str, Any]) -> None:
        runs.mkdir(parents=True, exist_ok=True)
        self.path = runs / f"{run_id}.jsonl"
        self._fh = self.path.open("a", encoding="utf-8")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise ConfigError(f"run {run_id} is still running on this controller") from None
        self._write({"kind": "run", "run_id": run_id, "time": now(), **header})

    def _write(self, data: dict[str, Any], *, durable: bool = True) -> None:
        """Append one line.  `flush` survives a killed controller; `fsync` (only for
        lines recovery depends on) also survives a crashed machine."""
        self._fh.write(json.dumps(data, sort_keys=True, default=str) + "\n")
        self._fh.flush()
        if durable:
            os.fsync(self._fh.fileno())

    def __call__(self, event: Event) -> None:
        if event.kind in ("stage", "aborted", "run_finished", "host_done"):
            durable = event.kind != "host_done" and event.stage not in _ROUTINE
            self._write(
                {
                    "kind": event.kind,
                    "time": now(),
                    "host": event.host,
                    "stage": event.stage,
                    "message": event.message,
                    "data": event.data,
                },
                durable=durable,
            )

    def close(self) -> None:
        self._fh.close()


def read_run(runs: Path, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and events of a run; a missing run is a usage error naming it.

    A journal is a file on the controller that anyone with access may edit,
    and its host names and release ids steer `--resume` and `rollback --run`:
    each is checked against `config.names` as it is read, and a journal with
    one that fails is refused whole, naming the file and line.
    """
    check_run_id(run_id, "--run")
    path = runs / f"{run_id}.jsonl"
    if not path.is_file():
        raise ConfigError(f"--run: no run {run_id!r} in {runs}")
    lines: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill is simply not there
        if isinstance(data, dict):
            lines.append((number, data))
    if not lines or lines[0][1].get("kind") != "run":
        raise ConfigError(f"{path}: not a run journal")
    if lines[0][1].get("run_id") != run_id:
        raise ConfigError(f"{path}:{lines[0][0]}: run_id: not the run the file is named after")
    for number, data in lines:
        if problem := _line_problem(data, header=data.get("kind") == "run"):
            raise ConfigError(f"{path}:{number}: {problem}")
    return lines[0][1], [data for _, data in lines[1:]]


def _line_problem(data: dict[str, Any], *, header: bool) -> str | None:
    """What makes one journal line untrustworthy, or None.  A resumed run appends a
    second header (`kind: run`) to its journal; it is checked like the first."""
    if header:
        hosts = data.get("hosts")
        if not isinstance(hosts, list):
            return "hosts: expected a list of host names"
        names = [("hosts", host) for host in hosts]
        ids = [(key, data.get(key)) for key in _HEADER_IDS]
    else:
        payload = data.get("data")
        found = payload if isinstance(payload, dict) else {}
        names = [("host", data.get("host"))]
        ids = [(f"data.{k}", found.get(k)) for k in _EVENT_IDS]
    for key, value in names:
        if value is not None and (problem := host_problem(value)):
            return f"{key}: {problem}"
    for key, value in ids:
        if value is not None and (problem := release_id_problem(value)):
            return f"{key}: {problem}"
    return None


def run_is_dead(runs: Path, run_id: str) -> bool:
    """True if `run_id`'s journal is here and no live process holds its lock."""
    if not _RUN_ID.fullmatch(run_id):
        return False
    try:
        with (runs / f"{run_id}.jsonl").open("rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, OSError):
        return False
    return True


def activated_hosts(events: list[dict[str, Any]]) -> dict[str, str | None]:
    """Hosts a run cut over or began to, mapped to the release each had before it.

    `activating` is journaled before an activation script is sent, so a host
    whose flip the controller never heard back about is in the map too.
    """
    before: dict[str, str | None] = {}
    cut: dict[str, str | None] = {}
    for event in events:
        host, stage = event.get("host"), event.get("stage")
        if not host:
            continue
        if stage == "probed":
            before[host] = (event.get("data") or {}).get("current")
        elif stage in ("activating", "activated"):
            cut[host] = before.get(host, cut.get(host))
    return cut


def last_run(
    runs: Path, *, app: str, env: str, actions: tuple[str, ...] = ("deploy",)
) -> dict[str, Any] | None:
    """The newest run header of this app and env whose action is one of `actions`."""
    if not runs.is_dir():
        return None
    for path in sorted(runs.glob("*.jsonl"), reverse=True):
        try:
            with path.open(encoding="utf-8") as fh:
                header = json.loads(fh.readline())
        except (OSError, ValueError):
            continue
        if not isinstance(header, dict):
            continue
        same = header.get("app") == app and header.get("env") == env
        if same and header.get("action") in actions:
            if problem := _line_problem(header, header=True):
                raise ConfigError(f"{path}:1: {problem}")
            return dict(header)
    return None


def summaries(runs: Path, count: int) -> list[dict[str, Any]]:
    """The newest `count` runs recorded here, newest first, for `fleetdist runs`.

    Each is the header's `run_id`, `time`, `action`, `app`, `env`, the
    number of `hosts`, its `state`: `finished` (with the run's `exit_code`
    as its last `run_finished` recorded it), `running` while its controller
    still holds the journal's lock, `unfinished` (it was killed: `--resume`
    it), or `unreadable` for a file that is not a run journal.
    """
    if not runs.is_dir():
        return []
    paths = sorted(runs.glob("*.jsonl"), reverse=True)[:count]
    return [_summary(path) for path in paths]


def _summary(path: Path) -> dict[str, Any]:
    run_id = path.stem
    header: dict[str, Any] = {}
    finished: int | None = None
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill
            if number == 0 and isinstance(data, dict):
                header = data
            elif isinstance(data, dict) and data.get("kind") == "run_finished":
                code = (data.get("data") or {}).get("exit_code")
                finished = code if isinstance(code, int) else finished
    except (OSError, UnicodeDecodeError):
        header = {}
    hosts = header.get("hosts")
    if header.get("kind") != "run" or header.get("run_id") != run_id:
        state = "unreadable"
    elif finished is not None:
        state = "finished"
    else:
        state = "unfinished" if run_is_dead(path.parent, run_id) else "running"
    return {
        "run_id": run_id,
        "time": header.get("time"),
        "action": header.get("action"),
        "app": header.get("app"),
        "env": header.get("env"),
        "hosts": len(hosts) if isinstance(hosts, list) else None,
        "state": state,
        "exit_code": finished,
    }

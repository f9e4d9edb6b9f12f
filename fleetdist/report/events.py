"""Events: the core reports through these and never prints.

Renderers (console, JSON, the run journal) are plain callables subscribed to
one stream, so the orchestrator stays testable and silent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """`kind` is one of: run_started, stage, progress, output, host_done, batch_started,
    batch_finished, aborted, run_finished.

    `stage` events use the shared vocabulary (connected, probed, uploaded, staged,
    tested, activated, recorded, failed) and are what the journal keeps.  While a
    host's script runs, `progress` events say what it is doing now (uploading,
    unpacking, testing) and `output` events carry each line it prints (`message`,
    with `data` {"stream": "stdout" | "stderr", "step": ...}): text from a host,
    to be shown as data, never as markup, and never containing protocol lines."""

    kind: str
    host: str | None = None
    stage: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


Reporter = Callable[[Event], None]


def fan_out(reporters: Iterable[Reporter]) -> Reporter:
    """One reporter that forwards to many, serialised: workers emit from threads."""
    targets = list(reporters)
    lock = threading.Lock()

    def emit(event: Event) -> None:
        with lock:
            for target in targets:
                target(event)

    return emit


def silent(event: Event) -> None:
    """A reporter that drops everything (library use, tests)."""

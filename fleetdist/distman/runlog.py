"""Where `dist` and `cache` lines go: stderr, and distman's rotating log file.

As distman: plain lines on stderr, and `LOG_DIR/distman.log` (default
`~/log/distman`, 1 MB x 5, `time - user - LEVEL - message`) except in dry
runs; `LOG_LEVEL` (a name or a number) filters both.  A log file that cannot
be opened is not an error: the run is what matters.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Mapping
from logging.handlers import RotatingFileHandler

MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s - %(username)s - %(levelname)s - %(message)s"


def _level(text: str) -> int:
    if text.isdigit():
        return int(text)
    value = logging.getLevelName(text.upper())
    return value if isinstance(value, int) else logging.INFO


class DistLog:
    """A `say(line)` for the engine: `WARNING: ...` lines are warnings, the rest info."""

    def __init__(self, values: Mapping[str, str], *, dryrun: bool) -> None:
        self.level = _level(values.get("LOG_LEVEL", "INFO"))
        self.file: logging.Logger | None = None
        if dryrun:
            return
        folder = values.get("LOG_DIR") or os.path.expanduser("~/log/distman")
        try:
            os.makedirs(folder, exist_ok=True)
            handler = RotatingFileHandler(
                os.path.join(folder, "distman.log"), maxBytes=MAX_BYTES, backupCount=BACKUPS
            )
        except OSError:
            return
        handler.setFormatter(logging.Formatter(FORMAT))
        self.file = logging.Logger("fleetdist.dist", self.level)  # not in the global registry
        self.file.addHandler(handler)

    def say(self, line: str) -> None:
        level = logging.WARNING if line.startswith("WARNING") else logging.INFO
        if level >= self.level:
            print(line, file=sys.stderr, flush=True)
        self._record(level, line)

    def error(self, line: str) -> None:
        """An error the CLI prints itself: into the file only."""
        self._record(logging.ERROR, line)

    def _record(self, level: int, line: str) -> None:
        if self.file is not None:
            self.file.log(level, line, extra={"username": getpass.getuser()})

    def close(self) -> None:
        if self.file is not None:
            for handler in list(self.file.handlers):
                handler.close()
                self.file.removeHandler(handler)

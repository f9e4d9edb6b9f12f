"""One build's log: every line kept whole in dist/logs/<name>.log and echoed with a prefix.

Builds run in parallel, so each console line carries the build's name
(`[deb/bookworm] ...`); the file keeps the unprefixed text for reading
later.  `run` streams a subprocess through the log and turns a non-zero
exit into a BuildError whose one-line message ends with the log's tail,
so the operator sees why without opening the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from fleetdist.errors import BuildError

Echo = Callable[[str], None]
TAIL_LINES = 12
_stderr_lock = threading.Lock()


def stderr_echo(line: str) -> None:
    """The default console: whole lines to stderr, never interleaved mid-line."""
    with _stderr_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class BuildLog:
    """Append-only log of one build; use as a context manager so the file is closed."""

    def __init__(self, name: str, path: Path, echo: Echo = stderr_echo) -> None:
        self.name, self.path, self.echo = name, path, echo
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()

    def __enter__(self) -> BuildLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._file.close()

    def line(self, text: str) -> None:
        text = text.rstrip("\n")
        with self._lock:
            self._file.write(text + "\n")
            self._file.flush()
            self._tail.append(text)
        self.echo(f"[{self.name}] {text}")

    def tail(self) -> str:
        return " | ".join(t.strip() for t in self._tail if t.strip())

    def fail(self, what: str) -> BuildError:
        """A BuildError naming the build, the step, the full log, and its last lines."""
        return BuildError(f"build {self.name}: {what}; log {self.path}; last lines: {self.tail()}")

    def run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 1800.0,
    ) -> None:
        """Run `argv`, streaming stdout+stderr into the log; raise BuildError if it fails."""
        self.line(f"$ {' '.join(argv)}")
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise self.fail(f"{what}: cannot start {argv[0]}: {exc.strerror}") from None
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        with proc:  # closes the pipe whatever happens
            try:
                assert proc.stdout is not None
                for text in proc.stdout:
                    self.line(text)
                code = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if code != 0:
            reason = "timed out" if code < 0 else f"exited {code}"
            raise self.fail(f"{what} {reason}")

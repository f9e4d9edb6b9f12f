"""Helpers every bench module shares: where the repo is, progress logging, bounded commands.

Progress goes to stderr so that `--json` can own stdout; every command gets a timeout so
a wedged docker or ssh can never hang the bench (and so skip the teardown).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    """Timestamped progress on stderr (stdout is kept for the tables or the JSON)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(
    argv: list[str], timeout: float, check: bool = True, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run argv with captured text output and a mandatory timeout."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, **kw)

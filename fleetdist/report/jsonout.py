"""`--json`: exactly one JSON document on stdout, whatever happens.

Every document is an object carrying `version` (of the schema documented in
README.md, "JSON output") and `exit_code` (the process's own).  A verb adds
its result's fields; an error adds only `error: {message, type}`.  Nothing
else is written to stdout on a `--json` run: progress and warnings go to
stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

VERSION = 1
"""Raised when a field changes meaning or goes away; new fields may appear at any time."""


def document(
    exit_code: int, fields: Mapping[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    """A verb's result: its fields, plus `version` and `exit_code`."""
    return {"version": VERSION, **(fields or {}), **more, "exit_code": exit_code}


def error_document(message: str, kind: str, exit_code: int) -> dict[str, Any]:
    """What a failed run prints instead of a result (`kind`: the error's class name)."""
    return document(exit_code, error={"message": message, "type": kind})


def emit(doc: dict[str, Any], stream: TextIO | None = None) -> None:
    """Write `doc` as the run's one document (sorted keys, so diffs stay readable)."""
    out = stream or sys.stdout
    out.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    out.flush()

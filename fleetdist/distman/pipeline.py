"""Run a target's pipeline: each step reads the last step's output, writes its own.

As distman: a file target's step writes `<work>/<target>/<step>/<basename>`,
a directory target's step `<work>/<target>/<step>/`, pre-seeded with a copy
of its input.  Unlike distman, `<work>` is a temporary directory outside the
repo (not `./build/.distman` in whatever the cwd is), steps run in `order`,
and a script's unknown `{word}` stays literal (`awk '{print}'` works).
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fleetdist.config.distman import DistError, Step
from fleetdist.distman.env import resolve
from fleetdist.distman.files import walk
from fleetdist.distman.transforms import builtin

Say = Callable[[str], None]


class _Literal(dict[str, str]):
    """`str.format_map` mapping that leaves an unknown `{word}` as it was written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _seed(current: Path, work: Path, name: str, step: str, all_files: bool) -> Path:
    if current.is_dir():
        output = work / name / step
        output.mkdir(parents=True)
        for path in walk(current, all_files=all_files):
            dst = output / path.relative_to(current)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst)  # dereferences links, as distman's staging does
        return output
    output = work / name / step / current.name
    output.parent.mkdir(parents=True)
    shutil.copy2(current, output)
    return output


def _script(step: Step, current: Path, output: Path, environ: Mapping[str, str]) -> None:
    env = {**environ, **step.env}
    fields = _Literal(env, input=shlex.quote(str(current)), output=shlex.quote(str(output)))
    for command in step.script:
        line = command.format_map(fields)
        done = subprocess.run(line, shell=True, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or [""])[-1]
            raise DistError(
                f"pipeline step '{step.name}' failed with exit code {done.returncode}: {tail}"
            )


def _callable(dotted: str) -> Callable[..., Any]:
    found = builtin(dotted)
    if found is not None:
        return found
    module, _, attr = dotted.rpartition(".")
    try:
        func = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise DistError(f"pipeline func {dotted!r} cannot be imported: {exc}") from None
    if not callable(func):
        raise DistError(f"pipeline func {dotted!r} is not callable")
    return func  # type: ignore[no-any-return]


def check_steps(steps: Sequence[Step], values: Mapping[str, str], target: str) -> None:
    """Before anything is written: every `func` imports, every token value resolves."""
    for step in steps:
        if step.func is None:
            continue
        _callable(step.func)
        tokens = step.options.get("tokens")
        if builtin(step.func) is not None and isinstance(tokens, dict):
            for key, value in tokens.items():
                resolve(str(value), values, f"pipeline step '{step.name}' token {key} for {target}")


def run_pipeline(
    name: str,
    steps: list[Step],
    source: Path,
    work: Path,
    values: Mapping[str, str],
    *,
    all_files: bool,
    say: Say,
) -> Path:
    """The path holding the pipeline's result (`source` itself when there are no steps)."""
    current = source
    for step in steps:
        say(f"Pipeline Step: '{step.name}'")
        output = _seed(current, work, name, step.name, all_files)
        if step.script:
            _script(step, current, output, os.environ)
        else:
            assert step.func is not None
            func = _callable(step.func)
            extra = {"values": values} if builtin(step.func) else {}
            try:
                func(input=str(current), output=str(output), **step.options, **extra)
            except DistError:
                raise
            except Exception as exc:  # a user's callable may raise anything
                raise DistError(f"pipeline step '{step.name}' failed: {exc}") from exc
        current = output
    return current

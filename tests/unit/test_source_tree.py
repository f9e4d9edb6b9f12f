"""Special files in a source tree are refused by path, never opened (issue 11, item 15).

Opening a FIFO waits for a writer that never comes: `fleetdist build` hung
forever on one.  The walk reads every kind with `lstat` and refuses a
selected FIFO, socket or device; an excluded one is simply not there.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from .conftest import Project


class Hung(Exception):
    pass


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail (instead of hanging the suite) if a command blocks on a special file."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise Hung("the command blocked for 20 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    """Bound by its base name from its folder: socket paths are limited to ~100 bytes."""
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path.name)  # the socket file stays behind once closed
    finally:
        os.chdir(cwd)


SPECIALS: list[tuple[str, Callable[[Path], None]]] = [
    ("FIFO", make_fifo),
    ("socket", make_socket),
]


@pytest.mark.parametrize(("kind", "make"), SPECIALS, ids=[k for k, _ in SPECIALS])
@pytest.mark.parametrize("verb", ["build", "deploy", "plan"])
def test_special_file_in_the_source_tree_is_refused(
    project: Project, verb: str, kind: str, make: Callable[[Path], None]
) -> None:
    (project.app_dir / "run").mkdir()
    special = project.app_dir / "run" / "app.pipe"
    make(special)
    result = project.run(verb)
    assert result.code == 2, result.err + result.out
    assert result.err == (
        f"fleetdist: error: {project.recipe_path}: source.path: {special} is a {kind};"
        " only files, directories and symlinks can be packaged (exclude it)\n"
    )
    assert not project.fleet.exists()


def test_an_excluded_fifo_is_never_looked_at(project: Project) -> None:
    make_fifo(project.app_dir / "app.pipe")
    project.write_recipe(source={"path": "../examples/hello", "exclude": ["*.pipe"]})
    result = project.run("build", "--formats", "tar.gz")
    assert result.code == 0, result.err

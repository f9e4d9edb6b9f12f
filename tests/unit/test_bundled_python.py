"""`python: bundled` + `python_version`: the spec's checks and the per-machine interpreter cache.

No Docker here: the container run is replaced by a fake that writes the tar
a real build would, so what is checked is the cache (key, reuse, rebuild,
pruning) and what the build log says about it.  The real CPython build is
tests/builds/test_bundled_python.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetdist.builders import cpython
from fleetdist.builders.buildlog import BuildLog
from fleetdist.builders.container import Mount
from fleetdist.config.buildspec import Machine, parse_build
from fleetdist.errors import BuildError, ConfigError

from .conftest import Project

BOOKWORM = Machine(name="bookworm", image="fleetdist/build:bookworm")
IMAGE = "sha256:" + "1" * 64


def parse(tmp_path: Path, data: object) -> Any:
    return parse_build(data, "r.yaml", tmp_path, tmp_path)


def test_python_version_is_kept_with_bundled(tmp_path: Path) -> None:
    spec = parse(tmp_path, {"python": "bundled", "python_version": "3.13"})
    assert (spec.python, spec.python_version) == ("bundled", "3.13")
    assert parse(tmp_path, {"python": "bundled"}).python_version == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"python": "bundled", "python_version": "3.12"},
            "r.yaml: build.python_version: no Debian source for CPython '3.12' "
            "(known: 3.11, 3.13, 3.14, 3.15)",
        ),
        (
            {"python": "bundled", "python_version": "python3.13"},
            "r.yaml: build.python_version: no Debian source for CPython 'python3.13'",
        ),
        (
            {"python": "bundled", "python_version": 3.13},
            'r.yaml: build.python_version: quote the version, as in "3.13"',
        ),
        (
            {"python_version": "3.13"},
            "r.yaml: build.python_version: needs `python: bundled`",
        ),
    ],
)
def test_python_version_errors_name_the_field(
    tmp_path: Path, data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse(tmp_path, data)
    assert str(err.value).startswith(message)


def test_unknown_python_version_exits_2_from_the_cli(project: Project) -> None:
    project.write_recipe(build={"python": "bundled", "python_version": "2.7"})
    result = project.run("build", "--formats", "deb")
    assert result.code == 2
    last = result.err.strip().splitlines()[-1]
    assert last.endswith(
        f"{project.recipe_path}: build.python_version: no Debian source "
        "for CPython '2.7' (known: 3.11, 3.13, 3.14, 3.15)"
    )


def test_cache_key_changes_with_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    key = cpython.cache_key(BOOKWORM, IMAGE, "3.13")
    assert key == cpython.cache_key(BOOKWORM, IMAGE, "3.13")
    assert key != cpython.cache_key(BOOKWORM, IMAGE, "3.14")
    assert key != cpython.cache_key(BOOKWORM, "sha256:" + "2" * 64, "3.13")
    assert key != cpython.cache_key(Machine(name="b2", image=BOOKWORM.image), IMAGE, "3.13")
    monkeypatch.setattr(cpython, "BUILD_PYTHON", cpython.BUILD_PYTHON + "\n# changed")
    assert key != cpython.cache_key(BOOKWORM, IMAGE, "3.13")


def test_container_script_assigns_the_version_and_its_suite() -> None:
    text = cpython.container_script("3.13")
    assert "\nPYTHON_VERSION=3.13\n" in text and "\nSUITE=trixie\n" in text
    assert text.index("SUITE=") < text.index("apt-get source")


class FakeContainer:
    """Stands in for `run_container`: writes python.tar into the out mount, counts runs."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def __call__(self, image: str, command: list[str], *, mounts: list[Mount], **_: Any) -> None:
        self.runs.append(image)
        out = next(m.host for m in mounts if m.path == "/fleetdist/out")
        script = next(m.host for m in mounts if m.path == "/fleetdist/pkg")
        assert "\nPYTHON_VERSION=3.13\n" in (script / "build-python.sh").read_text()
        (out / "python.tar").write_bytes(b"built %d" % len(self.runs))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeContainer:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    container = FakeContainer()
    monkeypatch.setattr(cpython, "run_container", container)
    return container


def build(tmp_path: Path, name: str) -> tuple[Path, str]:
    """One `ensure_python` with its own build log; returns the tar and the log's text."""
    path = tmp_path / "logs" / f"{name}.log"
    with BuildLog(name, path, echo=lambda _line: None) as log:
        tar = cpython.ensure_python(BOOKWORM, IMAGE, "3.13", log, timeout=60)
    return tar, path.read_text()


def test_second_build_reuses_the_cached_interpreter(fake: FakeContainer, tmp_path: Path) -> None:
    tar, first = build(tmp_path, "first")
    assert "CPython 3.13 for bookworm: building it from Debian trixie's source" in first
    assert tar.parent == tmp_path / "cache" / "fleetdist" / "python"
    assert tar.name == f"bookworm-3.13-{cpython.cache_key(BOOKWORM, IMAGE, '3.13')}.tar"
    again, second = build(tmp_path, "second")
    assert again == tar and tar.read_bytes() == b"built 1"
    assert f"CPython 3.13 for bookworm: reusing the cached build {tar}" in second
    assert "building" not in second
    assert len(fake.runs) == 1


def test_changed_build_script_builds_again_and_drops_the_old_entry(
    fake: FakeContainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, _ = build(tmp_path, "old")
    monkeypatch.setattr(cpython, "BUILD_PYTHON", cpython.BUILD_PYTHON + "\n# changed")
    new, log = build(tmp_path, "new")
    assert new != old and "building it" in log
    assert new.is_file() and not old.exists()
    assert len(fake.runs) == 2


def test_failed_build_leaves_no_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cpython, "run_container", lambda *a, **k: None)  # writes nothing
    with pytest.raises(BuildError, match=r"building CPython 3\.13 left no python\.tar"):
        build(tmp_path, "broken")
    assert list((tmp_path / "cache" / "fleetdist" / "python").glob("*.tar")) == []

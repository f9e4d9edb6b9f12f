"""Hash-locked dependencies: downloads checked against the lock, installs pinned by hash.

The dependency is a wheel the test writes into a local directory, so the
lock's hash is known and nothing is fetched from an index.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from fleetdist.builders.lock import find_lock
from fleetdist.config.buildspec import parse_build
from fleetdist.errors import BuildError

from .conftest import Project


def tiny_wheel(folder: Path, version: str = "0.1") -> Path:
    """A pure-Python wheel of `tinydep`, whose module says its version."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "tinydep/__init__.py": f'VERSION = "{version}"\n',
        f"tinydep-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: tinydep\nVersion: {version}\n"
        ),
        f"tinydep-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"tinydep-{version}.dist-info/RECORD,,")
    files[f"tinydep-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"tinydep-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), text)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def locked(project: Project) -> Path:
    """hello with `requirements.txt` locking tinydep by hash, from a local wheel folder."""
    wheel = tiny_wheel(project.root / "local-index")
    reqs = project.app_dir / "requirements.txt"
    reqs.write_text(
        f"--no-index\n--find-links {wheel.parent}\n"
        f"tinydep==0.1 \\\n    --hash=sha256:{sha(wheel)}\n"
    )
    project.write_recipe(build={"requirements": ["requirements.txt"]})
    return reqs


def test_a_hash_locked_build_pins_every_install_by_hash(project: Project, locked: Path) -> None:
    project.write_recipe(
        build={"requirements": ["requirements.txt"]},
        test=["./hello.pex --version", "python3 -c 'import sys'"],
    )
    result = project.run("build", "--json", "--formats", "wheel,pex")
    assert result.code == 0, result.err
    wheels = project.root / "dist" / "wheels"
    [pins] = wheels.glob("hello-*.pins.txt")
    lines = pins.read_text().splitlines()
    assert lines[0] == "--require-hashes"
    dep = wheels / "tinydep-0.1-py3-none-any.whl"
    assert f"tinydep==0.1 --hash=sha256:{sha(dep)}" in lines
    app = next(wheels.glob("hello-1.0.0-*.whl"))
    assert f"hello==1.0.0 --hash=sha256:{sha(app)}" in lines
    pex = next(r for r in result.json()["artifacts"] if r["format"] == "pex")["path"]
    ran = subprocess.run(
        ["python3", pex, "-c", "import tinydep, hello; print(tinydep.VERSION)"],
        capture_output=True,
        text=True,
        env={"PEX_INTERPRETER": "1", "PATH": "/usr/bin:/bin"},
    )
    assert ran.stdout.strip() == "0.1", ran.stderr


def test_a_download_that_does_not_match_its_hash_fails_the_build(
    project: Project, locked: Path
) -> None:
    tiny_wheel(project.root / "local-index", "0.1").write_bytes(
        tiny_wheel(project.root / "other", "0.1").read_bytes() + b"tampered"
    )
    result = project.run("build", "--formats", "wheel")
    assert result.code == 1
    assert "pip wheel (hash-locked requirements) exited" in result.err
    assert "HASHES" in result.err.upper()


def test_a_requirement_without_a_hash_fails_with_its_file_and_line(
    project: Project, locked: Path
) -> None:
    locked.write_text(locked.read_text() + "requests==2.32.0\n")
    result = project.run("build", "--formats", "wheel")
    assert result.code == 1
    assert f"{locked}:5: 'requests==2.32.0' has no --hash" in result.err
    assert "build.require_hashes: false" in result.err
    assert not (project.root / "dist" / "wheels").exists(), "refused before any download"


def test_opting_out_installs_the_lock_without_hashes(project: Project, locked: Path) -> None:
    locked.write_text(locked.read_text().replace("--hash=sha256:", "--hash=sha256:0"))
    project.write_recipe(build={"requirements": ["requirements.txt"], "require_hashes": False})
    result = project.run("build", "--formats", "wheel")
    assert result.code == 0, result.err
    [pins] = (project.root / "dist" / "wheels").glob("hello-*.pins.txt")
    assert "--require-hashes" not in pins.read_text() and "tinydep==0.1" in pins.read_text()


def write_lock(where: Path, name: str, text: str) -> Path:
    (where / name).write_text(text)
    return where


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        (
            "pylock.toml",
            'lock-version = "1.0"\n[[packages]]\nname = "me"\ndirectory = {path = "."}\n'
            '[[packages]]\nname = "tinydep"\nversion = "0.1"\n'
            '[[packages.wheels]]\nname = "t.whl"\nhashes = {sha256 = "ab"}\n',
            "tinydep==0.1 --hash=sha256:ab",
        ),
        (
            "uv.lock",
            'version = 1\n[[package]]\nname = "me"\nversion = "1"\nsource = {editable = "."}\n'
            '[[package]]\nname = "tinydep"\nversion = "0.1"\nsource = {registry = "x"}\n'
            'sdist = {url = "u", hash = "sha256:cd"}\nwheels = [{url = "w", hash = "sha256:ab"}]\n',
            "tinydep==0.1 --hash=sha256:ab --hash=sha256:cd",
        ),
    ],
)
def test_pylock_and_uv_lock_become_hashed_requirements(
    tmp_path: Path, name: str, text: str, line: str
) -> None:
    src = write_lock(tmp_path, name, text)
    lock = find_lock(parse_build({}, "r.yaml", tmp_path, src), src)
    assert lock is not None and lock.hashed and lock.lines == (line,)


def test_a_locked_package_without_a_hash_is_named(tmp_path: Path) -> None:
    src = write_lock(tmp_path, "pylock.toml", '[[packages]]\nname = "nohash"\nversion = "2"\n')
    with pytest.raises(BuildError) as info:
        find_lock(parse_build({}, "r.yaml", tmp_path, src), src)
    assert "pylock.toml: package nohash 2 has no sha256 hash" in str(info.value)


def test_build_json_lists_the_lock_free_build_unchanged(project: Project) -> None:
    result = project.run("build", "--json", "--formats", "tar.gz")
    assert result.code == 0
    assert not list((project.root / "dist").glob("wheels/*.pins.txt"))
    assert json.loads(result.out)["artifacts"][0]["format"] == "tar.gz"


def test_a_named_requirements_lock_with_includes_is_read_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("tinydep==0.1 --hash=sha256:ab\n")
    (tmp_path / "requirements.lock").write_text("-r base.txt\nother==2 --hash=sha256:cd\n")
    spec = parse_build({"lock": "requirements.lock"}, "r.yaml", tmp_path, tmp_path)
    lock = find_lock(spec, tmp_path)
    assert lock is not None
    assert lock.lines == ("tinydep==0.1 --hash=sha256:ab", "other==2 --hash=sha256:cd")
    (tmp_path / "base.txt").write_text("tinydep==0.1\n")
    with pytest.raises(BuildError) as info:
        find_lock(spec, tmp_path)
    assert f"{tmp_path / 'base.txt'}:1: 'tinydep==0.1' has no --hash" in str(info.value)

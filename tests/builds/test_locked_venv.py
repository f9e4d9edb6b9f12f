"""A hash-locked venv bundle: the container installs the wheelhouse's pinned wheels by hash."""

from __future__ import annotations

import base64
import hashlib
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import make_build_project

pytestmark = pytest.mark.docker


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def tiny_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True)
    info = "tinydep-0.1.dist-info"
    files = {
        "tinydep/__init__.py": 'VERSION = "0.1"\n',
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{n},sha256={_digest(t)},{len(t)}" for n, t in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = folder / "tinydep-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), text)
    return path


def test_locked_venv_installs_pinned_wheels_by_hash(tmp_path: Path, build_image: None) -> None:
    project = make_build_project(tmp_path / "project")
    wheel = tiny_wheel(tmp_path / "index")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (project.app / "requirements.txt").write_text(
        f"--no-index\n--find-links {wheel.parent}\ntinydep==0.1 --hash=sha256:{digest}\n"
    )
    project.recipe(
        "hello",
        deploy_root="/srv/apps/hello",
        build={"requirements": ["requirements.txt"]},
        test=["venv/bin/python -c 'import tinydep, hello'"],
    )
    code, err = project.run("build", "--formats", "venv")
    assert code == 0, err
    log = (project.dist / "logs" / "venv-bookworm.log").read_text()
    assert "Successfully installed hello-1.0.0 tinydep-0.1" in log
    [bundle] = project.dist.glob("*.venv.tar.gz")
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert any(n.endswith("site-packages/tinydep/__init__.py") for n in names)

    # A wheelhouse wheel that is no longer the one pinned: the container refuses it.
    housed = project.dist / "wheels" / wheel.name
    housed.write_bytes(housed.read_bytes() + b"tampered")
    (project.dist / ".cache" / "hello.venv@bookworm.json").unlink()
    code, err = project.run("build", "--formats", "venv")
    assert code == 1
    assert (
        "THESE PACKAGES DO NOT MATCH THE HASHES"
        in (project.dist / "logs" / "venv-bookworm.log").read_text()
    )

"""`fleetdist init` and `inv init`: a recipe, a local fleet and env files that deploy as is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetdist.cli import main

from .conftest import HOSTS, REPO

INV = shutil.which("inv", path=os.path.dirname(sys.executable)) or "inv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def recipe_of(app_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((app_dir / "recipes" / f"{name}.yaml").read_text())
    return data


def current(fleet: Path, host: str, app: str) -> str:
    return os.readlink(fleet / host / "srv" / "apps" / app / "current")


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Path:
    monkeypatch.setenv("FLEET_ROOT", str(tmp_path / "fleet"))
    return tmp_path / "fleet"


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    """A copy of the example app as it is: a pyproject, a package, unittest tests."""
    app = tmp_path / "hello"
    shutil.copytree(REPO / "examples" / "hello", app, ignore=shutil.ignore_patterns("__pycache__"))
    return app


def test_init_on_the_example_app_deploys_to_the_local_fleet(
    hello: Path, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "init", str(hello))
    assert code == 0, err
    recipe = recipe_of(hello, "hello")
    assert "app" not in recipe and "version" not in recipe, "they follow pyproject.toml"
    assert recipe["test"] == ["python3 -m unittest discover -s tests -t . -q"]
    text = (hello / "recipes" / "hello.yaml").read_text()
    assert "# app: hello" in text and "# version: 1.0.0" in text and "healthcheck" in text
    for rel in ("inventories/local.yaml", "env/default.env", "env/prod.env", "env/dev.env"):
        assert f"wrote {hello / rel}" in out
    steps = out.split("next:\n")[1].splitlines()
    assert len(steps) == 3 and "fleetdist deploy" in steps[1]
    assert steps[0].strip().startswith(f"cd {hello} && fleetdist plan")

    code, out, err = run(capsys, "deploy", "--project", str(hello), "--json")
    assert code == 0, err + out
    for host in HOSTS:
        link = current(fleet, host, "hello")
        assert link.startswith("releases/1.0.0-")
        release = fleet / host / "srv" / "apps" / "hello" / link
        assert (release / "hello" / "__main__.py").is_file()
        for absent in ("recipes", "inventories", "env", "dist", ".fleetdist"):
            assert not (release / absent).exists(), absent


def test_init_on_a_bare_directory_deploys_too(
    tmp_path: Path, fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "My Tool"
    (bare / "bin").mkdir(parents=True)
    (bare / "bin" / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (bare / "bin" / "dist").mkdir()  # only the top-level dist/ is build output
    (bare / "bin" / "dist" / "keep.txt").write_text("kept\n")
    code, _, err = run(capsys, "init", str(bare))
    assert code == 0, err
    recipe = recipe_of(bare, "my-tool")
    assert (recipe["app"], recipe["version"], recipe["test"]) == ("my-tool", "0.1.0", [])
    code, out, err = run(capsys, "deploy", "--project", str(bare), "--json")
    assert code == 0, err + out
    release = fleet / "web02" / "srv" / "apps" / "my-tool" / current(fleet, "web02", "my-tool")
    assert (release / "bin" / "tool.sh").read_text() == "#!/bin/sh\necho tool\n"
    assert (release / "bin" / "dist" / "keep.txt").is_file()


def test_init_finds_pytest_and_src_layouts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "app"
    (app / "tests").mkdir(parents=True)
    (app / "src").mkdir()
    (app / "tests" / "test_x.py").write_text("import pytest\n\ndef test_x():\n    pass\n")
    assert run(capsys, "init", str(app))[0] == 0
    assert recipe_of(app, "app")["test"] == [
        "PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider"
    ]
    plain = tmp_path / "plain"
    (plain / "test").mkdir(parents=True)
    (plain / "test" / "test_y.py").write_text("import unittest\n")
    assert run(capsys, "init", str(plain))[0] == 0
    assert recipe_of(plain, "plain")["test"] == ["python3 -m unittest discover -s test -q"]


def test_init_never_overwrites_without_force(
    hello: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hello / "env").mkdir()
    (hello / "env" / "prod.env").write_text("# mine\n")
    (hello / "inventories").mkdir()
    (hello / "inventories" / "local.yaml").write_text("# my fleet\n")
    assert run(capsys, "init", str(hello))[0] == 0
    assert (hello / "env" / "prod.env").read_text() == "# mine\n"
    assert not (hello / "env" / "default.env").exists(), "env files only where there are none"
    assert (hello / "inventories" / "local.yaml").read_text() == "# my fleet\n"
    recipe = hello / "recipes" / "hello.yaml"
    recipe.write_text("# edited\n")
    code, _, err = run(capsys, "init", str(hello))
    assert (
        code == 2
        and err.strip() == f"fleetdist: error: init: {recipe} exists (--force overwrites it)"
    )
    assert recipe.read_text() == "# edited\n"
    assert run(capsys, "init", "--force", str(hello))[0] == 0
    assert recipe.read_text() != "# edited\n"
    assert (hello / "inventories" / "local.yaml").read_text() != "# my fleet\n"


def test_init_of_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "init", str(tmp_path / "nope"))
    assert code == 2 and "is not a directory" in err


def test_inv_init_is_the_same_door(hello: Path, tmp_path: Path) -> None:
    shutil.copyfile(REPO / "tasks.py", tmp_path / "tasks.py")
    shutil.copyfile(REPO / "fabfile.py", tmp_path / "fabfile.py")
    proc = subprocess.run(
        [INV, "init", "--dir", str(hello)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (hello / "recipes" / "hello.yaml").is_file()
    again = subprocess.run(
        [INV, "init", "--dir", str(hello)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 2 and "exists (--force overwrites it)" in again.stderr

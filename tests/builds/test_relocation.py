"""A venv bundle is relocatable: built for one deploy root, it runs under another."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import make_build_project

pytestmark = pytest.mark.docker


def test_bundle_built_for_one_root_deploys_under_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_image: None
) -> None:
    project = make_build_project(tmp_path / "project")
    project.recipe("hello", deploy_root="{BASE}/hello", formats=["venv"])
    built_for, lives_in = tmp_path / "built-for", tmp_path / "elsewhere"
    (project.root / "inventories" / "here.yaml").write_text(
        yaml.safe_dump(
            {
                "hosts": {
                    "here": {
                        "transport": "local",
                        "local_root": "/",
                        "vars": {"BASE": str(lives_in)},
                    }
                }
            }
        )
    )
    monkeypatch.setenv("BASE", str(built_for))  # what the build resolves deploy_root with
    code, err = project.run("build", "--formats", "venv")
    assert code == 0, err
    [row] = json.loads((project.dist / "artifacts.json").read_text())
    bundle = project.dist / row["file"]
    code, err = project.run("deploy", "-i", "here", "--artifact", str(bundle))
    assert code == 0, err
    current = lives_in / "hello" / "current"
    assert os.readlink(current) == f"releases/{row['release_id']}"
    for argv in (["venv/bin/hello", "--version"], ["venv/bin/python", "-m", "hello", "--version"]):
        out = subprocess.run([str(current / argv[0]), *argv[1:]], capture_output=True, text=True)
        assert out.stdout.strip() == "1.0.0", out.stderr
    assert not built_for.exists()

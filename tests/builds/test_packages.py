"""OS packages: fresh-container installs, side by side, rollback, rpm metadata, failures."""

from __future__ import annotations

import glob
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import BuildProject, docker, make_build_project

pytestmark = pytest.mark.docker

DEB_100 = "bookworm/hello-1.0.0_1.0.0_amd64.deb"
DEB_110 = "bookworm/hello-1.1.0_1.1.0_amd64.deb"
RPM_100 = "bookworm/hello-1.0.0-1.0.0-1.x86_64.rpm"


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, build_image: None) -> BuildProject:
    """hello 1.0.0 as .deb and .rpm, then 1.1.0 as .deb, built from one project."""
    project = make_build_project(tmp_path_factory.mktemp("pkgs") / "project")
    project.recipe(
        "hello", deploy_root="/opt/hello", formats=["deb", "rpm"], build={"runtime_deps": ["libc6"]}
    )
    (project.root / "inventories" / "box.yaml").write_text(
        yaml.safe_dump({"hosts": {"box": {"transport": "ssh", "hostname": "box"}}})
    )
    code, err = project.run("build")
    assert code == 0, err
    project.set_app_version("1.1.0")
    project.recipe("hello", version="1.1.0", deploy_root="/opt/hello", formats=["deb"])
    code, err = project.run("build")
    assert code == 0, err
    return project


def sh(container: str, script: str) -> subprocess.CompletedProcess[str]:
    return docker("exec", container, "sh", "-c", script, check=False)


def test_deb_installs_with_apt_in_a_fresh_container_without_compilers(
    packages: BuildProject, fresh_container: Callable[..., str]
) -> None:
    box = fresh_container(f"{packages.dist}:/pkgs:ro")
    result = sh(
        box,
        "! command -v cc && ! command -v gcc && cd /pkgs/bookworm && "
        "apt-get install -y -q ./hello-1.0.0_1.0.0_amd64.deb >/dev/null && "
        "/opt/hello/releases/1.0.0/venv/bin/hello --version",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0.0"


def test_rpm_metadata_and_files(packages: BuildProject) -> None:
    rpm = str(packages.dist / RPM_100)
    info = subprocess.run(["rpm", "-qip", rpm], capture_output=True, text=True, check=True).stdout
    assert "Name        : hello-1.0.0" in info and "Version     : 1.0.0" in info
    needs = subprocess.run(["rpm", "-qpR", rpm], capture_output=True, text=True, check=True).stdout
    assert {"python3.11", "libc6"} <= set(needs.split())
    files = subprocess.run(["rpm", "-qlp", rpm], capture_output=True, text=True, check=True)
    listed = files.stdout.split()
    assert "/opt/hello/releases/1.0.0/venv/bin/hello" in listed
    assert "/opt/hello/releases/1.0.0/hello/__main__.py" in listed
    assert all(p.startswith("/opt/hello/releases/1.0.0") for p in listed)


# Deploying these debs to hosts, side by side, and rolling back by flipping
# `current` is tested over real SSH in tests/integration/test_venv_bundle.py.


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory, build_image: None) -> BuildProject:
    project = make_build_project(tmp_path_factory.mktemp("bundled") / "project")
    project.recipe(
        "hellob",
        app="hellob",
        deploy_root="/opt/hellob",
        formats=["deb"],
        build={"python": "bundled", "flip_current": "postinst"},
    )
    code, err = project.run("build")
    assert code == 0, err
    return project


def test_bundled_deb_runs_where_there_is_no_python3(
    bundled: BuildProject, fresh_container: Callable[..., str]
) -> None:
    box = fresh_container(f"{bundled.dist}:/pkgs:ro")
    # Purge every python package (the base image's python3 and all it pulled in).
    purge = sh(
        box,
        "dpkg-query -W -f '${Package}\\n' | grep python | "
        "xargs dpkg --purge --force-depends >/dev/null 2>&1; ! command -v python3",
    )
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert sh(box, "ls /usr/lib/python3*").returncode != 0
    deb = "/pkgs/bookworm/hellob-1.0.0_1.0.0_amd64.deb"
    result = sh(
        box,
        f"apt-get install -y -q {deb} >/dev/null && /opt/hellob/current/venv/bin/hello --version",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0.0"
    assert sh(box, "readlink /opt/hellob/current").stdout.strip() == "releases/1.0.0"


def test_postinst_package_flips_current_in_and_out_with_apt(
    bundled: BuildProject, fresh_container: Callable[..., str]
) -> None:
    """`flip_current: postinst`: the host engine's flip, run by dpkg as root, both ways."""
    box = fresh_container(f"{bundled.dist}:/pkgs:ro")
    deb = "/pkgs/bookworm/hellob-1.0.0_1.0.0_amd64.deb"
    assert sh(box, f"apt-get install -y -q {deb} >/dev/null").returncode == 0
    assert sh(box, "readlink /opt/hellob/current").stdout.strip() == "releases/1.0.0"
    removed = sh(box, "apt-get remove -y -q hellob-1.0.0 >/dev/null && ls -A /opt/hellob")
    assert removed.returncode == 0, removed.stderr
    assert "current" not in removed.stdout.split()


def leftovers(label: str) -> str:
    return docker("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}").stdout


def test_failing_build_exits_1_with_the_log_tail_and_leaves_nothing(tmp_path: Path) -> None:
    project = make_build_project(tmp_path / "project")
    app = f"broken{uuid.uuid4().hex[:8]}"
    project.recipe(
        app,
        app=app,
        deploy_root=f"/opt/{app}",
        formats=["deb"],
        test=["echo about to fail; exit 3"],
    )
    scratch_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "fleetdist-pkg-*")))
    code, err = project.run("build", "-r", app)
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "fleetdist: error: build deb/bookworm: build in container fleetdist-build-"
    )
    assert "about to fail" in last.split("last lines:")[1]
    assert "[deb/bookworm] about to fail" in err
    assert leftovers(f"org.fleetdist.build.app={app}") == ""
    scratch_after = set(glob.glob(os.path.join(tempfile.gettempdir(), "fleetdist-pkg-*")))
    assert scratch_after <= scratch_before
    assert (project.dist / "logs" / "deb-bookworm.log").is_file()


def test_missing_build_image_says_how_to_build_it(tmp_path: Path) -> None:
    project = make_build_project(tmp_path / "project")
    project.recipe(
        "hello",
        deploy_root="/opt/hello",
        formats=["deb"],
        build={"machines": {"ghost": {"image": "fleetdist/ghost:none"}}},
    )
    code, err = project.run("build")
    assert code == 1
    assert "build machine ghost: image fleetdist/ghost:none is missing" in err
    assert "scripts/build-image.sh" in err

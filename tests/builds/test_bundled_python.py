"""`python: bundled` + `python_version: "3.13"`: a .deb carrying a CPython built from source.

The first build on a machine compiles CPython 3.13 from Debian trixie's
source package (minutes; then cached under ~/.cache/fleetdist/python), so
this module builds once and reuses it: the second build must say so in its
log and produce the very same bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest
from conftest import BuildProject, docker, make_build_project

pytestmark = pytest.mark.docker

DEB = "bookworm/hello-1.0.0_1.0.0_amd64.deb"
PREFIX = "/opt/hello/releases/1.0.0"
REUSED = "CPython 3.13 for bookworm: reusing the cached build "


@pytest.fixture(scope="module")
def bundled313(tmp_path_factory: pytest.TempPathFactory, build_image: None) -> BuildProject:
    project = make_build_project(tmp_path_factory.mktemp("py313") / "project")
    project.recipe(
        "hello",
        deploy_root="/opt/hello",
        formats=["deb"],
        build={"python": "bundled", "python_version": "3.13"},
    )
    code, err = project.run("build")
    assert code == 0, err[-3000:]
    return project


def sh(container: str, script: str) -> subprocess.CompletedProcess[str]:
    return docker("exec", container, "sh", "-c", script, check=False)


def test_bundled_313_deb_runs_where_no_python_package_is_installed(
    bundled313: BuildProject, fresh_container: Callable[..., str]
) -> None:
    box = fresh_container(f"{bundled313.dist}:/pkgs:ro")
    purge = sh(
        box,
        "dpkg-query -W -f '${Package}\\n' | grep python | "
        "xargs dpkg --purge --force-depends >/dev/null 2>&1; dpkg -l | grep -i python",
    )
    assert purge.returncode == 1 and purge.stdout == "", purge.stdout
    assert sh(box, "python3 --version").returncode != 0
    installed = sh(box, f"apt-get install -y -q /pkgs/{DEB} >/dev/null")
    assert installed.returncode == 0, installed.stderr
    # Installing pulled in no python package either.
    assert sh(box, "dpkg -l | grep -i python; command -v python3").stdout == ""
    version = sh(box, f"{PREFIX}/venv/bin/hello --version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == "1.0.0\n"
    probe = sh(
        box,
        f"{PREFIX}/venv/bin/python -c "
        "'import hello, sqlite3, ssl, sys; print(hello.__version__); print(sys.version); "
        "print(sys.base_prefix)'",
    )
    assert probe.returncode == 0, probe.stderr
    app_version, sys_version, base = probe.stdout.splitlines()
    assert app_version == "1.0.0"
    assert sys_version.startswith("3.13.")
    assert base == f"{PREFIX}/python"
    shebang = sh(box, f"head -n 1 {PREFIX}/venv/bin/hello").stdout.strip()
    assert shebang == f"#!{PREFIX}/venv/bin/python"
    interpreter = sh(box, f"readlink -f {PREFIX}/venv/bin/python").stdout.strip()
    assert interpreter == f"{PREFIX}/python/bin/python3.13"


def test_second_build_reuses_the_interpreter_and_makes_the_same_bytes(
    bundled313: BuildProject,
) -> None:
    first = (bundled313.dist / DEB).read_bytes()
    shutil.rmtree(bundled313.dist)  # no cached package: the container build runs again
    code, err = bundled313.run("build")
    assert code == 0, err[-3000:]
    assert REUSED in err
    log = (bundled313.dist / "logs" / "deb-bookworm.log").read_text()
    assert REUSED in log and "building it from Debian" not in log
    assert (bundled313.dist / DEB).read_bytes() == first

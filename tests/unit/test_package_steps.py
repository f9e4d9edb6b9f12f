"""Format-specific release steps: the .deb install script and the venv bundle check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetdist.release import packages
from fleetdist.release.command import Sh, assign, script
from fleetdist.release.layout import ReleaseLayout
from fleetdist.release.lease import LockSpec
from fleetdist.release.shlib import library
from fleetdist.release.steps import Context, Ledgers, Upload, prepare

LOCK = LockSpec(run_id="r1", holder="me")
LEDGERS = Ledgers(*[("{", ",", "}")] * 3)


def ctx(root: str, rid: str = "1.0.0") -> Context:
    return Context(layout=ReleaseLayout(root), app="hello", release_id=rid)


def staged(fmt: str, root: str, incoming: str) -> str:
    return prepare(ctx(root), LOCK, Upload(incoming, "ab", fmt), ledgers=LEDGERS).text


def check_bundle(c: Context) -> Sh:
    """The bundle check alone, over the variables the stage script sets."""
    return script(
        [
            *(assign(k, v) for k, v in c.layout.variables()),
            assign("ID", c.release_id),
            assign("ABI_FILE", packages.ABI_FILE),
            library("stage"),
            packages.bundle_check(),
        ]
    )


def test_deb_unpack_installs_with_apt_and_checks_the_release_dir() -> None:
    text = staged("deb", "/opt/hello", "/opt/hello/x $(y).deb")
    assert 'apt-get install -y -q --no-install-recommends "$A"' in text
    assert "A='/opt/hello/x $(y).deb'" in text
    assert '[ -f "$REL/$ID/$MARKER" ]' in text
    calls = text.rpartition("\n}\n")[2]  # what runs after the library's definitions
    assert "\ninstall_deb\n" in calls and "unpack_tar" not in calls


def test_archives_and_venv_bundles_unpack_with_tar() -> None:
    for fmt in ("tar.gz", "venv"):
        assert "\nunpack_tar z\n" in staged(fmt, "/srv/a", "/i/x")
    assert "\nunpack_tar\n" in staged("tar", "/srv/a", "/i/x")


def soabi() -> str:
    import sysconfig

    return str(sysconfig.get_config_var("SOABI"))


def fake_bundle(root: Path, rid: str, *, shebang: str, home: str, abi: str) -> None:
    rel = root / "releases" / rid
    (rel / "venv" / "bin").mkdir(parents=True)
    tool = rel / "venv" / "bin" / "tool"
    tool.write_text(f"#!{shebang}\nprint(1)\n")
    tool.chmod(0o755)
    (rel / "venv" / "bin" / "python").symlink_to(sys.executable)
    (rel / "venv" / "pyvenv.cfg").write_text(
        f"home = {home}\ninclude-system-site-packages = false\n"
    )
    (rel / ".fleetdist-abi").write_text(abi + "\n")


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_bundle_check_passes_when_interpreters_fit(tmp_path: Path) -> None:
    home = str(Path(sys.executable).parent)
    if not (Path(home) / "python3").exists():
        pytest.skip("no python3 beside this interpreter")
    fake_bundle(tmp_path, "1", shebang="/bin/sh", home=home, abi=soabi())
    result = run(check_bundle(ctx(str(tmp_path), "1")).text)
    assert result.returncode == 0, result.stderr


def test_bundle_check_lists_every_problem(tmp_path: Path) -> None:
    home = str(Path(sys.executable).parent)
    fake_bundle(tmp_path, "1", shebang="/elsewhere/venv/bin/python", home=home, abi="cpython-27")
    (tmp_path / "releases" / "1" / "venv" / "pyvenv.cfg").write_text("home = /no/such/dir\n")
    result = run(check_bundle(ctx(str(tmp_path), "1")).text)
    assert result.returncode == 1
    assert "shebang of venv/bin/tool names /elsewhere/venv/bin/python, not on this host" in (
        result.stderr
    )
    assert "venv interpreter /no/such/dir/python3 is missing on this host" in result.stderr


def test_bundle_check_reports_an_abi_mismatch(tmp_path: Path) -> None:
    home = str(Path(sys.executable).parent)
    if not (Path(home) / "python3").exists():
        pytest.skip("no python3 beside this interpreter")
    fake_bundle(tmp_path, "1", shebang="/bin/sh", home=home, abi="cpython-27-x86_64-linux-gnu")
    result = run(check_bundle(ctx(str(tmp_path), "1")).text)
    assert result.returncode == 1
    assert "python ABI mismatch: bundle built for cpython-27-x86_64-linux-gnu" in result.stderr

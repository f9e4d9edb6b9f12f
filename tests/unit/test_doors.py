"""The `fab` door refuses bad flags exactly as `fleetdist` does: one line, exit 2.

These run the real `fab` (a subprocess, in a copy of the example project
with the repository's fabfile) on the local fleet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from fleetdist import cli

from .conftest import REPO, Project

FAB = shutil.which("fab", path=os.path.dirname(sys.executable)) or "fab"


def fab(project: Project, *argv: str) -> subprocess.CompletedProcess[str]:
    shutil.copyfile(REPO / "fabfile.py", project.root / "fabfile.py")
    return subprocess.run(
        [FAB, *argv],
        cwd=project.root,
        env={**os.environ, "FLEET_ROOT": str(project.fleet)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "--canary=abc"], "argument --canary: invalid int value: 'abc'"),
        (["deploy", "--bogus"], "unrecognized arguments: --bogus"),
        (
            ["deploy", "--on-failure=revert"],
            "argument --on-failure: invalid choice: 'revert' (choose from 'halt', 'rollback')",
        ),
        (["deploy", "--canary"], "argument --canary: expected one argument"),
        (["rollback", "--parallel=0"], "--parallel: must be at least 1"),
        (["status", "--persist=-1"], "--persist: must be 0 or more seconds"),
    ],
)
def test_fab_usage_errors_are_fleetdists_one_line_and_exit_2(
    project: Project, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    proc = fab(project, *argv)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"fleetdist: error: {message}\n")
    fleetdist_argv = [a.replace("=", " ", 1).split(" ") for a in argv]
    capsys.readouterr()
    assert cli.main([w for a in fleetdist_argv for w in a]) == 2
    assert capsys.readouterr().err == proc.stderr, "the same line through both doors"
    assert not project.fleet.exists(), "nothing was touched"


def test_fab_usage_error_with_json_is_one_document(project: Project) -> None:
    proc = fab(project, "deploy", "--json", "--bogus")
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {
        "version": 1,
        "error": {"message": "unrecognized arguments: --bogus", "type": "UsageError"},
        "exit_code": 2,
    }


def test_fab_flags_typed_as_text_still_deploy(project: Project) -> None:
    proc = fab(project, "-H", "web0[1-2]", "deploy", "--canary=1", "--parallel=2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [h["status"] for h in report["hosts"]] == ["ok", "ok"]
    assert project.current("web01") == project.current("web02") == report["release_id"]

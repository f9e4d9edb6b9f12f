"""The `--json` contract: exactly one document on stdout on every path, errors included,
with `version` and `exit_code`; progress still on stderr.  And the run log: each host's
whole output, named by the recap; Ctrl-C: one line, no traceback, no protocol lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import HOSTS, Project


def one_document(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)  # raises on anything but exactly one document
    assert doc["version"] == 1 and isinstance(doc["exit_code"], int)
    return doc


@pytest.mark.parametrize(
    ("argv", "kind", "says"),
    [
        (["deploy", "-r", "nosuch"], "ConfigError", "nosuch"),
        (["deploy", "-H", "web99"], "HostPatternError", "web99"),
        (["deploy", "--batch", "lots"], "ConfigError", "--batch"),
        (["deploy", "--bogus"], "UsageError", "unrecognized arguments: --bogus"),
        (["deploy", "--canary", "abc"], "UsageError", "argument --canary: invalid int value"),
        (["rollback", "--to"], "UsageError", "argument --to: expected one argument"),
        (["status", "--parallel", "0"], "UsageError", "--parallel: must be at least 1"),
        (["history", "--run"], "UsageError", "unrecognized arguments: --run"),
        (["hosts", "web[9-1]"], "HostPatternError", "web[9-1]"),
    ],
)
def test_every_error_is_one_json_document(
    project: Project, argv: list[str], kind: str, says: str
) -> None:
    result = project.run(*argv[:1], "--json", *argv[1:])
    doc = one_document(result.out)
    assert set(doc) == {"version", "error", "exit_code"}
    assert doc["exit_code"] == result.code == 2
    assert doc["error"]["type"] == kind
    assert says in doc["error"]["message"]
    assert result.err == f"fleetdist: error: {doc['error']['message']}\n", "one line on stderr"


def test_json_before_the_verb_still_gets_a_document(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetdist.cli import main

    assert main(["--json"]) == 2
    doc = one_document(capsys.readouterr().out)
    assert doc["error"] == {
        "message": "the following arguments are required: verb",
        "type": "UsageError",
    }


def test_every_verb_has_a_version_and_an_exit_code(project: Project) -> None:
    deploy = project.run("deploy", "--json")
    assert one_document(deploy.out)["exit_code"] == 0
    project.bump("v2")
    project.deploy()
    docs = {
        verb: one_document(project.run(verb, "--json", *extra).out)
        for verb, extra in [
            ("build", []),
            ("plan", []),
            ("status", []),
            ("history", []),
            ("rollback", []),
            ("unlock", []),
            ("hosts", ["web[01-02]"]),
        ]
    }
    assert [a["format"] for a in docs["build"]["artifacts"]] == ["tar.gz", "zip"]
    assert [h["host"] for h in docs["plan"]["hosts"]] == list(HOSTS)
    assert [h["host"] for h in docs["status"]["hosts"]] == list(HOSTS)
    assert len(docs["history"]["entries"]) == 6
    assert docs["rollback"]["action"] == "rollback" and docs["rollback"]["exit_code"] == 0
    assert docs["hosts"]["hosts"] == ["web01", "web02"]


def test_json_keeps_progress_on_stderr(project: Project) -> None:
    result = project.run("deploy", "--json")
    assert result.code == 0
    json.loads(result.out)
    assert "[web01] connected" in result.err and "[web01] activated" in result.err


def test_failure_names_the_run_log_that_has_every_line(project: Project) -> None:
    noisy = "for i in $(seq 1 20); do echo line $i of [/srv] >&2; done; exit 1"
    project.write_recipe(test=[noisy])
    result = project.run("deploy", "--json")
    assert result.code == 1
    report = one_document(result.out)
    web01 = next(h for h in report["hosts"] if h["host"] == "web01")
    assert "line 20 of [/srv]" in web01["error"] and "line 15 " not in web01["error"]
    log = Path(web01["log"])
    assert log == Path(report["log_dir"]) / "web01.log"
    assert log.parent.parent == project.root / ".fleetdist" / "runs"
    text = log.read_text()
    assert all(f"line {i} of [/srv]\n" in text for i in range(1, 21))
    assert "@@" not in text
    recap = project.run("deploy")
    assert f"(full output: {report['log_dir'].rsplit('/', 1)[0]}/" in recap.err


def test_ctrl_c_is_one_line_without_traceback_or_protocol(project: Project) -> None:
    project.write_recipe(test=["echo tests started", "sleep 5"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetdist.cli", "deploy", "--project", str(project.root)],
        env={**os.environ, "FLEET_ROOT": str(project.fleet)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.monotonic() + 30
    log_dir = project.root / ".fleetdist" / "runs"
    while not any(log_dir.glob("*/web0*.log")) and time.monotonic() < deadline:
        time.sleep(0.1)  # the tests are running: their first line is in the run log
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "fleetdist: error: interrupted; hosts keep their current release"
    assert "Traceback" not in err and "@@" not in err + out
    assert "FAILED" not in err, "nothing printed after Ctrl-C but the one line"

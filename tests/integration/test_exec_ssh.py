"""`fleetdist exec` and `fleetdist releases` over real SSH: what the hosts run is exactly
what the controller quoted, exit codes and `--json` say what each host returned."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from .fleet import WEB, Fleet
from .project import Project

pytestmark = pytest.mark.integration

HOSTILE = ["a b", "it's", '"dq"', "$(touch PWNED)", "`touch PWNED`", "; touch PWNED", "-n", "*"]


@pytest.fixture
def project(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    return Project(tmp_path / "project", fleet.inventory(tmp_path, services=WEB[:3]))


def document(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def pwned(fleet: Fleet) -> list[str]:
    """Any PWNED file in the places a broken quote would have made one."""
    found = []
    for host in WEB[:3]:
        out = fleet.exec(host, "find / -xdev -name PWNED 2>/dev/null").stdout.split()
        found += [f"{host}:{path}" for path in out]
    return found


def test_hostile_words_arrive_as_written(
    fleet: Fleet, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert project.run("exec", "--json", "--", "printf", "[%s]\\n", *HOSTILE) == 0
    doc = document(capsys)
    expected = "".join(f"[{word}]\n" for word in HOSTILE)
    hosts = doc["hosts"]
    assert isinstance(hosts, list)
    assert [(h["host"], h["status"], h["exit_code"], h["stdout"]) for h in hosts] == [
        (host, "ok", 0, expected) for host in WEB[:3]
    ]
    assert doc["version"] == 1 and doc["exit_code"] == 0
    assert not pwned(fleet)


def test_shell_string_exit_codes_and_streams(
    fleet: Fleet, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.exec("web02", "touch /tmp/fail-here")
    try:
        script = "echo out; echo err >&2; test ! -e /tmp/fail-here || exit 7"
        assert project.run("exec", "--json", "--shell", "--", script) == 1
    finally:
        fleet.exec("web02", "rm -f /tmp/fail-here")
    captured = capsys.readouterr()
    hosts = {h["host"]: h for h in json.loads(captured.out)["hosts"]}
    assert {h: (r["exit_code"], r["stdout"], r["stderr"]) for h, r in hosts.items()} == {
        "web01": (0, "out\n", "err\n"),
        "web02": (7, "out\n", "err\n"),
        "web03": (0, "out\n", "err\n"),
    }
    assert "web02 | err" in captured.err, "each line streamed with its host's name"

    assert project.run("exec", "-H", "web01", "--", "sh", "-c", "echo $0", "x y") == 0
    assert capsys.readouterr().out == "web01 | x y\n"


def test_unreachable_host_exits_5(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    inventory = fleet.inventory(
        tmp_path,
        services=("web01",),
        extra={"hosts": {"ghost": {"hostname": "127.0.0.1", "port": closed, "connect_timeout": 3}}},
    )
    project = Project(tmp_path / "project", inventory)
    assert project.run("exec", "--json", "--", "true") == 5
    statuses = {h["host"]: h["status"] for h in document(capsys)["hosts"]}  # type: ignore[union-attr]
    assert statuses == {"web01": "ok", "ghost": "unreachable"}


def test_releases_lists_each_hosts_kept_releases(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project.recipe(test=["true"], healthcheck="true")
    assert project.run("deploy", "-H", "web0[1-2]") == 0
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    assert project.run("deploy", "-H", "web01") == 0
    capsys.readouterr()
    assert project.run("releases", "--json", "-H", "web*", "-x", "web03") == 0
    hosts = {h["host"]: h for h in document(capsys)["hosts"]}  # type: ignore[union-attr]
    marks = {
        host: [(r["id"][:5], r["current"], r["previous"], r["tested"]) for r in row["releases"]]
        for host, row in hosts.items()
    }
    assert marks == {
        "web01": [("2.0.0", True, False, True), ("1.0.0", False, True, True)],
        "web02": [("1.0.0", True, False, True)],
    }

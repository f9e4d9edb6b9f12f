"""Runbooks on the local fleet: undo order, one budget across batches, resume (after a
failure and after a SIGKILLed controller), the dry run equal to what runs, `--json`,
`confirm: true`, pause and http steps.

Steps append their name to `ran` in the host's directory (the local transport's
working directory), so each test can see exactly what ran where, and in which order.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetdist import runbooks
from fleetdist.transport.base import Transport, TransportFactory

from .conftest import REPO, Project

FIVE = """\
defaults: {transport: local, local_root: "{FLEET_ROOT}/{host}", command_timeout: 60}
groups:
  web: {hosts: ["web[01-05]"]}
"""


def write(project: Project, text: str, name: str = "rb") -> None:
    folder = project.root / "runbooks"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(text))


def step(name: str, undo: bool = False, fail_if: str = "") -> str:
    """A step that appends its name to `ran` (and fails where `fail_if` exists)."""
    check = f"; test ! -e {fail_if}" if fail_if else ""
    text = f'  - {{name: {name}, exec: {{shell: "echo {name} >> ran{check}"}}'
    if undo:
        text += f', undo: {{exec: {{shell: "echo undo-{name} >> ran"}}}}'
    return text + "}\n"


def ran(project: Project, host: str) -> list[str]:
    path = project.fleet / host / "ran"
    return path.read_text().split() if path.exists() else []


def fail_on(project: Project, *hosts: str) -> None:
    for host in hosts:
        (project.fleet / host).mkdir(parents=True, exist_ok=True)
        (project.fleet / host / "fail-here").touch()


def states(project: Project, run_id: str, host: str) -> list[str]:
    """The step records of `host` in the run's journal, in order."""
    return [
        f"{e['data']['runbook_step']}:{e['data']['state']}"
        for e in project.journal(run_id)
        if e.get("host") == host and "runbook_step" in (e.get("data") or {})
    ]


@pytest.fixture
def five(project: Project) -> Project:
    (project.root / "inventories" / "five.yaml").write_text(FIVE)
    return project


def test_a_failure_undoes_the_hosts_completed_steps_in_reverse(project: Project) -> None:
    write(
        project,
        "hosts: web01\nsteps:\n"
        + step("a", undo=True)
        + step("b")
        + step("c", undo=True)
        + step("d", undo=True, fail_if="fail-here")
        + step("e", undo=True),
    )
    fail_on(project, "web01")
    result = project.run("run", "rb", "--json")
    assert result.code == 1, result.err
    assert ran(project, "web01") == ["a", "b", "c", "d", "undo-c", "undo-a"]
    host = result.json()["hosts"][0]
    assert (host["status"], host["failed_step"]) == ("failed", "d")
    assert [(s["name"], s["status"]) for s in host["steps"]] == [
        ("a", "undone"),
        ("b", "ok"),
        ("c", "undone"),
        ("d", "failed"),
    ]
    assert states(project, result.json()["run_id"], "web01") == [
        "a:started", "a:ok", "b:started", "b:ok", "c:started", "c:ok", "d:started",
        "d:failed", "c:undoing", "c:undone", "a:undoing", "a:undone",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("parallel", "started"),
    [(1, ["web01", "web02"]), (2, ["web01", "web02", "web03"])],
)
def test_one_budget_for_the_whole_run_across_batches(
    five: Project, parallel: int, started: list[str]
) -> None:
    """max_failures 1 over 5 hosts: web01 fails in batch 1 (within budget), web02 in batch 2
    spends it: no further host starts (with 2 workers web03 was already running and
    finishes), batch 3 never starts, exit 3.  A per-batch budget would have gone on."""
    strategy = f"{{batch: '1,2', max_failures: 1, parallel: {parallel}}}"
    write(five, f"hosts: web\nstrategy: {strategy}\nsteps:\n" + step("work", fail_if="fail-here"))
    fail_on(five, "web01", "web02")
    result = five.run("run", "rb", "-i", "five", "--json")
    assert result.code == 3, result.err
    doc = result.json()
    assert doc["aborted"] == "failure budget exceeded (max_failures): more than 1 host(s) failed"
    status = {h["host"]: h["status"] for h in doc["hosts"]}
    assert [h for h in status if ran(five, h)] == started
    assert status["web01"] == status["web02"] == "failed"
    assert status["web04"] == status["web05"] == "skipped"
    assert status["web03"] == ("ok" if parallel == 2 else "skipped")


def test_a_failing_canary_stops_the_run_whatever_the_budget(five: Project) -> None:
    """As `deploy --canary`: the canary is the run's probe, not budget to spend."""
    write(
        five,
        "strategy: {canary: 1, batch: 2, max_failures: 3}\nsteps:\n"
        + step("work", fail_if="fail-here"),
    )
    fail_on(five, "web01")
    result = five.run("run", "rb", "-i", "five", "--json")
    assert result.code == 3, result.err
    assert result.json()["aborted"] == "canary failed"
    assert [h for h in ("web01", "web02", "web03", "web04", "web05") if ran(five, h)] == ["web01"]


def test_failures_within_the_budget_do_not_stop_the_run(five: Project) -> None:
    write(
        five,
        "strategy: {batch: 1, max_failures: 40%}\nsteps:\n" + step("work", fail_if="fail-here"),
    )
    fail_on(five, "web01", "web03")
    result = five.run("run", "rb", "-i", "five", "--json")
    assert result.code == 1 and result.json()["aborted"] is None
    assert all(ran(five, f"web0{n}") == ["work"] for n in range(1, 6))


RESUMABLE = (
    "hosts: web\nstrategy: {batch: 1, max_failures: 0}\nsteps:\n"
    + step("mark", undo=True)
    + step("check", fail_if="fail-here")
    + step("finish")
)


def test_resume_after_a_failure_runs_only_what_is_left(project: Project) -> None:
    write(project, RESUMABLE)
    fail_on(project, "web02")
    first = project.run("run", "rb", "--json")
    assert first.code == 3, first.err
    assert ran(project, "web01") == ["mark", "check", "finish"]
    assert ran(project, "web02") == ["mark", "check", "undo-mark"]
    assert ran(project, "web03") == [], "the spent budget kept it from starting"

    (project.fleet / "web02" / "fail-here").unlink()
    again = project.run("run", "rb", "--resume", "last", "--json")
    assert again.code == 0, again.err
    doc = again.json()
    assert doc["run_id"] == first.json()["run_id"] and doc["resumed"] is True
    assert ran(project, "web01") == ["mark", "check", "finish"], "nothing re-ran there"
    assert ran(project, "web02") == ["mark", "check", "undo-mark", "mark", "check", "finish"]
    assert ran(project, "web03") == ["mark", "check", "finish"]
    web01 = next(h for h in doc["hosts"] if h["host"] == "web01")
    assert [s["status"] for s in web01["steps"]] == ["done", "done", "done"]
    runs = project.run("runs", "--json").json()["runs"]
    assert [(r["action"], r["state"], r["exit_code"]) for r in runs] == [("runbook", "finished", 0)]


def test_resume_refuses_a_changed_runbook_and_new_params(project: Project) -> None:
    write(project, RESUMABLE)
    fail_on(project, "web01")
    assert project.run("run", "rb").code == 3
    result = project.run("run", "rb", "--resume", "last", "--param", "x=1")
    assert result.code == 2 and "--resume: the params and hosts are the run's own" in result.err
    write(project, RESUMABLE + step("more"))
    result = project.run("run", "rb", "--resume", "last")
    assert result.code == 2 and "changed since run" in result.err


def _wait_for(path: Path, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in {path}")


def _spawn_until(project: Project, needle: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`fleetdist run rb` as a child process, once its journal shows `needle`: the
    controller a test then interrupts or kills (stderr piped, for its last words)."""
    env = {**os.environ, "FLEET_ROOT": str(project.fleet)}
    argv = [sys.executable, "-m", "fleetdist.cli", "run", "rb", "--project", str(project.root)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        runs = project.root / ".fleetdist" / "runs"
        deadline = time.monotonic() + 60
        while not list(runs.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.05)
        journal = next(runs.glob("*.jsonl"))
        _wait_for(journal, needle)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return proc, journal


def test_resume_after_sigkill_of_the_controller_mid_runbook(project: Project) -> None:
    """kill -9 during a wait step: the journal says it started and never ended, the lease
    stays held by the run; --resume re-runs the wait, skips what was done, finishes."""
    write(
        project,
        "hosts: web\nstrategy: {canary: 1, batch: 2}\nsteps:\n"
        + step("before")
        + "  - {name: deploy, deploy: {}, undo: {rollback: {}}}\n"
        + "  - {name: nap, wait: 3s}\n"
        + step("after"),
    )
    proc, journal = _spawn_until(project, '"stage": "nap: started"')
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    run_id = journal.stem
    lock = project.host_root("web01") / ".fleetdist" / "lock" / "run"
    assert lock.read_text().strip() == run_id, "the run's lease outlives its controller"
    assert project.current("web01") is not None and project.current("web02") is None

    result = project.run("run", "rb", "--resume", run_id, "--json")
    assert result.code == 0, result.err
    assert [ran(project, h) for h in ("web01", "web02", "web03")] == [["before", "after"]] * 3
    web01 = next(h for h in result.json()["hosts"] if h["host"] == "web01")
    assert [(s["name"], s["status"]) for s in web01["steps"]] == [
        ("before", "done"),
        ("deploy", "done"),
        ("nap", "ok"),
        ("after", "ok"),
    ]
    assert not lock.parent.exists(), "the lease is given back at the end"
    assert [e["action"] for e in project.ledger("web01")] == ["deploy"], "deployed once"


class _Recorder:
    """A transport factory that keeps every script the hosts were sent."""

    def __init__(self, inner: TransportFactory) -> None:
        self.inner, self.sent = inner, []  # type: ignore[var-annotated]

    def __call__(self, host: Any) -> Transport:
        transport = self.inner(host)
        real = transport.run

        def run(script: str, **kwargs: Any) -> Any:
            self.sent.append((host.name, script))
            return real(script, **kwargs)

        transport.run = run  # type: ignore[method-assign]
        return transport


def _timeless(text: str) -> str:
    """Ledger lines carry the time they were rendered at: the one part that differs."""
    return re.sub(r'"time":"[^"]*"', '"time":T', text)


def test_the_dry_run_shows_exactly_what_the_hosts_are_sent(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project,
        """\
        params: {greeting: {default: "it's $(here)"}}
        hosts: web01
        steps:
          - name: argv
            exec: [printf, "%s\\n", "${greeting}", "${host.name}"]
            undo: {exec: [echo, undone]}
          - name: deploy
            deploy: {}
            undo: {rollback: {}}
          - name: shell
            exec: {shell: "echo '${greeting}' ${host.name} > out"}
        """,
    )
    assert project.run("build", "--formats", "tar.gz").code == 0
    planned = project.run("run", "rb", "--dry-run", "--json")
    assert planned.code == 0, planned.err
    assert not project.fleet.exists(), "a dry run touches nothing"
    text = project.run("run", "rb", "--dry-run").out
    host = planned.json()["batches"][0]["hosts"][0]
    assert [s["name"] for s in host["steps"]] == ["argv", "deploy", "shell"]

    recorder: list[_Recorder] = []
    real = runbooks.transports

    def recording(opts: Any, **kw: Any) -> TransportFactory:
        recorder.append(_Recorder(real(opts, **kw)))
        return recorder[0]

    monkeypatch.setattr(runbooks, "transports", recording)
    result = project.run("run", "rb", "--json")
    assert result.code == 0, result.err
    run_id = result.json()["run_id"]
    sent = [_timeless(script.replace(run_id, "DRY-RUN")) for _, script in recorder[0].sent]
    assert len(sent) == 6, sent  # lease, argv, prepare, activate, shell, release
    for script in sent:
        assert script in _timeless(text), script
    for name in ("argv", "shell"):
        shown = next(s for s in host["steps"] if s["name"] == name)["script"]
        assert shown.split("\n", 1)[1] in sent
    assert (project.fleet / "web01" / "out").read_text() == "it's $(here) web01\n"


def test_json_document(project: Project) -> None:
    write(project, "hosts: web0[1-2]\nsteps:\n" + step("one") + step("two"))
    result = project.run("run", "rb", "--json")
    doc = result.json()
    assert (doc["version"], doc["exit_code"], doc["action"], doc["runbook"]) == (
        1, 0, "runbook", "rb",
    )  # fmt: skip
    assert [(h["host"], h["status"], [s["name"] for s in h["steps"]]) for h in doc["hosts"]] == [
        ("web01", "ok", ["one", "two"]),
        ("web02", "ok", ["one", "two"]),
    ]
    assert set(doc["hosts"][0]["steps"][0]) == {"name", "status", "on", "seconds", "error", "data"}
    assert Path(doc["log_dir"]).name == doc["run_id"]


def test_confirm_true_needs_yes(project: Project) -> None:
    inventory = project.root / "inventories" / "local.yaml"
    inventory.write_text("confirm: true\n" + inventory.read_text())
    write(project, "steps:\n" + step("one"))
    result = project.run("run", "rb")
    assert result.code == 2
    assert "confirm: true: pass --yes to run a runbook on its hosts" in result.err
    assert not project.fleet.exists() and not (project.root / ".fleetdist").exists()
    assert project.run("run", "rb", "--dry-run").code == 2, "the same checks as a run"
    assert project.run("run", "rb", "--yes").code == 0
    assert ran(project, "web01") == ["one"]


def test_pause_without_a_terminal_fails_clearly_unless_yes(project: Project) -> None:
    write(project, "hosts: web01\nsteps:\n  - {name: hold, pause: look at the graphs}\n")
    result = project.run("run", "rb", "--json")
    assert result.code == 1
    error = result.json()["hosts"][0]["error"]
    assert error == "pause: look at the graphs: no terminal to confirm on (pass --yes)"
    assert project.run("run", "rb", "--yes").code == 0


@pytest.fixture
def server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that says `hello` on /, 500 elsewhere."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path == "/" else 500
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"hello there\n")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("origin", ["controller", "host"])
def test_http_checks_status_and_body(project: Project, server: str, origin: str) -> None:
    write(
        project,
        f"""\
        hosts: web01
        steps:
          - {{name: up, http: {{url: "{server}/", body: hello, from: {origin}}}}}
          - {{name: down, http: {{url: "{server}/x", retries: 1, delay: 0.1s, from: {origin}}}}}
        """,
    )
    result = project.run("run", "rb", "--json")
    assert result.code == 1
    host = result.json()["hosts"][0]
    assert [s["status"] for s in host["steps"]] == ["ok", "failed"]
    assert "status 500, want 200" in host["error"] and "2 tries" in host["error"]


def test_a_step_timeout_fails_the_step(project: Project) -> None:
    write(project, "hosts: web01\nsteps:\n  - {name: slow, exec: [sleep, '5'], timeout: 0.3s}\n")
    started = time.monotonic()
    result = project.run("run", "rb", "--json")
    assert result.code == 1 and time.monotonic() - started < 4
    assert result.json()["hosts"][0]["error"] == "host web01: command timed out (step timeout 0.3s)"


def test_a_plain_rollback_undoes_the_last_runbook_that_deployed(project: Project) -> None:
    first = project.deploy()
    project.bump("two")
    write(project, "steps:\n  - {name: deploy, deploy: {}}\n")
    result = project.run("run", "rb", "--json")
    assert result.code == 0, result.err
    second = result.json()["hosts"][0]["steps"][0]["data"]["to"]
    assert second != first and project.current("web02") == second
    write(project, "steps:\n" + step("other"), name="other")
    assert project.run("run", "other").code == 0, "a runbook that deploys nothing"
    assert project.run("rollback").code == 0
    assert [project.current(h) for h in ("web01", "web02", "web03")] == [first] * 3


def test_a_failed_deploy_step_is_in_the_ledger_and_the_run_keeps_its_lease(
    project: Project,
) -> None:
    project.write_recipe(test=["false"])
    write(project, "hosts: web01\nsteps:\n  - {name: deploy, deploy: {}}\n" + step("after"))
    result = project.run("run", "rb", "--json")
    assert result.code == 1
    host = result.json()["hosts"][0]
    assert (host["failed_step"], host["steps"][0]["status"]) == ("deploy", "failed")
    assert "in-place test failed: false" in host["error"]
    entries = project.ledger("web01")
    assert [(e["action"], e["result"], e["run"]) for e in entries][-1:] == [
        ("deploy", "failed", result.json()["run_id"])
    ]
    assert not (project.host_root("web01") / ".fleetdist" / "lock").exists(), (
        "given back at the end"
    )
    assert ran(project, "web01") == []


def test_the_shipped_smoke_runbook_runs_on_the_local_fleet(project: Project) -> None:
    shutil.copytree(REPO / "runbooks", project.root / "runbooks")
    planned = project.run("run", "smoke", "--dry-run", "--json")
    assert planned.code == 0, planned.err
    assert [[h["host"] for h in b["hosts"]] for b in planned.json()["batches"]] == [
        ["web01"],
        ["web02", "web03"],
    ]
    result = project.run("run", "smoke", "--param", "greeting=hi", "--json")
    assert result.code == 0, result.err
    assert {h["status"] for h in result.json()["hosts"]} == {"ok"}
    assert all(project.current(h) for h in ("web01", "web02", "web03"))
    assert not list(project.fleet.rglob("maintenance")), "unmarked"
    log = Path(result.json()["log_dir"]) / "web02.log"
    assert "hi from web02" in log.read_text() and "web02 done" in log.read_text()


def test_hosts_flag_replaces_the_runbooks_hosts_and_exclude_narrows(project: Project) -> None:
    write(project, "hosts: web01\nsteps:\n" + step("one"))
    assert project.run("run", "rb", "-H", "web*", "-x", "web02").code == 0
    assert [ran(project, h) for h in ("web01", "web02", "web03")] == [["one"], [], ["one"]]
    result = project.run("run", "rb", "-H", "web09")
    assert result.code == 2 and "web09" in result.err


def test_a_rollback_step_flips_to_the_previous_release_or_to(project: Project) -> None:
    first = project.deploy()
    project.bump("two")
    second = project.deploy()
    write(project, "hosts: web01\nsteps:\n  - {name: back, rollback: {}}\n")
    result = project.run("run", "rb", "--json")
    assert result.code == 0, result.err
    assert result.json()["hosts"][0]["steps"][0]["data"] == {
        "recipe": "hello",
        "from": second,
        "to": first,
    }
    assert project.current("web01") == first
    write(project, f"hosts: web01\nsteps:\n  - {{name: fwd, rollback: {{to: {second}}}}}\n")
    assert project.run("run", "rb").code == 0 and project.current("web01") == second
    write(project, "hosts: web01\nsteps:\n  - {name: bad, rollback: {to: '../x'}}\n")
    result = project.run("run", "rb")
    assert result.code == 2 and "'../x' cannot be a release id" in result.err


def test_resume_uses_the_runs_own_inventory(five: Project) -> None:
    write(
        five, "strategy: {batch: 1, max_failures: 0}\nsteps:\n" + step("work", fail_if="fail-here")
    )
    fail_on(five, "web03")
    assert five.run("run", "rb", "-i", "five").code == 3
    (five.fleet / "web03" / "fail-here").unlink()
    result = five.run("run", "rb", "--resume", "last", "--json")
    assert result.code == 0, result.err
    assert [ran(five, f"web0{n}") for n in range(1, 6)] == [
        ["work"], ["work"], ["work", "work"], ["work"], ["work"],
    ]  # fmt: skip


def test_a_host_whose_lease_another_run_holds_runs_nothing(project: Project) -> None:
    lock = project.host_root("web02") / ".fleetdist" / "lock"
    lock.mkdir(parents=True)
    for name, value in (("run", "other-run"), ("holder", "someone"), ("expires", "9999999999")):
        (lock / name).write_text(value + "\n")
    write(project, "steps:\n" + step("one"))
    result = project.run("run", "rb", "--json")
    assert result.code == 4, result.err
    hosts = {h["host"]: h for h in result.json()["hosts"]}
    assert (hosts["web02"]["status"], hosts["web02"]["failed_step"]) == ("locked", "lease")
    assert "locked by someone" in hosts["web02"]["error"]
    assert [ran(project, h) for h in ("web01", "web02", "web03")] == [["one"], [], ["one"]]
    assert (lock / "run").read_text() == "other-run\n", "another run's lease is left alone"


def test_a_canary_that_cannot_even_start_stops_the_run(project: Project) -> None:
    """The canary host is locked by another run: no canary ran, so nothing else may."""
    lock = project.host_root("web01") / ".fleetdist" / "lock"
    lock.mkdir(parents=True)
    for name, value in (("run", "other-run"), ("holder", "someone"), ("expires", "9999999999")):
        (lock / name).write_text(value + "\n")
    write(project, "strategy: {canary: 1}\nsteps:\n" + step("one"))
    result = project.run("run", "rb", "--json")
    assert result.code == 3, result.err
    assert result.json()["aborted"] == "canary failed"
    assert [ran(project, h) for h in ("web01", "web02", "web03")] == [[], [], []]


def test_ctrl_c_stops_each_host_after_its_step_and_resume_goes_on(project: Project) -> None:
    """SIGINT during a wait: that step ends, nothing else starts, nothing is undone, the
    leases are given back, exit 130; --resume runs what is left."""
    write(
        project,
        "hosts: web\nstrategy: {canary: 1, batch: 2}\nsteps:\n"
        + step("before", undo=True)
        + "  - {name: nap, wait: 3.5s}\n"
        + step("after"),
    )
    proc, journal = _spawn_until(project, '"stage": "nap: started"')
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert ran(project, "web01") == ["before"], "the wait ended, nothing after it, no undo"
    assert ran(project, "web02") == ran(project, "web03") == []
    assert states(project, journal.stem, "web01")[-1] == "nap:ok"
    result = project.run("run", "rb", "--resume", "last")
    assert result.code == 0, result.err
    assert [ran(project, h) for h in ("web01", "web02", "web03")] == [
        ["before", "after"],
        ["before", "after"],
        ["before", "after"],
    ]


def test_a_long_run_renews_the_leases_of_hosts_still_waiting(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a 4s lease, batches of one host each waiting 4.5s: web03 starts some 9s after the
    leases were taken, and each host's wait outlasts the lease.  A lease is renewed once
    older than a third of it (before each batch and step, and during a wait), so no host
    ever finds its lease expired, where another deploy could have taken it over while the
    run still counted on it."""
    from fleetdist import runbooks as verb

    real = verb.lock_spec
    monkeypatch.setattr(
        verb, "lock_spec", lambda *a, **k: dataclasses.replace(real(*a, **k), lease=4)
    )
    expires = "srv/apps/hello/.fleetdist/lock/expires"
    live = f'test "$(cat {expires})" -gt "$(date +%s)" || {{ echo expired >&2; exit 1; }}'
    write(
        project,
        "hosts: web\nstrategy: {batch: 1}\nsteps:\n"
        f"  - {{name: live, exec: {{shell: '{live}'}}}}\n"
        "  - {name: nap, wait: 4.5s}\n"
        f"  - {{name: still, exec: {{shell: '{live}'}}}}\n",
    )
    result = project.run("run", "rb", "-r", "hello", "--json")
    assert result.code == 0, result.err + result.out
    assert "expired" not in result.err


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("inventory", None, "inventory: expected the inventory file's path"),
        ("inventory", 5, "inventory: expected the inventory file's path"),
        ("params", [1, 2], "params: expected a mapping of param names to values"),
        ("params", {"v": ["x"]}, "params: expected a mapping of param names to values"),
        ("hosts", [], "hosts: expected the run's host names"),
        ("artifacts", ["x"], "artifacts: expected a mapping of recipes to artifact paths"),
        ("default_recipe", 5, "default_recipe: expected a recipe name or nothing"),
    ],
)
def test_a_tampered_journal_header_is_refused_in_one_line(
    project: Project, field: str, value: object, message: str
) -> None:
    """The journal is a file anyone on the controller may edit: --resume reads its header
    field by field, each problem one line naming the file and field, exit 2, no traceback."""
    write(project, "params: {v: {default: x}}\nsteps:\n" + step("one", fail_if="fail-here"))
    fail_on(project, "web01")
    first = project.run("run", "rb", "--json")
    assert first.code == 1, first.err
    journal = project.root / ".fleetdist" / "runs" / f"{first.json()['run_id']}.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    if value is None:
        del header[field]
    else:
        header[field] = value
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    result = project.run("run", "rb", "--resume", "last")
    assert result.code == 2, result.err
    assert f"{journal}:1: {message}" in result.err and result.err.count("\n") == 1, result.err


def test_a_resumed_run_whose_canary_is_done_has_no_canary_batch(five: Project) -> None:
    """The canary batch stops a run on any failure; when it finished before, the first
    batch of the resumed run is an ordinary one, and the budget alone decides."""
    write(
        five,
        "hosts: web\nstrategy: {canary: 1, batch: 2, max_failures: 1}\nsteps:\n"
        + step("work", fail_if="fail-here"),
    )
    fail_on(five, "web02", "web03")
    first = five.run("run", "rb", "-i", "five", "--json")
    assert first.code == 3, first.err  # two failures: more than the budget of one
    (five.fleet / "web03" / "fail-here").unlink()
    result = five.run("run", "rb", "-i", "five", "--resume", "last", "--json")
    assert result.code == 1, result.err  # web02 fails again: within the budget
    doc = result.json()
    assert doc["aborted"] is None
    status = {h["host"]: h["status"] for h in doc["hosts"]}
    assert status == {"web01": "ok", "web02": "failed", "web03": "ok", "web04": "ok", "web05": "ok"}


@pytest.mark.parametrize("origin", ["controller", "host"])
def test_an_http_url_is_requested_as_written_from_either_side(
    project: Project, server: str, origin: str
) -> None:
    """curl globs `[1-2]` and `{a,b}` (two requests, an IPv6 `[::1]` a bad range) unless
    told not to: from a host, the URL is GET as written, as the controller GETs it."""
    get = f"{{url: '{server}/[1-2]', from: {origin}}}"
    write(project, f"hosts: web01\nsteps:\n  - {{name: get, http: {get}}}\n")
    result = project.run("run", "rb", "--json")
    assert result.code == 1, result.err
    assert "status 500, want 200" in result.json()["hosts"][0]["error"]


def test_a_second_ctrl_c_keeps_the_lease_of_a_host_still_in_its_step(project: Project) -> None:
    """A second SIGINT stops waiting for the running steps: the run ends at once, but a
    host whose step still runs keeps the run's lease (as after a SIGKILL), rather than
    having it given back (and its connection closed) under that step."""
    write(project, "hosts: web01\nsteps:\n  - {name: nap, wait: 4s}\n" + step("after"))
    proc, journal = _spawn_until(project, '"stage": "nap: started"')
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _wait_for(journal, '"kind": "run_finished"')
    lock = project.host_root("web01") / ".fleetdist" / "lock" / "run"
    assert lock.exists() and lock.read_text().strip() == journal.stem, "given back mid-step"
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert ran(project, "web01") == [], "nothing after the step under way"


def test_a_host_whose_lease_was_taken_while_it_waited_runs_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web01's first step hands web03's lease to another run (as a deploy could once it
    expired); renewing it while web03 waits finds that out: web03 fails as `locked` and
    runs nothing, and the other run's lease is left alone."""
    from fleetdist import runbooks as verb

    real = verb.lock_spec
    monkeypatch.setattr(
        verb, "lock_spec", lambda *a, **k: dataclasses.replace(real(*a, **k), lease=3)
    )
    lock = project.host_root("web03") / ".fleetdist" / "lock"
    steal = f"echo other-run > {lock}/run && echo 9999999999 > {lock}/expires"
    write(
        project,
        "hosts: [web01, web03]\nstrategy: {batch: 1}\nsteps:\n"
        f"  - {{name: steal, exec: {{shell: '{steal}'}}}}\n"
        "  - {name: nap, wait: 2s}\n" + step("work"),
    )
    result = project.run("run", "rb", "-r", "hello", "--json")
    hosts = {h["host"]: h for h in result.json()["hosts"]}
    assert (hosts["web03"]["status"], hosts["web03"]["failed_step"]) == ("locked", "lease")
    assert ran(project, "web03") == [] and ran(project, "web01") == ["work"]
    assert (lock / "run").read_text() == "other-run\n"


def test_a_pause_message_cannot_drive_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message holds param and host var values: their escape sequences are shown, not run."""
    import io
    import sys

    from fleetdist.runbook import kinds
    from fleetdist.runbook.actions import Prompt

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty("\n"))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    done = kinds.prompt(Prompt("drain \x1b[2Jweb01\x07?"), yes=False, host="web01")
    assert done.ok
    shown = capsys.readouterr().err
    assert "\x1b" not in shown and "\x07" not in shown
    assert "drain ?[2Jweb01??" in shown

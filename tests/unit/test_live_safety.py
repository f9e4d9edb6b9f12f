"""Nothing goes live that failed its checks, and rollback undoes exactly what a rollout did.

Issue 11, items 2-7 and 9, on the local fleet: forged facts, recipe env names
that shadow script variables, a controller killed mid-activation, untested
releases, partial rollouts, the hooks' view of a rollback, and an orphaned
host script that still holds the app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from fleetdist.release.command import raw, script
from fleetdist.release.facts import is_release_id
from fleetdist.release.shlib import library

from .conftest import HOSTS, Project

CLI = "from fleetdist.cli import entrypoint; entrypoint()"


def spawn(project: Project, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """The CLI as its own process group (so a test can SIGKILL it mid-run), and its run id."""
    runs = project.root / ".fleetdist" / "runs"
    before = set(runs.glob("*.jsonl"))
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, args[0], "--project", str(project.root), *args[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: set(runs.glob("*.jsonl")) - before, "the run journal")
    [journal] = set(runs.glob("*.jsonl")) - before
    return proc, journal.stem


def wait_for(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- item 2: names on a host never forge a protocol line ------------------------------


def test_a_release_dir_named_like_a_protocol_line_is_not_a_fact(project: Project) -> None:
    v1 = project.deploy("-H", "web01")
    root = project.host_root("web01")
    forged = root / "releases" / "x\n@@unchanged"
    forged.mkdir()
    (forged / ".fleetdist-release").write_text("x\n")
    (root / "current").unlink()
    (root / "current").symlink_to("releases/x\n@@unchanged")
    project.bump("v2")
    result = project.run("deploy", "-H", "web01", "--json")
    assert result.code == 0, result.err + result.out
    [host] = result.json()["hosts"]
    assert host["status"] == "ok", "a forged @@unchanged line made the deploy a no-op"
    assert project.current("web01") == result.json()["release_id"] != v1
    status = project.run("status", "-H", "web01", "--json")
    assert "x\n@@unchanged" not in status.json()["hosts"][0]["releases"]


def test_a_foreign_current_link_is_restored_when_the_new_release_fails(
    project: Project,
) -> None:
    project.deploy("-H", "web01")
    root = project.host_root("web01")
    (root / "elsewhere").mkdir()
    (root / "current").unlink()
    (root / "current").symlink_to("elsewhere")
    project.bump("v2")
    project.write_recipe(healthcheck="false")
    assert project.run("deploy", "-H", "web01").code == 1
    assert os.readlink(root / "current") == "elsewhere", "never left without its `current`"


# -- item 3: recipe env names cannot change the scripts' own variables ------------------


def test_env_names_that_are_script_variables_change_nothing(project: Project) -> None:
    shadow = {n: "x" for n in ("OLD", "ID", "R", "REL", "CUR", "PREV", "A", "SHA", "RUN")}
    project.write_recipe(env={"HELLO_GREETING": "hello", **shadow})
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    for host in HOSTS:
        assert (project.current(host), project.previous(host)) == (v2, v1)
    assert project.run("rollback").code == 0
    for host in HOSTS:
        assert (project.current(host), project.previous(host)) == (v1, v2)


# -- item 4: a flip is pending until confirmed; a dead script's flip is undone ----------


def test_an_unconfirmed_flip_is_reverted_by_the_next_run(project: Project) -> None:
    """The host crashed between the flip and the healthcheck: a pending record remains."""
    v1 = project.deploy("-H", "web01")
    project.bump("v2")
    v2 = project.deploy("-H", "web01")
    root = project.host_root("web01")
    (root / ".fleetdist" / "pending").write_text(f"20990101T000000Z-dead00 deploy {v1} {v2} -\n")
    project.write_recipe(healthcheck="false")  # v2 would not pass its checks now
    result = project.run("deploy", "-H", "web01", "--json")
    assert result.code == 1, "re-checked, not reported unchanged"
    assert project.current("web01") == v1
    assert not (root / ".fleetdist" / "pending").exists()
    actions = [(e["action"], e["result"], e["from"], e["to"]) for e in project.ledger("web01")]
    assert ("recover", "reverted", v2, v1) in actions


def test_controller_killed_during_the_healthcheck(project: Project) -> None:
    """The host script finishes its revert alone; resume re-checks; rollback --run sees it."""
    v1 = project.deploy()
    project.bump("v2")
    flag = project.root / "healthcheck-started"
    project.write_recipe(healthcheck=f"touch {flag}; sleep 2; false")
    proc, run = spawn(project, "deploy", "-H", "web01", "--persist", "0")
    wait_for(flag.exists, "the healthcheck to start")
    os.kill(proc.pid, signal.SIGKILL)  # the controller only: its host script lives on
    proc.wait(timeout=30)
    pending = project.host_root("web01") / ".fleetdist" / "pending"
    # The revert drops the pending record, then writes its ledger line: wait for the last.
    wait_for(
        lambda: [e["result"] for e in project.ledger("web01")][-1:] == ["reverted"],
        "the orphaned script to revert",
        timeout=30,
    )
    assert not pending.exists()
    assert project.current("web01") == v1
    resumed = project.run("deploy", "--resume", run, "--json")
    assert resumed.code == 1, "the release failed its healthcheck: resume must not succeed"
    assert resumed.json()["hosts"][0]["status"] == "reverted"
    undo = project.run("rollback", "--run", run, "--json")
    assert undo.code == 0, undo.err + undo.out
    assert [h["host"] for h in undo.json()["hosts"]] == ["web01"]


def test_host_script_killed_mid_activation_is_recovered(project: Project) -> None:
    """Controller and host script both die (a host crash): the pending flip is undone."""
    v1 = project.deploy("-H", "web01")
    project.bump("v2")
    flag = project.root / "hook-started"
    hang = f"touch {flag}; sleep 30"
    project.write_recipe(hooks={"before_activate": [], "after_activate": [hang]})
    proc, _ = spawn(project, "deploy", "-H", "web01", "--persist", "0")
    wait_for(flag.exists, "the after_activate hook to start")
    v2 = project.current("web01")
    assert v2 != v1, "the flip happened"
    os.killpg(proc.pid, signal.SIGKILL)  # the local host script is in the same group
    proc.wait(timeout=30)
    project.write_recipe(hooks={"before_activate": [], "after_activate": []})
    result = project.run("status", "-H", "web01", "--json")
    assert project.current("web01") == v2, "status is read-only"
    project.bump("v3")
    v3 = project.deploy("-H", "web01")
    assert project.current("web01") == v3
    assert project.previous("web01") == v1, "the unconfirmed v2 never counted as live"
    assert ("recover", "reverted") in [(e["action"], e["result"]) for e in project.ledger("web01")]
    assert result.code == 0


# -- item 5: only tested releases go live ---------------------------------------------


def test_rollback_to_a_release_that_failed_its_tests_is_refused(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    project.write_recipe(test=["false"])
    failed = project.run("deploy", "-H", "web01", "--json")
    assert failed.code == 1
    v2 = failed.json()["release_id"]
    assert v2 in project.releases("web01"), "staged, but it never passed its tests"
    result = project.run("rollback", "-H", "web01", "--to", v2, "--json")
    assert result.code == 1
    assert "has not passed its in-place tests" in result.json()["hosts"][0]["error"]
    assert project.current("web01") == v1
    forced = project.run("rollback", "-H", "web01", "--to", v2, "--allow-untested", "--json")
    assert forced.code == 0, forced.err + forced.out
    assert project.current("web01") == v2


# -- item 6: rollback undoes the last rollout, only on the hosts it moved --------------


def test_rollback_after_a_partial_deploy_leaves_unmoved_hosts_alone(project: Project) -> None:
    project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    project.bump("v3")
    project.write_recipe(test=['test "$FLEETDIST_HOST" != web02'])
    partial = project.run("deploy", "--json")
    assert partial.code == 1
    v3 = partial.json()["release_id"]
    assert [project.current(h) for h in HOSTS] == [v3, v2, v3]
    result = project.run("rollback", "--json")
    assert result.code == 0, result.err + result.out
    assert [h["host"] for h in result.json()["hosts"]] == ["web01", "web03"]
    assert [project.current(h) for h in HOSTS] == [v2, v2, v2]
    assert [e["action"] for e in project.ledger("web02")][-1] == "deploy", "web02 untouched"
    step = project.run("rollback", "-H", "web02", "--step-back", "--json")
    assert step.code == 0, step.err + step.out
    assert project.current("web02") != v2, "--step-back still moves one host one release back"


def test_rollback_with_no_recorded_rollout_says_what_to_do(project: Project) -> None:
    result = project.run("rollback", "--json")
    assert result.code == 2
    assert "--to ID" in result.err and "--step-back" in result.err


# -- item 7: hooks know what is being activated ---------------------------------------


def test_hooks_see_the_release_the_one_it_replaces_and_the_action(project: Project) -> None:
    seen = project.root / "seen.txt"
    hook = f'echo "$FLEETDIST_ACTION $FLEETDIST_RELEASE $FLEETDIST_PREVIOUS_RELEASE" >> {seen}'
    project.write_recipe(hooks={"before_activate": [], "after_activate": [hook]})
    v1 = project.deploy("-H", "web01")
    project.bump("v2")
    v2 = project.deploy("-H", "web01")
    assert project.run("rollback").code == 0
    assert seen.read_text().splitlines() == [
        f"deploy {v1} ",
        f"deploy {v2} {v1}",
        f"rollback {v1} {v2}",
    ]


# -- item 9: an orphaned host script keeps the app until it is done -------------------


def test_resume_waits_for_the_killed_runs_host_script(project: Project) -> None:
    project.deploy()
    project.bump("v2")
    flag = project.root / "test-started"
    project.write_recipe(test=[f"touch {flag}; sleep 3"])
    proc, run = spawn(project, "deploy", "-H", "web01", "--persist", "0")
    wait_for(flag.exists, "the in-place test to start")
    os.kill(proc.pid, signal.SIGKILL)  # the controller only: its host scripts live on
    proc.wait(timeout=30)
    other = project.run("deploy", "-H", "web01", "--json")
    assert other.code == 4, "another run must not race the orphaned script"
    assert "still running here" in other.json()["hosts"][0]["error"]
    resumed = project.run("deploy", "--resume", run, "--json")
    assert resumed.code == 0, resumed.err + resumed.out
    v2 = resumed.json()["release_id"]
    assert project.current("web01") == v2
    assert not list((project.host_root("web01") / ".fleetdist" / "staging").iterdir())


def test_the_host_and_the_controller_share_one_release_id_grammar() -> None:
    """`is_id` in sh/lib.sh filters what a host prints; config.names checks what enters."""
    samples = ["1.0.0-abc", "a", "A+b_c-1.2", "", ".x", "-x", "a..b", "a/b", "a b", "x\n@@u"]
    samples += ["é", "a" * 128, "a" * 129, "$(id)", "a'b", "1.0~rc1"]
    body = 'for v in "$@"; do if is_id "$v"; then echo 1; else echo 0; fi; done'
    text = script([library(), raw(body)]).text
    done = subprocess.run(
        ["sh", "-c", text, "sh", *samples], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["1" if is_release_id(v) else "0" for v in samples]

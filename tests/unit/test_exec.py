"""`fleetdist exec`: one command on each host of the local fleet, quoted at one point.

Each host is a directory here; the command runs with it as the working
directory, so a `$(touch PWNED)` that escaped its quotes would leave a file
in the host's directory (or the test's), which the tests look for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetdist.errors import UsageError
from fleetdist.orchestrate.adhoc import command_of
from fleetdist.release.command import cmd

from .conftest import HOSTS, Project

HOSTILE = ["a b", "it's", '"dq"', "$(touch PWNED)", "`touch PWNED`", "-n", "$HOME", "*", ""]


def pwned(project: Project) -> list[Path]:
    return [*project.fleet.rglob("PWNED"), *Path.cwd().rglob("PWNED")]


def test_every_word_arrives_as_written_and_nothing_is_expanded(project: Project) -> None:
    result = project.run("exec", "--json", "--", "printf", "[%s]\\n", *HOSTILE)
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["version"] == 1 and doc["exit_code"] == 0 and doc["action"] == "exec"
    expected = "".join(f"[{word}]\n" for word in HOSTILE)
    assert [(h["host"], h["status"], h["exit_code"], h["stdout"]) for h in doc["hosts"]] == [
        (host, "ok", 0, expected) for host in HOSTS
    ]
    assert doc["command"] == cmd("printf", "[%s]\\n", *HOSTILE).shown
    assert not pwned(project)


def test_a_leading_dash_is_an_argument_never_an_option_of_the_shell(project: Project) -> None:
    """`sh -c -n` takes -n as its own option (sshd runs `$SHELL -c COMMAND`): refused."""
    for argv in (["--", "-n"], ["--", " -c", "id"], ["--shell", "--", "-x"]):
        result = project.run("exec", "-H", "web01", *argv)
        assert result.code == 2, argv
        assert "exec: the command must not start with '-'" in result.err
    result = project.run("exec", "-H", "web01", "--", "ls", "--", "-n")
    assert result.code == 1 and "web01 | ls: cannot access '-n'" in result.err


def test_shell_passes_one_string_to_sh(project: Project) -> None:
    result = project.run("exec", "-H", "web01", "--shell", "--", "echo $((6*7)) | tr 4 X")
    assert result.code == 0, result.err
    assert result.out == "web01 | X2\n"


def test_output_streams_prefixed_stdout_to_stdout_stderr_to_stderr(project: Project) -> None:
    result = project.run("exec", "-H", "web0[1-2]", "--", "sh", "-c", "echo out; echo err >&2")
    assert result.code == 0
    assert sorted(result.out.splitlines()) == ["web01 | out", "web02 | out"]
    assert "web01 | err" in result.err and "web02 | err" in result.err
    assert "exec sh -c" in result.err, "the recap goes to stderr"


def test_host_text_is_data_not_markup_nor_terminal_control(project: Project) -> None:
    result = project.run("exec", "-H", "web01", "--", "printf", "[bold]x[/bold] \033[2J\\n")
    assert result.out == "web01 | [bold]x[/bold] ?[2J\n"


def test_exit_codes_and_json_per_host(project: Project) -> None:
    script = 'test "$(basename "$PWD")" != web02 || { echo bad >&2; exit 7; }'
    result = project.run("exec", "--json", "--shell", "--", script)
    assert result.code == 1
    doc = result.json()
    by_host = {h["host"]: h for h in doc["hosts"]}
    assert by_host["web02"]["exit_code"] == 7 and by_host["web02"]["stderr"] == "bad\n"
    assert by_host["web02"]["status"] == "failed"
    assert [by_host[h]["exit_code"] for h in ("web01", "web03")] == [0, 0]
    assert "web02 | bad" in result.err, "with --json, host lines go to stderr"


def test_an_unreachable_host_exits_5(project: Project) -> None:
    (project.fleet / "web02").parent.mkdir(parents=True, exist_ok=True)
    (project.fleet / "web02").write_text("a file where the host's root should be")
    result = project.run("exec", "--json", "--", "true")
    assert result.code == 5
    statuses = {h["host"]: h["status"] for h in result.json()["hosts"]}
    assert statuses == {"web01": "ok", "web02": "unreachable", "web03": "ok"}


def test_batches_run_in_order_and_the_budget_stops_later_ones(project: Project) -> None:
    script = 'date +%s%N > when; test "$(basename "$PWD")" != web01'
    result = project.run(
        "exec", "--json", "--canary", "1", "--batch", "1", "--max-fail", "0", "--shell", "--",
        script,
    )  # fmt: skip
    assert result.code == 3
    doc = result.json()
    assert doc["aborted"] == "1 host(s) failed, more than --max-fail 0"
    assert [h["status"] for h in doc["hosts"]] == ["failed", "skipped", "skipped"]
    assert not (project.fleet / "web02" / "when").exists()

    result = project.run("exec", "--json", "--batch", "1", "--shell", "--", script)
    assert result.code == 1, "no budget: every batch runs"
    times = [int((project.fleet / h / "when").read_text()) for h in HOSTS]
    assert times == sorted(times), "one batch after another"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "exec: give the command after --"),
        (["--shell", "--", "a", "b"], "--shell: pass one shell string"),
        (["--shell", "--", " "], "exec: the command is empty"),
        (["--batch", "0", "--", "true"], "--batch: '0' is not a positive count"),
        (["-H", "nope", "--", "true"], "nope not in inventory"),
    ],
)
def test_usage_errors_exit_2_before_any_host(
    project: Project, argv: list[str], message: str
) -> None:
    result = project.run("exec", "--json", *argv)
    assert result.code == 2
    assert message in result.json()["error"]["message"]
    assert not project.fleet.exists()


def test_command_of_quotes_argv_and_keeps_shell_strings_whole() -> None:
    assert command_of(["ls", "-l", "a b"]).text == "ls -l 'a b'"
    assert command_of(["a | b"], shell=True).text == "sh -c 'a | b'"
    with pytest.raises(UsageError):
        command_of([])


def test_json_after_double_dash_is_the_commands_not_ours(project: Project) -> None:
    result = project.run("exec", "-H", "web01", "--", "echo", "--json")
    assert result.code == 0
    assert result.out == "web01 | --json\n"
    assert not result.out.startswith("{")
    json.dumps(result.out)


def test_fab_exec_splits_its_string_like_a_shell_and_quotes_each_word(project: Project) -> None:
    from .test_doors import fab

    proc = fab(project, "-H", "web0[1-2]", "exec", "printf '[%s]\\n' 'a b' '$(touch PWNED)'")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "web01 | [$(touch PWNED)]",
        "web01 | [a b]",
        "web02 | [$(touch PWNED)]",
        "web02 | [a b]",
    ]
    assert not pwned(project)
    proc = fab(project, "-H", "web01", "exec", "--shell", "--json", "echo $((6*7)); exit 4")
    assert proc.returncode == 1
    [host] = json.loads(proc.stdout)["hosts"]
    assert (host["stdout"], host["exit_code"]) == ("42\n", 4)
    proc = fab(project, "exec", "echo 'unclosed")
    assert proc.returncode == 2
    assert proc.stderr.startswith('fleetdist: error: exec: "echo \'unclosed": No closing')

"""Rendered host commands (quoting, secret masking) and the ledger line format."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from fleetdist.release.command import (
    MASK,
    Sh,
    assign,
    cmd,
    export,
    fail,
    raw,
    script,
    user_shell,
)
from fleetdist.release.layout import ReleaseLayout, host_root
from fleetdist.release.lease import LockSpec
from fleetdist.release.steps import (
    Context,
    Ledgers,
    Upload,
    activate,
    finish,
    prepare,
    probe,
)
from fleetdist.report import ledger

LEDGERS = Ledgers(*[("{", ",", "}")] * 3)


def run_sh(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)


# -- command.py ---------------------------------------------------------------


def test_cmd_quotes_every_word() -> None:
    sh = cmd("rm", "-rf", "--", "/srv/my app/it's")
    assert sh.text == "rm -rf -- '/srv/my app/it'\"'\"'s'"
    assert sh.shown == sh.text


def test_cmd_hostile_words() -> None:
    assert cmd("echo", "$(id)", "`id`", "-n").text == "echo '$(id)' '`id`' -n"
    assert cmd("echo", "").text == "echo ''"


def test_cmd_masks_secrets_only_in_shown() -> None:
    sh = cmd("curl", "-H", "token: hunter2", "https://x", secret=["token: hunter2"])
    assert sh.shown == f"curl -H {MASK} https://x"
    assert "hunter2" not in sh.shown
    assert sh.text == "curl -H 'token: hunter2' https://x"


def test_assign_and_export_mask_secret_values() -> None:
    a = assign("TOKEN", "p@ss word", secret=True)
    assert a.text == "TOKEN='p@ss word'"
    assert a.shown == "TOKEN=***"
    e = export("TOKEN", "p@ss word", secret=True)
    assert e.text == 'export TOKEN="$FLEETDIST_SECRET_TOKEN"'  # read from stdin: see script()
    assert e.shown == "export TOKEN=***"
    assert e.secrets == (("TOKEN", "p@ss word"),)
    plain = export("HOME_DIR", "/srv/x y")
    assert plain.text == plain.shown == "export HOME_DIR='/srv/x y'"
    assert plain.secrets == ()


SECRETS = ["p@ss word", "a\\b\\nc", "two\nlines\n", " lead and trail ", "%s %b \\c $(id) '\"", ""]


def test_script_reads_secret_values_from_stdin_only() -> None:
    """No value in the text (a process's argv is public on the host); each arrives intact."""
    parts = [export(f"S{i}", v, secret=True) for i, v in enumerate(SECRETS)]
    parts += [export("S0", SECRETS[0], secret=True), export("PLAIN", "x")]  # twice: read once
    show = "".join(f'printf "[%s]" "$S{i}"; ' for i in range(len(SECRETS)))
    s = script([*parts, raw(f'{show}sh -c \'printf "[%s]" "$S2"\'')])
    for value in filter(None, SECRETS):
        assert value not in s.text and value not in s.shown
    done = subprocess.run(["sh", "-c", s.text], input=s.stdin_head, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "".join(f"[{v}]" for v in SECRETS) + f"[{SECRETS[2]}]"


def test_script_without_its_secrets_on_stdin_stops_first(tmp_path: Path) -> None:
    s = script([export("TOKEN", "v", secret=True), raw("touch ran")])
    done = subprocess.run(["sh", "-c", s.text], input=b"", capture_output=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == b"secret TOKEN did not arrive on stdin\n"
    assert not (tmp_path / "ran").exists()


def test_script_refuses_one_secret_with_two_values() -> None:
    with pytest.raises(ValueError, match="secret S exported with two values"):
        script([export("S", "a", secret=True), export("S", "b", secret=True)])


@pytest.mark.parametrize("name", ["1A", "A-B", "A B", "$(x)", ""])
def test_assign_refuses_non_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="not a shell variable name"):
        assign(name, "x")


def test_composition_helpers() -> None:
    a, b = cmd("true"), cmd("echo", "x y")
    assert a.and_then(b).text == "true && echo 'x y'"
    assert a.or_else(b).text == "true || echo 'x y'"
    assert b.append_to('"$R/log"').text == "echo 'x y' >> \"$R/log\""
    secret = assign("S", "v", secret=True)
    both = secret.and_then(b)
    assert both.text == "S=v && echo 'x y'" and both.shown == "S=*** && echo 'x y'"
    hidden = export("S", "v", secret=True)
    assert hidden.and_then(b).or_else(hidden).append_to("f").secrets == (("S", "v"),) * 2


def test_script_stops_at_first_failure() -> None:
    s = script([cmd("echo", "one"), raw("false"), cmd("echo", "two")])
    assert s.text.splitlines()[0] == "set -eu"
    result = run_sh(s.text)
    assert result.stdout == "one\n" and result.returncode == 1


def test_fail_reports_and_exits() -> None:
    s = script([cmd("false").or_else(fail("step %s failed", "it's $(x)", code=7))])
    result = run_sh(s.text)
    assert result.returncode == 7
    assert result.stderr == "step it's $(x) failed\n"


def test_user_shell_runs_under_sh_c() -> None:
    sh = user_shell("echo \"$0\" 'a b' | tr a A")
    assert sh.text.startswith("sh -c ")
    assert run_sh(sh.text).stdout == "sh A b\n"


def test_secret_masked_in_rendered_steps_and_sent_on_stdin() -> None:
    ctx = Context(
        layout=ReleaseLayout("/srv/app"),
        app="app",
        release_id="1-abc",
        env=(("PUBLIC", "visible"), ("API_TOKEN", "hunter2")),
        secret_env=frozenset({"API_TOKEN"}),
        test=("true",),
        healthcheck="true",
    )
    lock = LockSpec("run-1", "me")
    for sh in (
        prepare(
            ctx,
            lock,
            Upload("/srv/app/.fleetdist/incoming/1-abc.tar.gz", "ab", "tar.gz"),
            ledgers=LEDGERS,
        ),
        activate(ctx, lock, "1-abc", ledger_ok=("{", ",", "}"), ledger_reverted=("{", ",", "}")),
    ):
        assert "export API_TOKEN=***" in sh.shown and "hunter2" not in sh.shown
        assert "hunter2" not in sh.text and "hunter2" not in repr(sh)
        assert sh.stdin_head == b"hunter2\n"
        assert "export PUBLIC=visible" in sh.shown


def test_steps_assign_hostile_values_once_and_quote_them() -> None:
    root = "/srv/-rf x/$(touch PWNED)"
    ctx = Context(layout=ReleaseLayout(root), app="app", release_id="1 $(id) 'x")
    upload = Upload("/tmp/in coming.tar.gz", "abc", "tar.gz")
    sh = prepare(ctx, LockSpec("r", "me"), upload, ledgers=LEDGERS)
    assert "R='/srv/-rf x/$(touch PWNED)'" in sh.text
    assert "ID='1 $(id) '\"'\"'x'" in sh.text
    # every occurrence sits inside a single-quoted assignment, never bare
    hits = [line for line in sh.text.splitlines() if "$(touch PWNED)" in line]
    assert len(hits) >= 2
    assert all(re.fullmatch(r"(export )?[A-Z_]+='[^']*'", line) for line in hits), hits
    assert "A='/tmp/in coming.tar.gz'" in sh.text


def test_probe_is_read_only_without_a_lock() -> None:
    sh = probe(ReleaseLayout("/srv/app")).text
    calls = sh.rpartition("}")[2]  # what runs after the library's definitions
    assert calls.strip() == "facts"


def test_host_root_joins_local_root() -> None:
    assert host_root("/srv/apps/hello", None) == "/srv/apps/hello"
    assert host_root("/srv/apps/hello/", "/tmp/fleet/web01") == "/tmp/fleet/web01/srv/apps/hello"
    assert host_root("/srv//a/../b", None) == "/srv/b"


def test_layout_paths() -> None:
    layout = ReleaseLayout("/srv/app")
    assert layout.incoming("a.tar.gz") == "/srv/app/.fleetdist/incoming/a.tar.gz"


# -- ledger.py ----------------------------------------------------------------


def test_ledger_record_is_one_compact_sorted_json_line() -> None:
    line = ledger.record(
        "deploy",
        app="hello",
        env="prod",
        run="R1",
        from_release=None,
        to_release="1.0-abc",
        result="ok",
        who="alice@ops",
    )
    assert "\n" not in line and ": " not in line and ", " not in line
    data = json.loads(line)
    assert list(data) == sorted(data)
    assert data == {
        "time": data["time"],
        "operator": "alice@ops",
        "action": "deploy",
        "app": "hello",
        "env": "prod",
        "run": "R1",
        "from": None,
        "to": "1.0-abc",
        "result": "ok",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", data["time"])


def test_ledger_record_failure_fields() -> None:
    line = ledger.record(
        "rollback",
        app="a",
        env="dev",
        run="R",
        from_release="2",
        to_release="1",
        result="failed",
        who="w",
        step="activate",
        error='host web01: it\'s "broken"\nsecond line',
    )
    data = json.loads(line)
    assert (data["step"], data["error"]) == ("activate", 'host web01: it\'s "broken"\nsecond line')
    assert "\n" not in line


def test_ledger_record_omits_empty_step_and_error() -> None:
    line = ledger.record(
        "deploy", app="a", env="e", run="r", from_release=None, to_release=None,
        result="ok", who="w", step="", error="",
    )  # fmt: skip
    assert "step" not in json.loads(line) and "error" not in json.loads(line)


def test_ledger_parse_skips_torn_and_foreign_lines() -> None:
    good = ledger.record(
        "deploy", app="a", env="e", run="r", from_release=None, to_release="1",
        result="ok", who="w",
    )  # fmt: skip
    text = "\n".join([good, '{"torn": ', "[1, 2]", "", "plain text", good + "\n"])
    entries = ledger.parse(text)
    assert entries == [json.loads(good), json.loads(good)]
    assert ledger.parse("") == []


def test_ledger_parse_keeps_unknown_fields() -> None:
    assert ledger.parse('{"action":"deploy","future":42}') == [{"action": "deploy", "future": 42}]


def test_ledger_line_appended_by_rendered_command(tmp_path: Path) -> None:
    """The host appends the exact line, even with quotes and `$` in it."""
    root = tmp_path / "it's $(x)"
    (root / ".fleetdist").mkdir(parents=True)
    line = ledger.record(
        "deploy", app="a", env="e", run="r", from_release="$(touch PWNED)", to_release="'1'",
        result="ok", who="%s %d \\n",
    )  # fmt: skip
    for _ in range(2):
        result = run_sh(finish(ReleaseLayout(str(root)), None, [line]).text)
        assert result.returncode == 0, result.stderr
    assert (root / ".fleetdist" / "ledger.jsonl").read_text() == f"{line}\n{line}\n"
    assert not list(tmp_path.rglob("PWNED"))


def test_operator_defaults_to_user_at_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETDIST_OPERATOR", raising=False)
    assert re.fullmatch(r"[^@]+@.+", ledger.operator())
    monkeypatch.setenv("FLEETDIST_OPERATOR", "ci-bot")
    assert ledger.operator() == "ci-bot"


def test_sh_is_frozen() -> None:
    sh = Sh("a", "b")
    with pytest.raises(AttributeError):
        sh.text = "c"  # type: ignore[misc]

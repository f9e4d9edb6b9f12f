"""One grammar for release ids, checked wherever an id enters (issue 11, item 2).

A release id becomes a directory on every host: an empty one made a deploy
`rm -rf` every release, `../../x` reached outside the root, and a newline or
`@@unchanged` was taken for protocol.  Each entry point (recipe version,
`<file>.meta.json`, `rollback --to`, the run journal) refuses them with exit 2
and one line naming the file or flag and the field, before any host is touched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleetdist.config.names import check_release_id
from fleetdist.errors import ConfigError

from .conftest import HOSTS, Project

BAD_IDS = ["", "../../x", "1.0\nx", "@@unchanged"]
BAD_ID_NAMES = ["empty", "climbs", "newline", "protocol"]


def one_error_line(result: Any) -> str:
    """The single error line of a refused command (build log lines may come before it)."""
    assert result.code == 2, result.err + result.out
    last: str = result.err.rstrip("\n").splitlines()[-1]
    assert last.startswith("fleetdist: error: "), result.err
    return last


def snapshot(project: Project) -> dict[str, Any]:
    """What a refused command must leave as it was: every host and the run journals."""
    runs = project.root / ".fleetdist" / "runs"
    return {
        "hosts": {h: (project.current(h), project.releases(h), project.ledger(h)) for h in HOSTS},
        "runs": sorted(p.name for p in runs.iterdir()) if runs.is_dir() else [],
    }


@pytest.mark.parametrize("value", ["1.0.0-0123456789", "2024.1+build.7-abcdef0123", "v1_rc-1"])
def test_release_id_grammar_accepts_plain_ids(value: str) -> None:
    assert check_release_id(value, "x") == value


@pytest.mark.parametrize(
    "value", [*BAD_IDS, ".", "..", "-rf", "a/b", "a..b", "a b", "x" * 129, "é", "a\x7f"]
)
def test_release_id_grammar_refuses(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^where: .* cannot be a release id"):
        check_release_id(value, "where")


# -- recipe version ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "../../x", "1.0\n", "@@unchanged", "{HELLO_VERSION}/x"])
def test_recipe_version_is_checked_before_anything(project: Project, value: str) -> None:
    project.write_recipe(version=value)
    line = one_error_line(project.run("deploy"))
    assert f"{project.recipe_path}: version: " in line
    assert not project.fleet.exists()


@pytest.mark.parametrize("value", ["../x", "a b", "@@unchanged"])
def test_a_variable_in_the_version_is_checked_once_resolved(
    project: Project, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HELLO_VERSION", value)
    line = one_error_line(project.run("deploy"))
    assert f"{project.recipe_path}: version: {value!r} cannot be a release id" in line
    assert not project.fleet.exists()


# -- <file>.meta.json --------------------------------------------------------------


@pytest.fixture
def built(project: Project) -> Path:
    """A tar.gz built by `fleetdist build`, with its `.meta.json` beside it."""
    result = project.run("build", "--json", "--formats", "tar.gz")
    assert result.code == 0, result.err
    return Path(result.json()["artifacts"][0]["path"])


def edit_meta(artifact: Path, **changes: object) -> Path:
    meta = artifact.with_name(artifact.name + ".meta.json")
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, **changes}))
    return meta


@pytest.mark.parametrize("value", BAD_IDS, ids=BAD_ID_NAMES)
@pytest.mark.parametrize("verb", ["deploy", "plan"])
def test_meta_json_release_id_is_refused(
    project: Project, built: Path, verb: str, value: str
) -> None:
    meta = edit_meta(built, release_id=value)
    line = one_error_line(project.run(verb, "--artifact", str(built)))
    assert f"{meta}: release_id: {value!r} cannot be a release id" in line
    assert not project.fleet.exists(), "no host may be touched"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("version", "../../x", "'../../x' cannot be a release id"),
        ("version", 1.1, "1.1 cannot be a release id"),
        ("app", "../hello", "use lowercase letters"),
        ("format", "tar.gz; rm -rf /", "'tar.gz; rm -rf /' is not a known format"),
        ("release_id", None, "missing"),
    ],
)
def test_meta_json_fields_are_checked(
    project: Project, built: Path, field: str, value: object, reason: str
) -> None:
    meta = edit_meta(built, **{field: value})
    line = one_error_line(project.run("deploy", "--artifact", str(built)))
    assert f"{meta}: {field}: {reason}" in line
    assert not project.fleet.exists()


def test_meta_json_that_is_not_an_object_is_refused(project: Project, built: Path) -> None:
    meta = built.with_name(built.name + ".meta.json")
    meta.write_text("[1, 2]")
    line = one_error_line(project.run("deploy", "--artifact", str(built)))
    assert f"{meta}: expected a JSON object" in line


def test_untouched_meta_json_still_deploys(project: Project, built: Path) -> None:
    result = project.run("deploy", "--json", "--artifact", str(built))
    assert result.code == 0, result.err
    assert {project.current(h) for h in HOSTS} == {result.json()["release_id"]}


# -- rollback --to -----------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_IDS, ids=BAD_ID_NAMES)
def test_rollback_to_a_bad_id_is_refused(project: Project, value: str) -> None:
    project.deploy()
    project.bump("v2")
    project.deploy()
    before = snapshot(project)
    line = one_error_line(project.run("rollback", "--to", value))
    assert f"--to: {value!r} cannot be a release id" in line
    assert snapshot(project) == before


# -- the run journal ---------------------------------------------------------------


def two_deploys(project: Project) -> tuple[str, Path]:
    """Deploy twice; the second run's id and journal (its hosts had a `current`)."""
    project.deploy()
    project.bump("v2")
    result = project.run("deploy", "--json")
    assert result.code == 0, result.err
    run_id: str = result.json()["run_id"]
    return run_id, project.root / ".fleetdist" / "runs" / f"{run_id}.jsonl"


def rewrite(journal: Path, match: Any, change: Any) -> int:
    """Apply `change` to the first journal line `match` accepts; its 1-based line number."""
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    number = next(i for i, line in enumerate(lines) if match(line))
    change(lines[number])
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return number + 1


@pytest.mark.parametrize("value", BAD_IDS, ids=BAD_ID_NAMES)
def test_rollback_run_refuses_a_journal_with_a_bad_release_id(project: Project, value: str) -> None:
    run_id, journal = two_deploys(project)
    number = rewrite(
        journal,
        lambda e: e.get("stage") == "probed" and e.get("host") == "web01",
        lambda e: e["data"].update(current=value),
    )
    before = snapshot(project)
    line = one_error_line(project.run("rollback", "--run", run_id))
    assert f"{journal}:{number}: data.current: {value!r} cannot be a release id" in line
    assert snapshot(project) == before


@pytest.mark.parametrize("value", ["../../x", "web01\nweb02", "-oProxyCommand=x", ""])
def test_rollback_run_refuses_a_journal_with_a_bad_host_name(project: Project, value: str) -> None:
    run_id, journal = two_deploys(project)
    number = rewrite(
        journal,
        lambda e: e.get("stage") == "activated",
        lambda e: e.update(host=value),
    )
    before = snapshot(project)
    line = one_error_line(project.run("rollback", "--run", run_id))
    assert f"{journal}:{number}: host: {value!r} is not a valid host name" in line
    assert snapshot(project) == before


def test_resume_refuses_a_journal_header_with_bad_ids(project: Project) -> None:
    run_id, journal = two_deploys(project)
    rewrite(journal, lambda e: e["kind"] == "run", lambda e: e.update(hosts=["web01", "../x"]))
    line = one_error_line(project.run("deploy", "--resume", run_id))
    assert f"{journal}:1: hosts: '../x' is not a valid host name" in line
    rewrite(
        journal,
        lambda e: e["kind"] == "run",
        lambda e: e.update(hosts=["web01"], release_id="@@unchanged"),
    )
    line = one_error_line(project.run("deploy", "--resume", run_id))
    assert f"{journal}:1: release_id: '@@unchanged' cannot be a release id" in line


def test_plain_rollback_refuses_a_last_run_with_bad_hosts(project: Project) -> None:
    """Without -H a rollback takes the last deploy's hosts from its journal header."""
    _, journal = two_deploys(project)
    rewrite(journal, lambda e: e["kind"] == "run", lambda e: e.update(hosts=["web01\n"]))
    before = snapshot(project)
    line = one_error_line(project.run("rollback"))
    assert f"{journal}:1: host" in line and "is not a valid host name" in line
    assert snapshot(project) == before


@pytest.mark.parametrize("value", ["../runs/x", "", "a\nb"])
def test_run_flag_takes_only_run_ids(project: Project, value: str) -> None:
    line = one_error_line(project.run("rollback", "--run", value))
    assert f"--run: {value!r} is not a run id" in line


def test_an_untouched_journal_still_rolls_back(project: Project) -> None:
    run_id, _ = two_deploys(project)
    first = project.current("web01")
    result = project.run("rollback", "--run", run_id)
    assert result.code == 0, result.err
    assert project.current("web01") != first

"""Pipelines: `order`, the global pipeline for every target, scripts, failures.

Each is a distman 0.8.4 bug listed in issue 12 (see test_distman_fixes.py).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from .distman_repo import commit, env, fleetdist, small_repo, target, write

__all__ = ["env"]  # the fixture


def test_order_key_orders_the_pipeline(env, tmp_path, capsys) -> None:
    steps = {
        "second": {"script": "sed -e 's/$/ 2/' {input} > {output}", "order": 20},
        "first": {"script": "sed -e 's/$/ 1/' {input} > {output}", "order": 10},
    }
    repo = small_repo(tmp_path / "r", {"a": target("a.txt", "etc/a", pipeline=steps)})
    write(repo / "a.txt", "x\n")
    commit(repo, "one")
    done = fleetdist(repo, "-y", capsys=capsys)  # distman: ValidationError traceback
    assert done.code == 0, done.err
    assert (env / "etc" / "a").read_text() == "x 1 2\n"


def test_script_keeps_literal_braces(env, tmp_path, capsys) -> None:
    steps = {"awk": {"script": "awk '{print \"<\" $0}' {input} > {output}"}}
    repo = small_repo(tmp_path / "r", {"a": target("a.txt", "etc/a", pipeline=steps)})
    write(repo / "a.txt", "x\n")
    commit(repo, "one")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    assert (env / "etc" / "a").read_text() == "<x\n"


def test_global_pipeline_applies_to_every_target(env, tmp_path, capsys, monkeypatch) -> None:
    pipeline = {
        "tok": {"func": "distman.transform.replace_tokens", "options": {"tokens": {"@E@": "{ENV}"}}}
    }
    targets = {"own": target("a.txt", "etc/own", pipeline={}), "none": target("a.txt", "etc/none")}
    repo = small_repo(tmp_path / "r", targets, pipeline=pipeline)
    write(repo / "a.txt", "env=@E@\n")
    commit(repo, "one")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    assert (env / "etc" / "own").read_text() == "env=dev\n"
    assert (env / "etc" / "none").read_text() == "env=dev\n"  # distman: left as @E@


def test_compat_switch_keeps_distmans_global_pipeline_rule(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLEETDIST_DIST_COMPAT_PIPELINE", "1")
    pipeline = {
        "tok": {
            "func": "fleetdist.distman.transforms.replace_tokens",
            "options": {"tokens": {"@E@": "{ENV}"}},
        }
    }
    targets = {"own": target("a.txt", "etc/own", pipeline={}), "none": target("a.txt", "etc/none")}
    repo = small_repo(tmp_path / "r", targets, pipeline=pipeline)
    write(repo / "a.txt", "env=@E@\n")
    commit(repo, "one")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    assert (env / "etc" / "own").read_text() == "env=dev\n"
    assert (env / "etc" / "none").read_text() == "env=@E@\n"


def test_a_failing_pipeline_moves_no_link(env, tmp_path, capsys) -> None:
    """distman: earlier targets deployed, `.NAME.dist` written, then a traceback."""
    targets = {
        "a": target("a.txt", "etc/a", pipeline={}),
        "b": target("a.txt", "etc/b", pipeline={"bad": {"script": "exit 3"}}),
    }
    repo = small_repo(tmp_path / "r", targets)
    write(repo / "a.txt", "1\n")
    commit(repo, "one")
    assert fleetdist(repo, "-y", "-t", "a", capsys=capsys).code == 0
    write(repo / "a.txt", "2\n")
    commit(repo, "two")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1 and "pipeline step 'bad' failed with exit code 3" in done.err
    assert (env / "etc" / "a").read_text() == "1\n"
    assert sorted(os.listdir(env / "etc" / "versions")) == [os.readlink(env / "etc" / "a")[9:]]
    assert not (env / "etc" / ".b.dist").exists()


def test_unresolvable_token_value_is_refused_before_writing(env, tmp_path, capsys) -> None:
    tokens = {"func": "distman.transform.replace_tokens", "options": {"tokens": {"X": "{NOPE}"}}}
    targets = {"a": target("a.txt", "etc/a"), "b": target("a.txt", "etc/b", pipeline={"t": tokens})}
    repo = small_repo(tmp_path / "r", targets)
    write(repo / "a.txt", "X\n")
    commit(repo, "one")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1 and "Cannot resolve token: NOPE in pipeline step 't'" in done.err
    assert not env.exists()


def test_minify_js_without_jsmin_is_one_line(env, tmp_path, capsys) -> None:
    if importlib.util.find_spec("jsmin") is not None:
        pytest.skip("jsmin is installed: the step would succeed")
    steps = {"min": {"func": "distman.transform.minify"}}
    repo = small_repo(tmp_path / "r", {"a": target("a.js", "web/a.js", pipeline=steps)})
    write(repo / "a.js", "var  x = 1;\n")
    commit(repo, "one")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1 and "minify: needs the jsmin package" in done.err
    assert not (env / "web" / "a.js").exists()

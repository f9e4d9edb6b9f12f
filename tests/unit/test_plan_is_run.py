"""A dry run prints exactly the steps a deploy then sends (issue 10: plan = run)."""

from __future__ import annotations

import re

import pytest

from fleetdist import api
from fleetdist.config.project import Project as FleetProject
from fleetdist.release.steps import Step
from fleetdist.report.events import Event

from .conftest import HOSTS, Project


def normalised(text: str, run_id: str) -> str:
    """The two runs differ only in their run id and the ledger lines' render time."""
    text = text.replace(run_id, api.DRY_RUN)
    return re.sub(r'\\?"time\\?":\\?"[^"\\]+\\?"', '"time":"T"', text)


def test_a_dry_run_prints_the_steps_a_deploy_sends(project: Project) -> None:
    project.write_recipe(keep=2)
    for tag in ("v1", "v2", "v3"):
        project.bump(tag)
        project.deploy()
    project.bump("v4")
    assert project.run("build").code == 0
    sel = api.Selection(FleetProject(project.root))
    opts = api.DeployOptions.parse(batch="1")

    planned = {
        h["host"]: [(s["name"], s["script"]) for s in h["steps"]] for h in api.plan(sel, opts)
    }

    sent: dict[str, list[Step]] = {}

    def collect(event: Event) -> None:
        if event.kind == "step" and event.host:
            step = event.data["step"]
            assert isinstance(step, Step)
            sent.setdefault(event.host, []).append(step)

    fleet = api.deploy(sel, opts, collect)
    assert fleet.exit_code() == 0
    ran = {
        host: [(s.name, normalised(s.render(), fleet.run_id)) for s in steps]
        for host, steps in sent.items()
    }
    assert set(planned) == set(ran) == set(HOSTS)
    for host in HOSTS:
        assert [name for name, _ in ran[host]] == ["prepare", "activate"]
        plan_texts = [(n, normalised(t, fleet.run_id)) for n, t in planned[host]]
        assert plan_texts == ran[host], host
        activate = dict(ran[host])["activate"]
        assert re.search(r"^PRUNE='?[0-9][^ \n]+'?$", activate, re.M), "the plan shows the prune"


def test_a_dry_run_checks_the_flags_a_deploy_checks(project: Project) -> None:
    for flags in (("--batch", "abc"), ("--max-fail", "x"), ("--canary", "-1")):
        dry = project.run("deploy", "--dry-run", *flags)
        real = project.run("deploy", *flags)
        assert dry.code == real.code == 2, flags
        assert dry.err == real.err
    assert not project.fleet.exists()


def test_a_dry_run_writes_nothing(project: Project) -> None:
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    assert project.run("plan", "--json").code == 0
    assert sorted(p.relative_to(project.root) for p in project.root.rglob("*")) == before
    assert not project.fleet.exists()


@pytest.mark.parametrize("verb", ["status", "history"])
def test_looking_at_a_fresh_local_fleet_leaves_no_trace(project: Project, verb: str) -> None:
    assert project.run(verb).code == 0
    assert not project.fleet.exists()


def test_one_module_knows_every_stage_marker() -> None:
    from fleetdist.release import facts, steps

    assert {steps.SEND, steps.RECEIVED, steps.STAGED, steps.UNCHANGED} == facts.MARKERS

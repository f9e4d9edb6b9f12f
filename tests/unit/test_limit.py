"""Host selection beyond ranges: globs (`web*`, `db?`) and `--limit KEY=VALUE`.

Whatever selects nothing is an error naming it (exit 2), like a pattern
naming an unknown host, so a typo never shrinks a rollout to zero or to
the wrong hosts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetdist.config.hosts import limit_hosts, match_glob, select_hosts
from fleetdist.config.schema import Host
from fleetdist.errors import HostPatternError, UsageError

from .conftest import Project

KNOWN = ["web01", "web02", "web10", "db1", "db2", "db10", "lb1"]
GROUPS = {"web": ("web01", "web02", "web10"), "db": ("db1", "db2", "db10")}


def test_globs_match_inventory_hosts_in_inventory_order() -> None:
    assert select_hosts(["web*"], KNOWN, GROUPS) == ["web01", "web02", "web10"]
    assert select_hosts(["db?"], KNOWN, GROUPS) == ["db1", "db2"]
    assert select_hosts(["*1"], KNOWN, GROUPS) == ["web01", "db1", "lb1"]


def test_globs_mix_with_ranges_groups_and_names() -> None:
    assert select_hosts(["web0[1-2]*,lb1"], KNOWN, GROUPS) == ["web01", "web02", "lb1"]
    assert select_hosts(["db", "web1?"], KNOWN, GROUPS) == ["db1", "db2", "db10", "web10"]


def test_a_glob_in_exclude() -> None:
    assert select_hosts([], KNOWN, GROUPS, exclude=["db*", "web0?"]) == ["web10", "lb1"]
    with pytest.raises(HostPatternError, match=r"'lb\*' matches no selected host"):
        select_hosts(["web"], KNOWN, GROUPS, exclude=["lb*"], source="inv")
    with pytest.raises(HostPatternError, match=r"^inv: -x/--exclude: 'cache\*' matches no host"):
        select_hosts(["web"], KNOWN, GROUPS, exclude=["cache*"], source="inv")


def test_a_glob_that_matches_nothing_is_an_error() -> None:
    with pytest.raises(HostPatternError, match=r"^inv: hosts: 'cache\*' matches no host in the"):
        select_hosts(["web01", "cache*"], KNOWN, GROUPS, source="inv")


@pytest.mark.parametrize("glob", ["-o*", "web/*", "we b*", "a..*"])
def test_a_glob_that_cannot_match_a_host_name_is_refused(glob: str) -> None:
    with pytest.raises(HostPatternError, match="cannot match a host name"):
        match_glob(glob, KNOWN)


HOSTS = {
    "web01": Host("web01", groups=("web",), vars={"role": "web", "dc": "fra"}),
    "web02": Host("web02", groups=("web", "canary"), vars={"role": "web", "dc": "ams"}),
    "db1": Host("db1", groups=("db",), vars={"role": "db", "dc": "fra"}),
}


def test_limit_by_group_role_and_any_host_var() -> None:
    names = list(HOSTS)
    assert limit_hosts(names, HOSTS, ["group=canary"], "inv") == ["web02"]
    assert limit_hosts(names, HOSTS, ["role=web"], "inv") == ["web01", "web02"]
    assert limit_hosts(names, HOSTS, ["dc=fra"], "inv") == ["web01", "db1"]
    assert limit_hosts(names, HOSTS, ["role=web", "dc=fra"], "inv") == ["web01"], "every limit"
    assert limit_hosts(names, HOSTS, ["role=w*"], "inv") == ["web01", "web02"], "a glob value"
    assert limit_hosts(names, HOSTS, [], "inv") == names


def test_a_limit_that_keeps_nothing_is_an_error_naming_it() -> None:
    with pytest.raises(HostPatternError) as info:
        limit_hosts(list(HOSTS), HOSTS, ["role=web", "dc=lon"], "inv.yaml")
    assert str(info.value) == "inv.yaml: --limit dc=lon: matches none of the 2 selected host(s)"


@pytest.mark.parametrize("spec", ["role", "=web", "role=", " = "])
def test_a_limit_without_key_and_value_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError, match=r"expected KEY=VALUE"):
        limit_hosts(list(HOSTS), HOSTS, [spec], "inv")


# -- through the CLI ------------------------------------------------------------


def test_cli_hosts_takes_globs_and_limits(project: Project) -> None:
    result = project.run("hosts", "web0*", "--limit", "role=web", "--limit", "group=web")
    assert (result.code, result.out.split()) == (0, ["web01", "web02", "web03"]), result.err


def test_cli_deploy_with_a_limit_touches_only_those_hosts(project: Project) -> None:
    inv = project.root / "inventories" / "local.yaml"
    inv.write_text(inv.read_text() + "hosts:\n  web02:\n    vars: {canary: 'yes'}\n")
    release = project.deploy("--limit", "canary=yes")
    assert project.current("web02") == release
    assert project.current("web01") is None and project.current("web03") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-H", "db*"], "hosts: 'db*' matches no host in the inventory"),
        (["--limit", "role=db"], "--limit role=db: matches none of the 3 selected host(s)"),
        (["--limit", "role"], "--limit 'role': expected KEY=VALUE"),
    ],
)
def test_cli_selecting_nothing_exits_2_touching_nothing(
    project: Project, argv: list[str], message: str
) -> None:
    result = project.run("deploy", *argv)
    assert result.code == 2
    assert result.err.count("\n") == 1 and message in result.err
    assert not Path(project.fleet).exists()

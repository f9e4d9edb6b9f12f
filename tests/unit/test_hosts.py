"""Host patterns: expansion, group selection, and a one-line error for every malformed one."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from fleetdist.config.hosts import MAX_HOSTS, expand_pattern, select_hosts, split_patterns
from fleetdist.errors import HostPatternError

from .conftest import FIXTURES, Project


def test_zero_padding_follows_the_bounds() -> None:
    names = expand_pattern("web[01-99]")
    assert len(names) == 99
    assert names[:3] == ["web01", "web02", "web03"]
    assert names[-1] == "web99"


def test_padding_follows_the_wider_bound() -> None:
    assert expand_pattern("web[01-10]") == [f"web{n:02d}" for n in range(1, 11)]
    assert expand_pattern("n[001-003]") == ["n001", "n002", "n003"]


def test_unpadded_range() -> None:
    assert expand_pattern("db[1-3]") == ["db1", "db2", "db3"]
    assert expand_pattern("db[8-11]") == ["db8", "db9", "db10", "db11"]


def test_range_list_inside_brackets() -> None:
    assert expand_pattern("web[01-03,07]") == ["web01", "web02", "web03", "web07"]


def test_two_ranges_multiply_in_order() -> None:
    assert expand_pattern("rack[1-2]-node[1-4]") == [
        f"rack{r}-node{n}" for r in (1, 2) for n in (1, 2, 3, 4)
    ]


def test_plain_name_is_itself() -> None:
    assert expand_pattern("lb1") == ["lb1"]


def test_comma_lists_split_outside_brackets_only() -> None:
    assert split_patterns("web[01-03,07],db[1-2], lb1") == ["web[01-03,07]", "db[1-2]", "lb1"]
    known = ["web01", "web02", "db1", "lb1"]
    assert select_hosts(["web[01-02],db1", "web02,lb1"], known, {}) == known


def test_select_hosts_by_group_and_exclude() -> None:
    known = ["web01", "web02", "web03", "db1"]
    groups = {"web": ("web01", "web02", "web03"), "db": ("db1",)}
    assert select_hosts(["web"], known, groups) == ["web01", "web02", "web03"]
    assert select_hosts(["db,web01"], known, groups) == ["db1", "web01"]
    assert select_hosts([], known, groups, exclude=["web[02-03]"]) == ["web01", "db1"]
    assert select_hosts(["web"], known, groups, exclude=["web"]) == []


def test_select_hosts_refuses_unknown_hosts() -> None:
    with pytest.raises(HostPatternError, match=r"inv\.yaml: hosts: web09 not in inventory"):
        select_hosts(["web0[8-9]"], ["web08"], {}, source="inv.yaml")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("web[3-1]", "runs backwards"),
        ("web[1-x]", "bad range '1-x'"),
        ("web[01-03", "unbalanced '\\['"),
        ("web01-03]", "unbalanced '\\]'"),
        ("web]01[", "unbalanced"),
        ("web[[1-2]]", "unbalanced"),
        ("web[]", "bad range ''"),
        ("web[1-2,]", "bad range ''"),
        ("web[-3]", "bad range '-3'"),
    ],
)
def test_malformed_pattern_is_an_error_naming_it(pattern: str, reason: str) -> None:
    with pytest.raises(HostPatternError, match=reason) as info:
        expand_pattern(pattern)
    assert repr(pattern) in str(info.value)


# -- through the CLI: `fleetdist hosts -i INVENTORY PATTERN...` ----------------


@pytest.fixture
def patterns_inventory() -> str:
    return str(FIXTURES / "inventories" / "patterns.yaml")


def test_cli_hosts_expands_patterns(project: Project, patterns_inventory: str) -> None:
    result = project.run("hosts", "-i", patterns_inventory, "web[01-03,07]", "db[1-3],lb1")
    assert result.code == 0, result.err
    assert result.out.split() == ["web01", "web02", "web03", "web07", "db1", "db2", "db3", "lb1"]


def test_cli_hosts_group_names_select_their_hosts(
    project: Project, patterns_inventory: str
) -> None:
    result = project.run("hosts", "-i", patterns_inventory, "web")
    assert result.code == 0, result.err
    assert result.out.split() == ["web01", "web02", "web03"]
    result = project.run("hosts", "-i", patterns_inventory, "racks")
    assert result.out.split() == [f"rack{r}-node{n}" for r in (1, 2) for n in range(1, 5)]


def test_cli_hosts_without_patterns_lists_the_inventory(
    project: Project, patterns_inventory: str
) -> None:
    result = project.run("hosts", "-i", patterns_inventory)
    names = result.out.split()
    assert result.code == 0
    assert names[:2] == ["web01", "web02"]
    assert "web99" in names and "lb1" in names and "rack2-node4" in names
    assert len(names) == 99 + 1 + 3 + 8


def test_cli_hosts_default_inventory_group(project: Project) -> None:
    result = project.run("hosts", "web")
    assert result.code == 0, result.err
    assert result.out.split() == ["web01", "web02", "web03"]


@pytest.mark.parametrize(
    "pattern", ["web[3-1]", "web[1-x]", "web[01-03", "web01]", "web[]", "rack[1-2]-node[4-1]"]
)
def test_cli_hosts_malformed_pattern_exits_2(
    project: Project, patterns_inventory: str, pattern: str
) -> None:
    result = project.run("hosts", "-i", patterns_inventory, pattern)
    assert result.code == 2
    assert result.out == ""
    line = result.err.strip()
    assert "\n" not in line
    assert line.startswith("fleetdist: error: host pattern")
    assert repr(pattern) in line


def test_cli_hosts_unknown_host_exits_2(project: Project, patterns_inventory: str) -> None:
    result = project.run("hosts", "-i", patterns_inventory, "web100")
    assert result.code == 2
    assert "web100 not in inventory" in result.err
    assert "patterns.yaml" in result.err


def test_malformed_pattern_in_inventory_names_file_and_field(project: Project) -> None:
    inv = project.root / "inventories" / "bad.yaml"
    inv.write_text(
        "defaults: {transport: local, local_root: /tmp/x}\n"
        "groups:\n  web:\n    hosts: ['web[3-1]']\n"
    )
    result = project.run("hosts", "-i", "bad")
    assert result.code == 2
    line = result.err.strip()
    assert "\n" not in line
    assert f"{inv}: groups.web.hosts:" in line
    assert "'web[3-1]'" in line


# -- sizes are checked before anything is expanded ------------------------------

HUGE = ["web[0-1000000000]", "web[0-5,7-1000000000]", "r[1-1000]-n[1-1000]"]


def _small_address_space() -> None:
    """Run in the child: 1 GiB of address space, so expanding a billion names fails fast."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("pattern", HUGE)
def test_cli_hosts_refuses_a_huge_pattern_before_expanding_it(
    project: Project, pattern: str
) -> None:
    """`web[0-1000000000]` once built a 1.5 GB list and died of MemoryError."""
    code = f"import sys; from fleetdist.cli import main; sys.exit(main({['hosts', pattern]!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_small_address_space,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert "\n" not in line
    assert line.startswith(f"fleetdist: error: host pattern {pattern!r}: expands to ")
    assert line.endswith(f"hosts (max {MAX_HOSTS})")


def test_the_largest_allowed_pattern_still_expands() -> None:
    names = expand_pattern(f"n[1-{MAX_HOSTS}]")
    assert len(names) == MAX_HOSTS and names[-1] == f"n{MAX_HOSTS}"


def test_an_inventory_cannot_add_patterns_up_past_the_limit(
    project: Project, tmp_path: Path
) -> None:
    inv = tmp_path / "big.yaml"
    groups = "".join(f"  g{i}:\n    hosts: ['g{i}-[1-{MAX_HOSTS // 2}]']\n" for i in range(3))
    inv.write_text(f"defaults: {{transport: local, local_root: /tmp/x}}\ngroups:\n{groups}")
    result = project.run("hosts", "-i", str(inv))
    assert result.code == 2
    line = result.err.strip()
    assert line == (
        f"fleetdist: error: {inv}: groups.g2.hosts: host pattern 'g2-[1-{MAX_HOSTS // 2}]':"
        f" the inventory names more than {MAX_HOSTS} hosts"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [("-oProxyCommand=x", "not a valid host name"), ("a..b", "not a valid host name")],
)
def test_host_names_follow_the_one_grammar(name: str, reason: str) -> None:
    with pytest.raises(HostPatternError, match=reason):
        expand_pattern(name)


def test_exclude_must_match_a_selected_host() -> None:
    known = ["web01", "web02", "db1"]
    groups = {"db": ["db1"]}
    assert select_hosts(["web01"], known, groups, exclude=["web0[1-9]"]) == []
    with pytest.raises(HostPatternError, match=r"inv: -x/--exclude: 'db' matches no selected"):
        select_hosts(["web01", "web02"], known, groups, exclude=["db"], source="inv")
    with pytest.raises(HostPatternError, match=r"'web03' matches no selected host"):
        select_hosts([], known, groups, exclude=["web01,web03"], source="inv")

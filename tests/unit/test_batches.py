"""Batch plans (canary, N, P%, lists) and the failure-budget arithmetic."""

from __future__ import annotations

import pytest

from fleetdist.errors import ConfigError
from fleetdist.orchestrate.batches import failure_budget, plan_batches
from fleetdist.report.outcome import ExitCode, FleetOutcome, HostOutcome, Status

HOSTS = [f"h{n:02d}" for n in range(1, 11)]


def sizes(batches: list[list[str]]) -> list[int]:
    return [len(b) for b in batches]


def test_default_is_one_batch_of_everything() -> None:
    assert plan_batches(HOSTS) == [HOSTS]


def test_order_is_kept_and_every_host_appears_once() -> None:
    batches = plan_batches(HOSTS, canary=2, batch="3")
    assert [h for b in batches for h in b] == HOSTS


def test_canary_goes_first_alone() -> None:
    batches = plan_batches(HOSTS, canary=1)
    assert batches == [["h01"], HOSTS[1:]]
    assert sizes(plan_batches(HOSTS, canary=3, batch="4")) == [3, 4, 3]


def test_canary_larger_than_the_fleet() -> None:
    assert plan_batches(["a", "b"], canary=5) == [["a", "b"]]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1", [1] * 10),
        ("3", [3, 3, 3, 1]),
        ("10", [10]),
        ("50", [10]),
        ("25%", [3, 3, 3, 1]),  # ceil(10 * 25%) = 3
        ("10%", [1] * 10),
        ("1%", [1] * 10),  # at least one
        ("100%", [10]),
        ("33.3%", [4, 4, 2]),
        ("1,10%,100%", [1, 1, 8]),
        ("2,50%", [2, 5, 3]),  # the last size repeats
        (" 1 , 2 ", [1, 2, 2, 2, 2, 1]),
    ],
)
def test_batch_sizes(spec: str, expected: list[int]) -> None:
    assert sizes(plan_batches(HOSTS, batch=spec)) == expected


def test_percentages_use_the_total_not_the_remainder() -> None:
    # 3 of 10 hosts failed preparing: 50% still means 5 hosts per batch.
    assert sizes(plan_batches(HOSTS[:7], batch="50%", total=10)) == [5, 2]
    assert sizes(plan_batches(HOSTS[:7], batch="50%")) == [4, 3]


def test_no_hosts_no_batches() -> None:
    assert plan_batches([], canary=1, batch="2") == []


@pytest.mark.parametrize("spec", ["0", "-1", "0%", "101%", "x", "1,,2", "%", "1.5", "5%%"])
def test_bad_batch_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"^--batch: .* is not a positive count or a percentage"):
        plan_batches(HOSTS, batch=spec)


def test_negative_canary() -> None:
    with pytest.raises(ConfigError, match=r"^--canary: must be 0 or more"):
        plan_batches(HOSTS, canary=-1)


@pytest.mark.parametrize(
    ("spec", "total", "budget"),
    [
        (None, 10, None),
        ("0", 10, 0),
        ("2", 10, 2),
        ("25%", 10, 2),  # floor: 2.5 failures is not 3
        ("30%", 10, 3),
        ("0%", 10, 0),
        ("100%", 10, 10),
        ("9%", 10, 0),
        (" 50% ", 3, 1),
    ],
)
def test_failure_budget(spec: str | None, total: int, budget: int | None) -> None:
    assert failure_budget(spec, total) == budget


@pytest.mark.parametrize("spec", ["-1", "x", "101%", "-5%", "1.5", "%", "lots%"])
def test_bad_failure_budget(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"^--max-fail: "):
        failure_budget(spec, 10)


# -- exit codes from the per-host result map --------------------------------------


def fleet(*statuses: Status, aborted: str | None = None) -> FleetOutcome:
    f = FleetOutcome("run", "deploy", "app", "prod", "1", aborted=aborted)
    for i, status in enumerate(statuses):
        f.hosts[f"h{i}"] = HostOutcome(f"h{i}", status=status)
    return f


@pytest.mark.parametrize(
    ("statuses", "aborted", "code"),
    [
        ((Status.OK, Status.UNCHANGED), None, ExitCode.OK),
        ((Status.OK, Status.FAILED), None, ExitCode.FAILED),
        ((Status.REVERTED,), None, ExitCode.FAILED),
        ((Status.OK, Status.LOCKED), None, ExitCode.LOCKED),
        ((Status.LOCKED, Status.FAILED), None, ExitCode.FAILED),
        ((Status.UNREACHABLE, Status.OK), None, ExitCode.UNREACHABLE),
        ((Status.LOCKED, Status.UNREACHABLE), None, ExitCode.LOCKED),
        ((Status.OK, Status.SKIPPED), "canary failed", ExitCode.ABORTED),
        ((), None, ExitCode.OK),
    ],
)
def test_exit_codes(statuses: tuple[Status, ...], aborted: str | None, code: int) -> None:
    assert fleet(*statuses, aborted=aborted).exit_code() == code


def test_empty_batch_is_an_error_not_the_default() -> None:
    with pytest.raises(ConfigError, match=r"^--batch: '' is not a positive count"):
        plan_batches(["a", "b"], batch="")

"""Pure: which hosts cut over together, and how many failures the rollout may absorb.

Canary hosts go first, one batch of their own.  The rest follow in batches
given as a list of sizes, each `N` or `P%` of all target hosts (at least
one); the last size repeats (`1,10%,100%`).  The failure budget (`--max-fail
N|P%`) counts every failed host of the rollout, prepare and cut-over alike.

`--canary/--batch`, `--max-fail` and `--on-failure` are parsed once, where
they enter (`BatchPlan.parse`, `FailureBudget.parse`, `OnFailure`), into the
typed values every door, the dry run and the rollout share; the arithmetic
lives in their methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from fleetdist.errors import ConfigError


class OnFailure(StrEnum):
    """`--on-failure`: stop cutting over (halt), or also undo hosts already cut over."""

    HALT = "halt"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Size:
    """One `--batch` item: a count, or a percentage of all target hosts."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, item: str, flag: str = "--batch") -> Size:
        item = item.strip()
        try:
            if item.endswith("%"):
                pct = float(item[:-1])
                if not 0 < pct <= 100:
                    raise ValueError
                return cls(pct, True)
            value = int(item)
            if value < 1:
                raise ValueError
            return cls(value, False)
        except ValueError:
            raise ConfigError(
                f"{flag}: {item!r} is not a positive count or a percentage (1-100%)"
            ) from None

    def of(self, total: int) -> int:
        if self.percent:
            return max(1, math.ceil(total * self.value / 100))
        return int(self.value)


@dataclass(frozen=True)
class BatchPlan:
    """`--canary N` and `--batch SPEC`, parsed: canary hosts, then batch sizes."""

    canary: int = 0
    spec: str | None = None  # as given, for the run journal (`--resume` parses it again)
    sizes: tuple[Size, ...] = (Size(100, True),)

    @classmethod
    def parse(cls, canary: int = 0, batch: str | None = None) -> BatchPlan:
        if canary < 0:
            raise ConfigError("--canary: must be 0 or more")
        items = ("100%" if batch is None else batch).split(",")
        return cls(canary, batch, tuple(Size.parse(item) for item in items))

    def split(self, hosts: Sequence[str], total: int | None = None) -> list[list[str]]:
        """Split `hosts` (in order) into canary + batches; `total` sizes percentages."""
        total = total if total is not None else len(hosts)
        remaining = list(hosts)
        batches: list[list[str]] = []
        if self.canary and remaining:
            batches.append(remaining[: self.canary])
            remaining = remaining[self.canary :]
        i = 0
        while remaining:
            size = self.sizes[min(i, len(self.sizes) - 1)].of(total)
            batches.append(remaining[:size])
            remaining = remaining[size:]
            i += 1
        return batches


@dataclass(frozen=True)
class FailureBudget:
    """`--max-fail N|P%`, parsed; no spec means no budget (never abort)."""

    spec: str | None = None
    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, spec: str | None) -> FailureBudget:
        if spec is None:
            return cls()
        text = spec.strip()
        if text.endswith("%"):
            try:
                pct = float(text[:-1])
            except ValueError:
                pct = -1
            if not 0 <= pct <= 100:
                raise ConfigError(f"--max-fail: {text!r} is not a percentage (0-100%)")
            return cls(spec, percent=pct)
        if not text.isdigit():
            raise ConfigError(f"--max-fail: {text!r} is not a count or a percentage")
        return cls(spec, count=int(text))

    def allowed(self, total: int) -> int | None:
        """Failed hosts a rollout of `total` hosts may absorb; None: no limit."""
        if self.percent is not None:
            return math.floor(total * self.percent / 100)
        return self.count


def plan_batches(
    hosts: Sequence[str], *, canary: int = 0, batch: str | None = None, total: int | None = None
) -> list[list[str]]:
    """Split `hosts` (in order) into canary + batches; `total` sizes percentages."""
    return BatchPlan.parse(canary, batch).split(hosts, total)


def failure_budget(spec: str | None, total: int) -> int | None:
    """Failed hosts the rollout may absorb; None means no budget (never abort)."""
    return FailureBudget.parse(spec).allowed(total)


ALL_AT_ONCE = BatchPlan()  # no --canary, no --batch: one batch of every host
UNLIMITED = FailureBudget()  # no --max-fail: never abort

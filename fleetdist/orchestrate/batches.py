"""Pure: which hosts cut over together, and how many failures the rollout may absorb.

Canary hosts go first, one batch of their own.  The rest follow in batches
given as a list of sizes, each `N` or `P%` of all target hosts (at least
one); the last size repeats (`1,10%,100%`).  The failure budget (`--max-fail
N|P%`) counts every failed host of the rollout, prepare and cut-over alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from fleetdist.errors import ConfigError


def _size(item: str, total: int, flag: str) -> int:
    item = item.strip()
    try:
        if item.endswith("%"):
            pct = float(item[:-1])
            if not 0 < pct <= 100:
                raise ValueError
            return max(1, math.ceil(total * pct / 100))
        value = int(item)
        if value < 1:
            raise ValueError
        return value
    except ValueError:
        raise ConfigError(
            f"{flag}: {item!r} is not a positive count or a percentage (1-100%)"
        ) from None


def plan_batches(
    hosts: Sequence[str], *, canary: int = 0, batch: str | None = None, total: int | None = None
) -> list[list[str]]:
    """Split `hosts` (in order) into canary + batches; `total` sizes percentages."""
    if canary < 0:
        raise ConfigError("--canary: must be 0 or more")
    total = total if total is not None else len(hosts)
    remaining = list(hosts)
    batches: list[list[str]] = []
    if canary and remaining:
        batches.append(remaining[:canary])
        remaining = remaining[canary:]
    sizes = [_size(s, total, "--batch") for s in ("100%" if batch is None else batch).split(",")]
    i = 0
    while remaining:
        size = sizes[min(i, len(sizes) - 1)]
        batches.append(remaining[:size])
        remaining = remaining[size:]
        i += 1
    return batches


def failure_budget(spec: str | None, total: int) -> int | None:
    """Failed hosts the rollout may absorb; None means no budget (never abort)."""
    if spec is None:
        return None
    spec = spec.strip()
    if spec.endswith("%"):
        try:
            pct = float(spec[:-1])
        except ValueError:
            pct = -1
        if not 0 <= pct <= 100:
            raise ConfigError(f"--max-fail: {spec!r} is not a percentage (0-100%)")
        return math.floor(total * pct / 100)
    if not spec.isdigit():
        raise ConfigError(f"--max-fail: {spec!r} is not a count or a percentage")
    return int(spec)

"""placeholder"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CacheArgs:
    src: str | None = None
    dst: str | None = None
    workers: int | None = None
    delete: bool = False
    prune: bool = False
    diff: bool = False
    ttl: int | None = None
    force: bool = False
    dryrun: bool = False


def run(args: CacheArgs) -> int:
    return 1

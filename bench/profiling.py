"""--profile: extra fleetdist rounds under cProfile (every thread) and py-spy.

cProfile only sees the thread that enables it, and fleetdist does its work in
ThreadPoolExecutor workers and Paramiko transport threads; so the bench re-invokes its
entry point as `fleet_bench.py _cprofile OUT -- ...`, which profiles each thread from
its start and merges them all into one pstats file.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shell import log
from workloads import Bench, Variant

ENTRY_POINT = Path(__file__).resolve().with_name("fleet_bench.py")


def profile(bench: Bench, n: int, outdir: Path) -> dict[str, Any]:
    """Extra fleetdist round(s) at N=n under py-spy and/or a cProfile of every thread."""
    outdir.mkdir(parents=True, exist_ok=True)
    # --persist 0: the SSH work then happens in the profiled process, not in the mux daemon.
    variant = Variant(f"{n}:10:0", n, 10, 0.0)
    result: dict[str, Any] = {"n": n, "parallel": n, "max_connect": 10, "persist": 0}

    def cprof(label: str) -> list[str]:
        return [bench.py, str(ENTRY_POINT), "_cprofile",
                str(outdir / f"{label.replace(' ', '_')}.pstats"), "--"]  # fmt: skip

    # fleetdist() prepends the wrapper to [py, -m, fleetdist.cli, ...]; the _cprofile
    # child ignores its argv up to and including "fleetdist.cli".
    log(f"profiling N={n} with cProfile (all threads) -> {outdir}")
    base = f"/srv/prof-cprof-n{n}"
    result["cprofile"] = [
        asdict(m) for m in bench.fleetdist_round(n, variant, base, "cprofile", wrap_for=cprof)
    ]
    bases = [base]
    pyspy = bench.args.py_spy or shutil.which("py-spy")
    if pyspy:
        log(f"profiling N={n} with py-spy -> {outdir}")
        base = f"/srv/prof-pyspy-n{n}"
        bases.append(base)

        def spy(label: str) -> list[str]:
            return [pyspy, "record", "--threads", "--rate", "100", "--format", "raw",
                    "-o", str(outdir / f"{label.replace(' ', '_')}.pyspy.txt"),
                    "--"]  # fmt: skip

        result["py_spy"] = [
            asdict(m) for m in bench.fleetdist_round(n, variant, base, "pyspy", wrap_for=spy)
        ]
    else:
        log("py-spy not found (--py-spy PATH); cProfile only")
    bench.cleanup(n, bases)
    return result


def cprofile_child(argv: list[str]) -> int:
    """`fleet_bench.py _cprofile OUT -- PY -m fleetdist.cli ARGS`: run the CLI in-process,
    profiling the main thread and every other thread (ThreadPoolExecutor workers, Paramiko
    transport threads), merged into one pstats file."""
    import cProfile
    import pstats

    out = argv[0]
    rest = argv[argv.index("fleetdist.cli") + 1 :]
    profiles: list[cProfile.Profile] = []
    guard = threading.Lock()
    inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        with guard:
            profiles.append(prof)
        prof.enable()
        try:
            inner(self)
        finally:
            prof.disable()

    threading.Thread._bootstrap_inner = bootstrap  # type: ignore[attr-defined]
    main_prof = cProfile.Profile()
    from fleetdist import cli

    main_prof.enable()
    try:
        code = cli.main(rest)
    finally:
        main_prof.disable()
        stats = pstats.Stats(main_prof)
        with guard:
            others = list(profiles)
        for prof in others:
            with contextlib.suppress(TypeError, ValueError):  # a thread still running
                stats.add(prof)
        stats.dump_stats(out)
    return code

"""Reporting: the per-N table, fleetdist/OpenSSH ratios, PASS/MISS targets, JSON rows.

Targets are printed, never asserted: the bench is for seeing where fleetdist stands,
and wall times on a shared machine are too noisy to fail on.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, TextIO

from measure import Measure

TARGET_N = 100
TARGET_ROLLBACK_S = 1.5
TARGET_RSS_MB = 80.0


def ratio(a: float | None, b: float | None) -> str:
    """a/b as "1.23x", or "-" when either side is unknown or b is zero."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def fmt(v: float | None, spec: str = ".2f") -> str:
    """A figure that may be unknown (None -> "-")."""
    return "-" if v is None else format(v, spec)


def _tag(variant: dict[str, Any]) -> str:
    """How a variant is named in the tables: P=parallel C=max-connect K=persist seconds."""
    return f"P={variant['parallel']} C={variant['max_connect']} K={variant['persist']:g}"


def print_size(res: dict[str, Any], out: TextIO) -> None:
    """The table, ratios and targets for one N; also stores the targets in res["targets"]."""
    n = res["n"]
    via = "docker-proxy" if res.get("userland_proxy") else "iptables, no userland proxy"
    print(f"\n=== N = {n} hosts (ports via {via}) ===", file=out)
    head = (f"{'run':<40} {'wall s':>7} {'ctl cpu':>8} {'rss MB':>7} {'sum rss':>7} "
            f"{'pss':>6} {'thr':>4} {'host cpu':>8} {'proxy':>6} {'total':>7} {'machine':>8} "
            f"{'bg':>5}  ok")  # fmt: skip
    print(head, file=out)
    print("-" * len(head), file=out)

    def row(prefix: str, m: Measure, rounds: list[list[Measure]], i: int) -> None:
        reps = "" if len(rounds) < 2 else " reps " + "/".join(f"{r[i].wall_s:.2f}" for r in rounds)
        print(
            f"{prefix + ' ' + m.label:<40} {m.wall_s:>7.2f} {m.ctl_cpu_s:>8.2f} "
            f"{m.peak_rss_mb:>7.1f} {m.sum_rss_mb:>7.1f} {fmt(m.ctl_pss_mb, '.1f'):>6} "
            f"{fmt(m.peak_threads, 'd'):>4} "
            f"{fmt(m.host_cpu_s):>8} "
            f"{fmt(m.proxy_cpu_s):>6} {fmt(m.total_cpu_s):>7} {m.machine_busy_s:>8.2f} "
            f"{fmt(m.background_cores):>5}  "
            f"{fmt(m.hosts_ok, 'd')}/{fmt(m.hosts_total, 'd')}{reps} {m.note}",
            file=out,
        )

    for v in res["variants"]:
        for i, m in enumerate(v["measures"]):
            row(f"[{_tag(v)}]", m, v["all"], i)
    for i, m in enumerate(res["reference"]):
        row(f"[xargs -P {n}]", m, res["ref_all"], i)
    print(
        "  (seconds; ctl = controller user+sys (fleetdist: with its mux daemon); rss = its "
        "ru_maxrss (fleetdist: + the daemon's peak);\n   sum rss = peak summed RSS of its process "
        "tree (+ daemon); pss = peak summed PSS of fleetdist + daemon;\n   thr = peak threads; "
        "host = containers' cgroup CPU; proxy = docker-proxy; total = ctl+host+proxy;\n"
        "   machine = all CPU busy on the box during the run; bg = cores busy with other work "
        "just before)",
        file=out,
    )
    ref = {m.label.split()[-1]: m for m in res["reference"]}
    print("\nratios fleetdist / openssh (wall, controller cpu, total cpu):", file=out)
    for v in res["variants"]:
        for m in v["measures"]:
            r = ref[m.label.split()[-1]]
            print(
                f"  {_tag(v):<18} {m.label.split()[-1]:<9} "
                f"wall {ratio(m.wall_s, r.wall_s):>7}  ctl cpu {ratio(m.ctl_cpu_s, r.ctl_cpu_s):>7}"
                f"  total cpu {ratio(m.total_cpu_s, r.total_cpu_s):>7}"
                f"  per host: total cpu {fmt((m.total_cpu_s or 0) / n * 1000, '.0f')} ms"
                f" vs {fmt((r.total_cpu_s or 0) / n * 1000, '.0f')} ms",
                file=out,
            )
    res["targets"] = targets(res)
    official = "" if n == TARGET_N else f" (targets are defined at N={TARGET_N}; shown for info)"
    print(f"\ntargets{official}:", file=out)
    for t in res["targets"]:
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {t['what']}: {t['detail']}", file=out)


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/MISS per variant: deploys vs the reference, rollback time, controller memory."""
    ref = {m.label.split()[-1]: m for m in res["reference"]}
    out = []
    for v in res["variants"]:
        tag = _tag(v)
        ms = {m.label.split()[-1]: m for m in v["measures"]}
        for op in ("deploy#1", "deploy#2"):
            a, b = ms[op].wall_s, ref[op].wall_s
            ok = ms[op].exit_code == 0 and a <= b
            out.append({"what": f"{tag} {op} no slower than OpenSSH", "pass": ok,
                        "detail": f"{a:.2f}s vs {b:.2f}s"})  # fmt: skip
        rb = ms["rollback"]
        out.append({"what": f"{tag} rollback < {TARGET_ROLLBACK_S}s",
                    "pass": rb.exit_code == 0 and rb.wall_s < TARGET_ROLLBACK_S,
                    "detail": f"{rb.wall_s:.2f}s"})  # fmt: skip
        out.append(memory_target(tag, v["measures"]))
    return out


def memory_target(tag: str, measures: list[Measure]) -> dict[str, Any]:
    """Controller memory: fleetdist and its mux daemon together.

    Judged on their summed PSS (sampled), which counts the pages both map from
    the same files (Python, OpenSSL, the cryptography extension) once; the two
    RSS peaks, which count those pages twice, are shown next to it.
    """
    worst = max(measures, key=lambda m: m.ctl_pss_mb or m.peak_rss_mb)
    pss = worst.ctl_pss_mb if worst.ctl_pss_mb is not None else worst.peak_rss_mb
    rss = max(m.peak_rss_mb for m in measures)
    daemon = max(m.mux_rss_mb for m in measures)
    detail = f"peak PSS {pss:.1f} MB"
    if daemon:
        detail += f" (RSS peaks: fleetdist {rss - daemon:.1f} MB + mux daemon {daemon:.1f} MB)"
    return {"what": f"{tag} controller peak memory < {TARGET_RSS_MB:g} MB",
            "pass": pss < TARGET_RSS_MB, "detail": detail}  # fmt: skip


def size_json(res: dict[str, Any]) -> dict[str, Any]:
    """One N's results for --json (after print_size, which adds the targets)."""
    return {
        "n": res["n"],
        "variants": [
            {
                **{k: v for k, v in var.items() if k not in ("measures", "all")},
                "measures": [asdict(m) for m in var["measures"]],
                "all": [[asdict(m) for m in rnd] for rnd in var["all"]],
            }
            for var in res["variants"]
        ],
        "reference": [asdict(m) for m in res["reference"]],
        "reference_all": [[asdict(m) for m in rnd] for rnd in res["ref_all"]],
        "targets": res["targets"],
    }

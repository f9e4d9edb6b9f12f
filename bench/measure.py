"""Measuring one run: the launcher, /proc sampling, cgroup and /proc/stat CPU counters.

The child runs under a tiny `python -S` launcher that wait4()s it, so its rusage covers
it and every descendant it waited for without inheriting the bench's own ~50 MB RSS.
Host-side work (sshd, tar, docker-proxy) is invisible to that rusage, hence the cgroup
and /proc deltas taken around each run.
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from containers import Fleet, Node

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Measure:
    label: str
    wall_s: float
    ctl_cpu_s: float  # controller user+sys (fleetdist + its mux daemon, or xargs + ssh + sh)
    ctl_user_s: float
    ctl_sys_s: float
    peak_rss_mb: float  # ru_maxrss of fleetdist + its mux daemon's peak (ref: largest ssh)
    sum_rss_mb: float  # peak summed RSS of the whole process tree, sampled every 50 ms
    host_cpu_s: float | None  # containers' cgroups
    proxy_cpu_s: float | None  # docker-proxy forwarding the published ports
    total_cpu_s: float | None  # controller + hosts + proxy
    machine_busy_s: float  # /proc/stat busy time over the interval, all processes
    exit_code: int
    hosts_ok: int | None = None
    hosts_total: int | None = None
    peak_threads: int | None = None
    background_cores: float | None = None  # machine load just before the run (other work)
    mux_cpu_s: float = 0.0  # the part of ctl_cpu_s spent in fleetdist's mux daemon
    mux_rss_mb: float = 0.0  # the part of peak_rss_mb that is the mux daemon's VmHWM
    ctl_pss_mb: float | None = None  # peak sampled PSS of fleetdist + its mux daemon together
    note: str = ""


# Started with `python -S -c LAUNCHER OUT -- argv...`: fork/exec argv, wait4 it, write its
# rusage (it and every descendant it waited for) and the wall time to OUT.  The launcher is
# small (~8 MB), so the ru_maxrss the child inherits at fork is not the bench's ~50 MB.
LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[3:]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
with open(out, "w") as fh:
    code = os.waitstatus_to_exitcode(status)
    fh.write(repr((wall, code, ru.ru_utime, ru.ru_stime, ru.ru_maxrss)))
"""


def machine_busy_s() -> float:
    """All busy CPU on the box so far (/proc/stat), to expose whatever else was running."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def host_cpu_s(nodes: Sequence[Node]) -> tuple[float | None, float | None]:
    """(containers' CPU seconds, docker-proxy CPU seconds), cumulative; None if unreadable."""
    total, known = 0.0, False
    for node in nodes:
        if node.cpu_path is None:
            continue
        try:
            text = node.cpu_path.read_text()
        except OSError:
            continue
        known = True
        if node.cpu_path.name == "cpuacct.usage":
            total += int(text) / 1e9
        else:
            for line in text.splitlines():
                if line.startswith("usage_usec"):
                    total += int(line.split()[1]) / 1e6
    proxy, seen = 0.0, False
    for node in nodes:
        for pid in node.proxy_pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seen = True
            proxy += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return (total if known else None), (proxy if seen else None)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared library pages split between the processes mapping them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _kib(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


def mux_daemons(home: Path | None) -> dict[int, tuple[float, int]]:
    """fleetdist mux daemons of this bench (their socket is under `home`): pid -> (cpu s, peak KiB).

    The daemon is detached from the run that started it, so the launcher's wait4
    never sees it; its CPU and memory are the controller's all the same.
    """
    if home is None:
        return {}
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"fleetdist.transport.mux" not in cmdline or not any(
                arg.startswith(str(home).encode()) for arg in cmdline
            ):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        found[int(entry.name)] = (cpu, _kib(_status(int(entry.name)).get("VmHWM")))
    return found


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def settle(max_wait: float, quiet_cores: float = 0.3) -> float:
    """Wait (bounded) for the machine to go quiet; return the background load in cores."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(0.5)
        cores = (machine_busy_s() - b0) / (time.monotonic() - t0)
        if cores < quiet_cores or time.monotonic() >= deadline:
            return round(cores, 2)


def measure(
    label: str,
    argv: list[str],
    fleet: Fleet,
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    logs: Path,
    stdin: Path | None = None,
    settle_s: float = 0.0,
    mux_home: Path | None = None,
) -> tuple[Measure, str]:
    """Run argv under the launcher; wall and rusage of the child, host-side CPU deltas.

    While it runs, /proc is sampled every 50 ms for the peak thread count of the
    direct child and the peak summed RSS of all its descendants (for the
    reference: xargs plus every ssh in flight).
    """
    slug = label.replace(" ", "_").replace("#", "").replace("/", "_")
    out_path, err_path = logs / f"{slug}.out", logs / f"{slug}.err"
    ru_path = logs / f"{slug}.rusage"
    background = settle(settle_s) if settle_s > 0 else None
    host0, proxy0 = host_cpu_s(fleet.nodes)
    mux0 = mux_daemons(mux_home)
    mux_pids, next_scan = list(mux0), 0.0
    busy0 = machine_busy_s()
    peak_threads = peak_sum_kib = peak_pss_kib = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        stdin_f = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", LAUNCHER, str(ru_path), "--", *argv],
                stdin=stdin_f, stdout=out, stderr=err, env=env, cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
        finally:
            if stdin:
                stdin_f.close()  # type: ignore[union-attr]
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: timed out after {timeout:g}s (see {err_path})")
                kids = _children(proc.pid)
                if kids:
                    top = _status(kids[0])
                    peak_threads = max(peak_threads, _kib(top.get("Threads")))
                    total, todo, seen = 0, list(kids), 0
                    while todo and seen < 5000:
                        pid = todo.pop()
                        seen += 1
                        total += _kib(_status(pid).get("VmRSS"))
                        todo.extend(_children(pid))
                    if not mux_pids and time.monotonic() > next_scan:  # a cold run starts one
                        mux_pids, next_scan = list(mux_daemons(mux_home)), time.monotonic() + 0.5
                    for pid in mux_pids:
                        total += _kib(_status(pid).get("VmRSS"))
                    peak_sum_kib = max(peak_sum_kib, total)
                    if mux_home is not None:  # fleetdist runs: the controller's real footprint
                        pss = _pss_kib(kids[0]) + sum(_pss_kib(pid) for pid in mux_pids)
                        peak_pss_kib = max(peak_pss_kib, pss)
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                _kill_group(proc.pid)
                proc.wait(10)
    try:
        wall, code, utime, stime, maxrss = ast.literal_eval(ru_path.read_text())
        ctl = float(utime) + float(stime)
    except (OSError, SyntaxError, ValueError) as exc:
        raise RuntimeError(f"{label}: launcher failed ({proc.returncode}): {exc}") from exc
    host1, proxy1 = host_cpu_s(fleet.nodes)
    mux1 = mux_daemons(mux_home)
    busy1 = machine_busy_s()
    mux_cpu = sum(cpu - mux0.get(pid, (0.0, 0))[0] for pid, (cpu, _) in mux1.items())
    ctl += mux_cpu
    mux_rss = max((peak for _, peak in mux1.values()), default=0)
    maxrss += mux_rss
    host = None if host0 is None or host1 is None else host1 - host0
    proxy = None if proxy0 is None or proxy1 is None else proxy1 - proxy0
    total_cpu = ctl + (host or 0.0) + (proxy or 0.0) if host is not None else None
    m = Measure(
        label=label,
        wall_s=round(wall, 3),
        ctl_cpu_s=round(ctl, 3),
        ctl_user_s=round(utime, 3),
        ctl_sys_s=round(stime, 3),
        peak_rss_mb=round(maxrss / 1024, 1),
        sum_rss_mb=round(peak_sum_kib / 1024, 1),
        host_cpu_s=None if host is None else round(host, 3),
        proxy_cpu_s=None if proxy is None else round(proxy, 3),
        total_cpu_s=None if total_cpu is None else round(total_cpu, 3),
        machine_busy_s=round(busy1 - busy0, 3),
        exit_code=code,
        peak_threads=peak_threads or None,
        background_cores=background,
        mux_cpu_s=round(mux_cpu, 3),
        mux_rss_mb=round(mux_rss / 1024, 1),
        ctl_pss_mb=round(peak_pss_kib / 1024, 1) if peak_pss_kib else None,
    )
    return m, out_path.read_text(errors="replace")

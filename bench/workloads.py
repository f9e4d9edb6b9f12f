"""What gets measured: the fleetdist CLI runs and the plain-OpenSSH reference, per N.

Both sides deploy the same two artifacts to the same containers, each round into its
own fresh deploy root, so neither side finds the other's (or an earlier round's) work.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containers import Fleet
from measure import Measure, measure, mux_daemons
from project import Project
from shell import REPO, log

DEFAULT_PERSIST = 60.0  # fleetdist's own --persist default

# Builds the command prefix (a profiler) for one labelled fleetdist run.
Wrapper = Callable[[str], list[str]]


def child_env(work: Path) -> dict[str, str]:
    """No developer ~/.ssh, agent or FLEETDIST_* settings leak into the measured runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETDIST_")}
    env.pop("SSH_AUTH_SOCK", None)
    home = work / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def fleetdist_hosts(stdout: str) -> tuple[int | None, int | None]:
    """(hosts on the target, hosts) from fleetdist's --json output; None if unparsable."""
    try:
        doc = json.loads(stdout)
        hosts = doc["hosts"]
    except (ValueError, KeyError, TypeError):
        return None, None
    return sum(1 for h in hosts if h.get("status") in ("ok", "unchanged")), len(hosts)


def best(rounds: list[list[Measure]]) -> list[Measure]:
    """Per operation, the repeat with the lowest wall time (successful runs first)."""
    return [
        min(ops, key=lambda m: (m.exit_code != 0, m.wall_s)) for ops in zip(*rounds, strict=True)
    ]


def resolve(spec: str, n: int) -> int:
    """A --variants field: "N" is the fleet size, anything else a number."""
    return n if spec.upper() == "N" else int(spec)


def unpack(d: str) -> str:
    """The reference's host command for an artifact on stdin (deploys and warm-up alike)."""
    return f"mkdir -p {d} && tar -xzf - -C {d}"


@dataclass(frozen=True)
class Variant:
    """One --variants entry resolved for a fleet size."""

    spec: str
    parallel: int
    max_connect: int
    persist: float

    @classmethod
    def parse(cls, spec: str, n: int) -> Variant:
        fields = spec.split(":")
        persist = float(resolve(fields[2], n)) if len(fields) > 2 else DEFAULT_PERSIST
        return cls(spec, resolve(fields[0], n), resolve(fields[1], n), persist)

    @property
    def tag(self) -> str:
        return f"p{self.parallel}c{self.max_connect}k{self.persist:g}"


class Bench:
    """The measured runs against one fleet and project, sharing env, logs and artifacts."""

    def __init__(self, args: argparse.Namespace, fleet: Fleet, project: Project, work: Path):
        self.args, self.fleet, self.project, self.work = args, fleet, project, work
        self.env = child_env(work)
        self.py: str = args.python
        self.logs = work / "logs"
        self.logs.mkdir(exist_ok=True)
        self.artifacts: list[dict[str, Any]] = []
        self.ssh_opts = [
            "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-i", str(fleet.client_key), "-o", f"UserKnownHostsFile={fleet.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
            "-o", "LogLevel=ERROR", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        ]  # fmt: skip

    # -- fleetdist

    def fleetdist(self, verb: str, inv: Path, parallel: int, max_connect: int, label: str,
                  extra: Sequence[str], wrap: Sequence[str]) -> Measure:  # fmt: skip
        """One `python -m fleetdist.cli VERB ... --json` run, optionally under `wrap`."""
        argv = [
            *wrap, self.py, "-m", "fleetdist.cli", verb, "--project", str(self.project.root),
            "-i", str(inv), "--json", "--parallel", str(parallel),
            "--max-connect", str(max_connect), *extra,
        ]  # fmt: skip
        m, out = measure(
            label, argv, self.fleet, env=self.env, cwd=self.project.root,
            timeout=self.args.op_timeout, logs=self.logs, settle_s=self.args.settle,
            mux_home=Path(self.env["HOME"]),
        )  # fmt: skip
        m.hosts_ok, m.hosts_total = fleetdist_hosts(out)
        if m.exit_code != 0:
            m.note = f"exit {m.exit_code}, see logs/{label.replace(' ', '_').replace('#', '')}.err"
        return m

    def disconnect(self) -> None:
        """Close the connections a previous round kept (untimed): deploy#1 starts cold."""
        argv = [self.py, "-m", "fleetdist.cli", "disconnect"]
        subprocess.run(argv, env=self.env, capture_output=True, timeout=60, check=True)
        deadline = time.monotonic() + 30
        while mux_daemons(Path(self.env["HOME"])):  # gone, so the next run cannot count it
            if time.monotonic() > deadline:
                raise RuntimeError("the mux daemon did not exit after disconnect")
            time.sleep(0.1)

    def fleetdist_round(self, n: int, variant: Variant, base: str, tag: str,
                        wrap_for: Wrapper | None = None) -> list[Measure]:  # fmt: skip
        """deploy#1 (cold: no kept connections), deploy#2, rollback on the first n hosts."""
        inv = self.project.inventory(n, base)
        self.disconnect()
        persist = ["--persist", f"{variant.persist:g}"]
        out = []
        for verb, label, extra in (
            ("deploy", "deploy#1", ["--artifact", self.artifacts[0]["path"], *persist]),
            ("deploy", "deploy#2", ["--artifact", self.artifacts[1]["path"], *persist]),
            ("rollback", "rollback", persist),
        ):
            full = f"n{n} {tag} {label}"
            wrap = wrap_for(full) if wrap_for else []
            m = self.fleetdist(verb, inv, variant.parallel, variant.max_connect, full, extra, wrap)
            m.label = f"fleetdist {label}"
            log(
                f"  {full}: {m.wall_s:.2f}s wall, ctl {m.ctl_cpu_s:.2f}s cpu "
                f"(mux {m.mux_cpu_s:.2f}s), "
                f"{m.peak_rss_mb:.0f} MB, hosts ok {m.hosts_ok}/{m.hosts_total} {m.note}"
            )
            out.append(m)
        return out

    # -- reference

    def ref_xargs(
        self, n: int, remote: str, stdin_file: str | None, label: str, tag: str = ""
    ) -> Measure:
        """`xargs -P n` of one `ssh HOST REMOTE < stdin_file` per host."""
        ports = self.logs / f"ports-{n}.txt"
        ports.write_text("".join(f"{nd.port}\n" for nd in self.fleet.nodes[:n]))
        redirect = f"< {shlex.quote(stdin_file)}" if stdin_file else "< /dev/null"
        script = (
            f'exec ssh {" ".join(shlex.quote(o) for o in self.ssh_opts)} -p "$1" '
            f"root@127.0.0.1 {shlex.quote(remote)} {redirect}"
        )
        argv = ["xargs", "-P", str(n), "-n", "1", "sh", "-c", script, "_"]
        m, _ = measure(
            f"n{n} ref{tag} {label}", argv, self.fleet, env=self.env, cwd=self.work,
            timeout=self.args.op_timeout, logs=self.logs, stdin=ports,
            settle_s=0 if label == "cleanup" else self.args.settle,
        )  # fmt: skip
        m.label = f"openssh {label}"
        m.hosts_total = n
        m.hosts_ok = n if m.exit_code == 0 else None
        if m.exit_code != 0:
            m.note = f"xargs exit {m.exit_code}"
        log(f"  n{n} ref{tag} {label}: {m.wall_s:.2f}s wall, ctl {m.ctl_cpu_s:.2f}s cpu {m.note}")
        return m

    def reference_round(self, n: int, base: str, rep: int) -> list[Measure]:
        """The same three operations as fleetdist_round, done with plain ssh + tar + ln/mv."""
        root = f"{base}/hello"

        def flip(rel: str) -> str:
            return (
                f"ln -sfn releases/{rel} {root}/.current.tmp && "
                f"mv -T {root}/.current.tmp {root}/current"
            )

        out = []
        for i, art in enumerate(self.artifacts[:2], 1):
            rel = art["release_id"]
            d = f"{root}/releases/{rel}"
            remote = f"{unpack(d)} && {flip(rel)}"
            out.append(self.ref_xargs(n, remote, art["path"], f"deploy#{i}", f" r{rep}"))
        rollback = flip(self.artifacts[0]["release_id"])
        out.append(self.ref_xargs(n, rollback, None, "rollback", f" r{rep}"))
        return out

    def cleanup(self, n: int, bases: list[str]) -> None:
        """Free the tmpfs between rounds (untimed)."""
        remote = "rm -rf " + " ".join(shlex.quote(b) for b in bases)
        try:
            self.ref_xargs(n, remote, None, "cleanup")
        except RuntimeError as exc:
            log(f"cleanup failed: {exc}")

    def warm_up(self, rounds: int) -> None:
        """Untimed reference deploys through every container (see --warmup).

        Measured here: through docker-proxy, the first ~1 GB through a fresh
        fleet costs the hosts and the proxy about 30% less CPU per byte than
        everything after it, for both sides, and idling or compacting memory
        does not bring that back.  Without the userland proxy they only cost time.
        """
        n = len(self.fleet.nodes)
        for i in range(rounds):
            art = self.artifacts[i % len(self.artifacts)]
            d = f"/srv/warmup/releases/{art['release_id']}"
            self.ref_xargs(n, unpack(d), art["path"], f"warm-up {i + 1}")
        if rounds:
            self.cleanup(n, ["/srv/warmup"])

    # -- one N

    def run_size(self, n: int) -> dict[str, Any]:
        """Every variant and the reference, --repeat times interleaved; per op the fastest."""
        log(f"N={n}")
        specs: list[Variant] = []
        for spec in self.args.variants.split(","):
            entry = Variant.parse(spec, n)
            if all(
                (e.parallel, e.max_connect, e.persist)
                != (entry.parallel, entry.max_connect, entry.persist)
                for e in specs
            ):
                specs.append(entry)  # N:N is N:10 at N=10
        runs: list[list[list[Measure]]] = [[] for _ in specs]
        ref_runs: list[list[Measure]] = []
        for rep in range(self.args.repeat):
            bases = [f"/srv/fd-n{n}-v{vi}-r{rep}" for vi in range(len(specs))]
            bases.append(f"/srv/ref-n{n}-r{rep}")
            # Odd rounds run the reference first: whatever runs first in a round (on
            # hosts just cleaned up) is not always the side that benefits or suffers.
            if rep % 2:
                ref_runs.append(self.reference_round(n, bases[-1], rep))
            for vi, variant in enumerate(specs):
                runs[vi].append(self.fleetdist_round(n, variant, bases[vi], f"{variant.tag}r{rep}"))
            if not rep % 2:
                ref_runs.append(self.reference_round(n, bases[-1], rep))
            self.cleanup(n, bases)
        variants = [
            {"parallel": v.parallel, "max_connect": v.max_connect, "persist": v.persist,
             "spec": v.spec, "measures": best(runs[vi]), "all": runs[vi]}
            for vi, v in enumerate(specs)
        ]  # fmt: skip
        return {"n": n, "variants": variants, "reference": best(ref_runs), "ref_all": ref_runs}

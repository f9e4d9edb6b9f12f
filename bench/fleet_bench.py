#!/usr/bin/env python3
"""Benchmark fleetdist deploy/rollback against plain parallel OpenSSH on a Docker sshd fleet.

    .venv/bin/python bench/fleet_bench.py --sizes 10,50,100 [--variants N:10,N:N] [--json]

One invocation brings up max(--sizes) sshd containers (the integration image
`fleetdist/sshd-test:bookworm`, ports published on 127.0.0.1 only), waits for
each with a real SSH handshake, writes known_hosts, inventories and a
throwaway project whose app carries --payload-mb of incompressible data (or
of text, `--payload text`), and
builds two releases of it.  Then, for each N (the first N containers):

  * fleetdist `deploy` of release 1, `deploy` of release 2 and `rollback`,
    each a subprocess `python -m fleetdist.cli ... --parallel P --max-connect C`,
    once per --variants entry (each variant gets its own fresh deploy root);
  * the reference: the same work with plain OpenSSH, `xargs -P N` of one
    `ssh ... 'mkdir -p DIR && tar -xzf - -C DIR && <symlink flip>' < artifact`
    per host for each deploy, and one `ssh ... '<symlink flip>'` per host for
    the rollback.

Each operation is timed: wall seconds; the controller's CPU (user+sys) and
peak RSS from wait4() of the child (for the reference: xargs and every ssh it
waited for); the hosts' CPU from the containers' cpuacct cgroups plus the
docker-proxy processes that forward their published ports; and the whole
machine's busy CPU from /proc/stat (noisy if anything else runs).

Targets (printed as PASS/MISS, never asserted) at N=100: deploy no slower than
the OpenSSH reference in the same run, rollback under 1.5 s, controller peak
memory under 80 MB.  Containers are removed in a finally block (also on
Ctrl-C / SIGTERM), with bounded timeouts.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

# The sibling modules are found because Python puts this script's directory on sys.path.
from containers import Fleet
from profiling import cprofile_child, profile
from project import Project
from report import print_size, size_json
from shell import log
from workloads import Bench


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Flags, checked up front so a typo fails before any container starts."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10", help="comma list of fleet sizes N (default 10)")
    p.add_argument(
        "--variants",
        default="10:10",
        help="comma list of PARALLEL:MAX_CONNECT[:PERSIST], N = fleet size; PERSIST is "
        "--persist seconds, default fleetdist's 60 (0 = a handshake per host per run) "
        "(default 10:10: fleetdist's own)",
    )
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds per N, interleaved; the tables show each op's fastest "
                        "(default 1)")  # fmt: skip
    p.add_argument("--payload-mb", type=float, default=5.0, help="payload MB in the app (5)")
    p.add_argument("--payload", choices=("random", "text"), default="random",
                   help="random bytes (default), or words that gzip halves like source code "
                        "(--payload-mb 11 gives a ~5 MB tar.gz)")  # fmt: skip
    p.add_argument("--with-tests", action="store_true",
                   help="recipe runs the hello app's in-place tests + healthcheck "
                        "(the reference does not, so the comparison is no longer equal "
                        "work)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--op-timeout", type=float, default=600, help="seconds per measured run")
    p.add_argument("--ready-timeout", type=float, default=180, help="seconds for the fleet")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed reference deploys through the whole fleet before measuring "
                        "(default 2): through docker-proxy the rig is cheaper for its "
                        "first ~1 GB, so without them whichever side runs first gets the "
                        "cheaper rig; 0 = none")  # fmt: skip
    p.add_argument("--settle", type=float, default=20.0,
                   help="before each run, wait up to this many seconds for the machine to "
                        "be quiet (< 0.3 cores busy); 0 = don't (default 20)")  # fmt: skip
    p.add_argument("--tmpfs-mb", type=int, default=256, help="/srv tmpfs size per container")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="after the runs, profile fleetdist at the largest N into DIR")  # fmt: skip
    p.add_argument("--py-spy", metavar="PATH", help="py-spy binary for --profile")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs fleetdist")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (logs)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat: at least 1")
    if args.warmup < 0:
        p.error("--warmup: 0 or more")
    args.size_list = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not args.size_list or min(args.size_list) < 1:
        p.error("--sizes: positive integers")
    for spec in args.variants.split(","):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(x.upper() == "N" or x.isdigit() for x in parts):
            p.error(f"--variants: bad entry {spec!r} (want P:C or P:C:PERSIST, e.g. N:10:0)")
    return args


def main(argv: list[str]) -> int:
    """Bring the fleet up, run every N, report; the fleet always comes down (finally)."""
    if argv[:1] == ["_cprofile"]:
        return cprofile_child(argv[1:])
    args = parse_args(argv)
    for tool in ("docker", "ssh", "ssh-keygen", "xargs"):
        if not shutil.which(tool):
            print(f"fleet_bench: {tool} not found", file=sys.stderr)
            return 2

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="fleetbench-"))
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    fleet = Fleet(work, max(args.size_list), tag, args.tmpfs_mb)
    started = time.monotonic()
    doc: dict[str, Any] = {"sizes": args.size_list, "variants": args.variants,
                           "payload_mb": args.payload_mb, "payload": args.payload,
                           "with_tests": args.with_tests,
                           "cpus": os.cpu_count(), "results": []}  # fmt: skip
    human = sys.stderr if args.json else sys.stdout
    code = 0
    try:
        fleet.ensure_image()
        fleet.make_keys()
        fleet.up(args.ready_timeout)
        doc["userland_proxy"] = any(node.proxy_pids for node in fleet.nodes)
        log("published ports reached through " + (
            "docker-proxy (Docker's userland proxy)" if doc["userland_proxy"]
            else "iptables (dockerd --userland-proxy=false)"))  # fmt: skip
        project = Project(work / "project", fleet, args.payload_mb, args.with_tests, args.payload)
        bench = Bench(args, fleet, project, work)
        for version in ("1.0.0", "2.0.0"):
            art = project.build(version, bench.env, args.python)
            bench.artifacts.append(art)
            log(f"built {art['release_id']}: {art['size'] / 1e6:.2f} MB in {art['build_s']:.2f}s")
        doc["artifacts"] = bench.artifacts
        doc["warmup"] = args.warmup
        bench.warm_up(args.warmup)
        for n in args.size_list:
            res = bench.run_size(n)
            res["userland_proxy"] = doc["userland_proxy"]
            print_size(res, human)
            human.flush()
            doc["results"].append(size_json(res))
            if any(m.exit_code for var in res["variants"] for m in var["measures"]):
                code = 1
        if args.profile:
            doc["profile"] = profile(bench, max(args.size_list), args.profile.resolve())
    except KeyboardInterrupt:
        log("interrupted; tearing down")
        code = 130
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        log(f"error: {exc}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip teardown
        try:
            fleet.down()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.keep_workdir or code not in (0, 130):
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        log(f"total {time.monotonic() - started:.0f}s")
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

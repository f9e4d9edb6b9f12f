"""Case tests for the host scripts: a host before, one step, the host after.

In the style of pyinfra's operation cases (`tests/operations/*/*.json`
there): each file in `cases/` is a small table, facts in and outcome out.

    why:     one line: what the case proves
    step:    prepare | activate | rollback | finish
    before:  the host tree (absent or empty: nothing exists, not even the root)
      releases: [v1, v2]       staged (with marker), oldest first
      unmarked: [v3]           directories under releases/ without a marker
      tested:   [v1]           marked in .fleetdist/tested/
      current:  v2             a release id, {link: TARGET} (foreign), {directory: true}, or absent
      previous: v1             .fleetdist/previous
      pending:  {run, action, from, to, previous, link}   a flip never confirmed
      lock:     {run, holder, expires_in}           the lease (expires_in < 0: expired)
      mutex:    true           a script of another run still holds the mutex
    args:    release (prepare's id, activate's target), to (rollback), seen,
             keep (prune list from the host's facts) or prune (explicit list),
             test, before_activate, after_activate, healthcheck (recipe
             commands; "$LOG" is a file whose lines `after.log` checks),
             untested_ok, run (default r1), takeover, lock (false: none),
             give_back (activate gives the lease back), upload (prepare:
             {files, format, sha256: wrong, artifact_sha256: what the marker of a
             release staged `before` must name for it to count as this
             artifact's}), ledger (finish: lines to append)
    expect:
      exit:    the script's exit code
      lines:   stdout lines other than facts records, in order, exactly
      facts:   parsed facts records (only the keys given are compared)
      stderr:  fragments stderr must contain
      script:  fragments the rendered script must contain
      after:   the host tree after (only the keys given are compared):
               current, previous, pending (bool), releases, tested,
               lock ({run, holder} or null), log, ledger ([{action, result, from, to}])
    xfail:   the reason, for a case that shows a bug still open (strict)

Every call into `fleetdist.release.steps` is in `script_for`, the adapter;
the rest is building trees and comparing them.  Runs `sh` (dash on Debian,
as on the hosts) directly: no SSH, no docker.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetdist.release import steps
from fleetdist.release.facts import parse_facts
from fleetdist.release.layout import MARKER, ReleaseLayout
from fleetdist.release.lease import LockSpec
from fleetdist.report import ledger

CASES = Path(__file__).parent / "cases"
RUN, HOLDER, OTHER = "r1", "me@ctl", "bob@ctl"
EPOCH = 1_700_000_000  # markers are staged a minute apart from here, in the order listed
FACT_RECORDS = {"previous", "lock", "current", "release", "tested", "pending"}
TOP_KEYS = {"why", "step", "before", "args", "expect", "xfail"}
BEFORE_KEYS = {"releases", "unmarked", "tested", "current", "previous", "pending", "lock", "mutex"}
ARG_KEYS = {
    "release", "to", "seen", "keep", "prune", "test", "before_activate", "after_activate",
    "healthcheck", "untested_ok", "run", "takeover", "lock", "give_back", "upload", "ledger",
}  # fmt: skip
EXPECT_KEYS = {"exit", "lines", "facts", "stderr", "script", "after"}
AFTER_KEYS = {"current", "previous", "pending", "releases", "tested", "lock", "log", "ledger"}


@dataclass(frozen=True)
class Script:
    """What a step sends a host: the script's text and its whole stdin."""

    text: str
    stdin: bytes


def script_for(step: str, args: dict[str, Any], root: Path, upload: bytes) -> Script:
    """The adapter: the case's step and arguments -> the script `fleetdist.release.steps` renders.

    The only function here that knows how `steps` is called, so a change of
    its API (host steps becoming `Step` values) changes this and nothing else.
    """
    layout = ReleaseLayout(str(root))
    run = args.get("run", RUN)
    ctx = steps.Context(
        layout=layout,
        app="app",
        release_id=args.get("release", ""),
        env=(("LOG", str(root / "log")),),
        test=tuple(args.get("test", ())),
        before_activate=tuple(args.get("before_activate", ())),
        after_activate=tuple(args.get("after_activate", ())),
        healthcheck=args.get("healthcheck"),
    )
    lock = LockSpec(run, HOLDER, takeover=args.get("takeover", ""))
    held = lock if args.get("lock", True) else None  # activate and finish may run without

    def ledgers(action: str) -> steps.Ledgers:
        fields = {"app": "app", "env": "prod", "run": run, "who": HOLDER}
        return steps.Ledgers(
            ok=ledger.template(action, result="ok", **fields),
            reverted=ledger.template(action, result="reverted", **fields),
            recovered=ledger.template("recover", result="reverted", **fields),
        )

    if step == "prepare":
        fmt = args.get("upload", {}).get("format", "tar.gz")
        sha = _sha256(upload) if args.get("upload", {}).get("sha256") != "wrong" else "0" * 64
        artifact_sha = args.get("upload", {}).get("artifact_sha256", "a" * 64)  # before's markers
        sent = steps.Upload.of(ctx, sha, fmt, artifact_sha256=artifact_sha)
        sh = steps.prepare(ctx, lock, sent, ledgers=ledgers("deploy"))
        return Script(sh.text, sh.stdin_head + upload)
    if step == "activate":
        target = args["release"]
        prune = args.get("prune", ())
        if "keep" in args:  # as the runner does: from the facts the host printed
            facts = parse_facts(_sh(steps.probe(layout).text).stdout.decode())
            prune = steps.prune_candidates(facts, target, args["keep"])
        mine = ledgers("deploy")
        sh = steps.activate(
            ctx, held, target, ledger_ok=mine.ok, ledger_reverted=mine.reverted,
            ledger_recovered=mine.recovered, prune=prune, release=args.get("give_back", False),
            seen=args.get("seen"), untested_ok=args.get("untested_ok", False),
        )  # fmt: skip
        return Script(sh.text, sh.stdin_head)
    if step == "rollback":
        sh = steps.rollback(
            ctx, lock, args.get("to"), ledgers=ledgers("rollback"),
            untested_ok=args.get("untested_ok", False),
        )  # fmt: skip
        return Script(sh.text, sh.stdin_head)
    if step == "finish":
        lines = [json.dumps(ln, separators=(",", ":")) for ln in args.get("ledger", ())]
        sh = steps.finish(layout, held, lines)
        return Script(sh.text, sh.stdin_head)
    raise AssertionError(f"unknown step {step!r}")


# -- loading the cases ------------------------------------------------------------


def _check_keys(where: str, value: Any, allowed: set[str]) -> None:
    """A typo in a case file must fail loudly, not make the case check less."""
    if value is None:
        return
    assert isinstance(value, dict), f"{where}: expected a mapping"
    unknown = set(value) - allowed
    assert not unknown, f"{where}: unknown keys {sorted(unknown)}"


def load(path: Path) -> dict[str, Any]:
    try:
        case: dict[str, Any] = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise AssertionError(f"{path.name}: {exc}") from None
    _check_keys(path.name, case, TOP_KEYS)
    assert isinstance(case.get("why"), str) and "\n" not in case["why"].strip(), path.name
    _check_keys(f"{path.name}: before", case.get("before"), BEFORE_KEYS)
    _check_keys(f"{path.name}: args", case.get("args"), ARG_KEYS)
    _check_keys(f"{path.name}: expect", case["expect"], EXPECT_KEYS)
    _check_keys(f"{path.name}: expect.after", case["expect"].get("after"), AFTER_KEYS)
    return case


def _params() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        case = load(path)
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
        params.append(pytest.param(case, id=path.stem, marks=marks))
    return params


# -- building the host ------------------------------------------------------------


def build_host(root: Path, before: dict[str, Any]) -> None:
    """Lay out the tree the case describes under `root` (nothing at all if it is empty)."""
    if not before:
        return
    fd = root / ".fleetdist"
    (fd / "tested").mkdir(parents=True)
    (root / "releases").mkdir()
    for i, rid in enumerate(before.get("releases", [])):
        (root / "releases" / rid).mkdir()
        (root / "releases" / rid / "app.py").write_text(f"print({rid!r})\n")
        marker = root / "releases" / rid / MARKER
        marker.write_text(f"{rid} {'a' * 64}\n")
        os.utime(marker, (EPOCH + 60 * i, EPOCH + 60 * i))
    for rid in before.get("unmarked", []):
        (root / "releases" / rid).mkdir()
        (root / "releases" / rid / "half.py").write_text("")
    for rid in before.get("tested", []):
        (fd / "tested" / rid).write_text(f"{'a' * 64} r0\n")
    current = before.get("current")
    if isinstance(current, dict) and current.get("directory"):
        (root / "current").mkdir()
        (root / "current" / "index.html").write_text("installed by hand\n")
    elif current is not None:
        target = current["link"] if isinstance(current, dict) else f"releases/{current}"
        os.symlink(target, root / "current")
    if "previous" in before:
        (fd / "previous").write_text(f"{before['previous']}\n")
    if "pending" in before:
        p = before["pending"]
        fields = [p["run"], p["action"], p.get("from"), p["to"], p.get("previous")]
        (fd / "pending").write_text(" ".join(f or "-" for f in fields) + "\n")
        if "link" in p:  # what `current` was when it was no release (see `switch`)
            (fd / "pending.link").write_text(f"{p['link']}\n")
    if "lock" in before:
        lease = before["lock"]
        (fd / "lock").mkdir()
        (fd / "lock" / "run").write_text(f"{lease['run']}\n")
        (fd / "lock" / "holder").write_text(f"{lease.get('holder', OTHER)}\n")
        expires = int(time.time()) + lease.get("expires_in", 600)
        (fd / "lock" / "expires").write_text(f"{expires}\n")


def artifact(upload: dict[str, Any]) -> bytes:
    """The payload a prepare case sends: a small tar (gzipped unless `format: tar`)."""
    files = upload.get("files", {"app.py": "print('hello')\n"})
    buffer = io.BytesIO()
    mode = "w" if upload.get("format") == "tar" else "w:gz"
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sh(text: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", text], input=stdin, capture_output=True, timeout=30)


@contextmanager
def mutex_held(path: Path, held: bool) -> Iterator[None]:
    """With `held`, another run's script still runs there, holding flock(2) on the mutex."""
    if not held:
        yield
        return
    with path.open("a") as mutex:
        fcntl.flock(mutex, fcntl.LOCK_EX)  # its own open file: the script's flock(1) conflicts
        yield


# -- reading the host back --------------------------------------------------------


def host_state(root: Path) -> dict[str, Any]:
    """The tree under `root` in the vocabulary of `expect.after`."""
    fd = root / ".fleetdist"
    link = root / "current"
    current: Any = None
    if link.is_symlink():
        target = os.readlink(link)
        current = target.removeprefix("releases/") if target.startswith("releases/") else None
        current = current or {"link": target}
    elif link.is_dir():
        current = {"directory": True}
    lock = None
    if (fd / "lock").is_dir():
        lock = {k: (fd / "lock" / k).read_text().strip() for k in ("run", "holder")}
    ledger_path = fd / "ledger.jsonl"
    lines = ledger.parse(ledger_path.read_text()) if ledger_path.exists() else []
    releases = root / "releases"
    return {
        "current": current,
        "previous": (fd / "previous").read_text().strip() if (fd / "previous").exists() else None,
        "pending": (fd / "pending").exists(),
        "releases": sorted(p.name for p in releases.iterdir()) if releases.is_dir() else [],
        "tested": sorted(p.name for p in (fd / "tested").iterdir())
        if (fd / "tested").is_dir()
        else [],
        "lock": lock,
        "log": (root / "log").read_text().splitlines() if (root / "log").exists() else [],
        "ledger": [{k: line.get(k) for k in ("action", "result", "from", "to")} for line in lines],
    }


def facts_state(stdout: str) -> dict[str, Any]:
    """The facts records a script printed, parsed as the controller parses them."""
    facts = parse_facts(stdout)
    pending = facts.pending
    return {
        "current": facts.current,
        "previous": facts.previous,
        "foreign": facts.foreign,
        "releases": facts.release_ids,  # newest first
        "tested": sorted(facts.tested),
        "lock": facts.lock,
        "pending": None
        if pending is None
        else {"run": pending.run, "action": pending.action, "from": pending.from_release,
              "to": pending.to_release},
    }  # fmt: skip


def stage_lines(stdout: str) -> list[str]:
    """Every stdout line but the facts records: stage lines, `@@target`, and any stray output."""
    return [
        line
        for line in stdout.splitlines()
        if not (line.startswith("@@") and line[2:].partition(" ")[0] in FACT_RECORDS)
    ]


def leftovers(root: Path) -> list[str]:
    """Scratch files a finished script must not leave behind, whatever its outcome."""
    names = [root / ".current.tmp", *root.glob(".fleetdist/*.tmp.*")]
    names += [*root.glob(".fleetdist/activate.*"), *root.glob(".fleetdist/lock.*")]
    names += [*root.glob(".fleetdist/incoming/*")]
    return [str(p.relative_to(root)) for p in names if p.exists() or p.is_symlink()]


def _subset(got: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: got[k] for k in wanted}


# -- the test ---------------------------------------------------------------------


@pytest.mark.parametrize("case", _params())
def test_script_case(case: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "srv" / "my app"  # a space in every path the scripts quote
    before, args, expect = case.get("before") or {}, case.get("args") or {}, case["expect"]
    build_host(root, before)
    upload = artifact(args.get("upload", {})) if case["step"] == "prepare" else b""
    script = script_for(case["step"], args, root, upload)

    with mutex_held(root / ".fleetdist" / "mutex", before.get("mutex", False)):
        done = _sh(script.text, script.stdin)
    out, err = done.stdout.decode(), done.stderr.decode()

    assert done.returncode == expect["exit"], err
    for fragment in expect.get("stderr", ()):
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"
    for fragment in expect.get("script", ()):
        assert fragment in script.text, f"{fragment!r} not in the rendered script"
    if "lines" in expect:
        assert stage_lines(out) == expect["lines"]
    if "facts" in expect:
        assert _subset(facts_state(out), expect["facts"]) == expect["facts"]
    if "after" in expect:
        assert _subset(host_state(root), expect["after"]) == expect["after"]
    assert leftovers(root) == []

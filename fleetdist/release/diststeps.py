"""Pure: the scripts `fleetdist dist --hosts` sends (what they print: `distfacts`).

A dist on a host is a rollout like a release's, over distman's tree
(`distlayout`): three scripts built like `steps`' (the layout's paths and
every value assigned as quoted variables, the `sh/` libraries inlined,
then function calls), with fleetdist's own records in a `ReleaseLayout` at
`DEPLOY_ROOT/.fleetdist/dist` (lease, ledger, payload, tested mark):

- `probe`: take the lease, undo a switch a dead script left unconfirmed,
  print each target's versions and link (`distfacts.parse_facts`);
- `stage`: the controller chose each target's version from those facts;
  the payload (the pipeline's result, a canonical tar with one slot per
  target) is streamed only if a version must be made, verified and
  unpacked by `stage.sh`, each new version renamed into `versions/`, the
  in-place tests run in it; a failing test removes what this run made;
- `switch`: record every link and `.dist` file (`$DPEND`), move each link
  by rename, rewrite the `.dist` files, bump the epoch, confirm.

Every target path and name was checked against `config.names` where it
entered (`HostTarget.check`), and the host prints only names that pass the
same grammar, read back here through it again.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdist.config.names import dist_name_problem, dist_path_problem
from fleetdist.errors import ConfigError
from fleetdist.release import packages
from fleetdist.release.command import Sh, assign, cmd, function, raw, script, user_shell
from fleetdist.release.distlayout import DistLayout, epoch_path
from fleetdist.release.layout import ReleaseLayout
from fleetdist.release.lease import LockSpec, variables
from fleetdist.release.shlib import library
from fleetdist.release.step import (
    ACTIVATION_ENDS,
    LOCKED_END,
    RECEIVED,
    SEND,
    STAGED,
    Ledgers,
    Step,
    Upload,
)
from fleetdist.release.steps import preamble

_COMMIT = re.compile(r"(?:[0-9a-f]{4,40}(?:-dirty)?)?")
STATE = ".fleetdist/dist"  # under DEPLOY_ROOT: fleetdist's own records of its dists


def state_layout(deploy_root: str) -> ReleaseLayout:
    """Where the lease, ledger and payloads of a host's dists live."""
    return ReleaseLayout(posixpath.join(deploy_root, STATE))


@dataclass(frozen=True)
class HostTarget:
    """One dist.json target as one host sees it: its link's path there (`dest`)."""

    name: str  # the dist.json key
    shown: str  # the source as `.dist` files show it
    dest: str  # absolute, on the host (under local_root for a local host)

    @property
    def layout(self) -> DistLayout:
        return DistLayout(self.dest)

    def check(self, where: str) -> HostTarget:
        """This target, if its link name and folder may cross to a host; else a ConfigError."""
        layout = self.layout
        problem = dist_name_problem(layout.name) or dist_path_problem(layout.folder)
        if problem:
            raise ConfigError(f"{where}: target {self.name}: {problem}")
        return self


@dataclass(frozen=True)
class Placement:
    """Where one target's link goes on one host: versions/`filename`, made from the
    payload's `slot` when one is set; `info` is the `.dist` text to write (with
    `recommit`: only if there is none, else its `commit:` line becomes `commit`)."""

    target: HostTarget
    filename: str
    info: str
    slot: int | None = None  # set: make the version from the payload
    commit: str = ""
    recommit: bool = False
    # `match: content`: (filename, info) of versions the made one may equal, newest
    # first; the host links an equal one instead of making a copy (`dist_place`)
    candidates: tuple[tuple[str, str], ...] = ()

    def check(self) -> Placement:
        """This placement, if every name in it may cross to a host; else a ConfigError."""
        for name in (self.filename, *(c for c, _ in self.candidates)):
            if problem := dist_name_problem(name):
                raise ConfigError(f"target {self.target.name}: {problem}")
        if not _COMMIT.fullmatch(self.commit):  # it goes into a sed expression there
            raise ConfigError(f"target {self.target.name}: {self.commit!r} is not a commit")
        return self

    def matched(self, filename: str) -> Placement | None:
        """This placement linking the equal version `filename` the host found, if it was
        one of the candidates (nothing else a host prints is taken)."""
        for name, info in self.candidates:
            if name == filename:
                return dataclasses.replace(self, filename=name, info=info, slot=None)
        return None


def _dist_preamble(deploy_root: str, local: ReleaseLayout) -> list[Sh]:
    return [
        *preamble(local),
        assign("DPEND", posixpath.join(local.root, ".fleetdist", "switching")),
        assign("EPOCHF", epoch_path(deploy_root)),
    ]


def _user_env(host: str, root: str) -> Sh:
    """`user_env` for the in-place tests: which host, root, target and version."""
    return function(
        "user_env",
        [
            raw('export FLEETDIST_DIST_VERSION="$VER" FLEETDIST_DIST_TARGET="$TGT"'),
            cmd("export", f"FLEETDIST_HOST={host}"),
            cmd("export", f"FLEETDIST_ROOT={root}"),
        ],
        joiner="\n",
    )


def probe(
    deploy_root: str, targets: Sequence[HostTarget], lock: LockSpec, ledgers: Ledgers
) -> Step:
    """Take the lease, undo an unconfirmed switch, print each target's facts."""
    local = state_layout(deploy_root)
    parts = [
        *_dist_preamble(deploy_root, local),
        *variables(lock),
        *ledgers.variables(),
        library("lease", "dist"),
        raw("lease_take\ndist_recover"),
        *(cmd("dist_facts", str(k), t.dest) for k, t in enumerate(targets)),
    ]
    return Step("probe", script(parts), ends=((0, "probed"), LOCKED_END))


def stage(
    deploy_root: str,
    host: str,
    dist_id: str,
    lock: LockSpec,
    placements: Sequence[Placement],
    tests: Sequence[str],
    upload: Upload | None,
) -> Step:
    """Make the versions this host lacks from the payload, then run the tests in each.

    The payload is asked for (SEND) only if some version must be made and it
    is not staged from a killed run of the same payload already.
    """
    local = state_layout(deploy_root)
    made = [p for p in placements if p.slot is not None]
    guarded = [_if_made(k, p.target.layout, p.filename) for k, p in enumerate(made)]
    parts = [
        *_dist_preamble(deploy_root, local),
        *variables(lock),
        assign("ID", dist_id),
        assign("VER", ""),
        assign("TGT", ""),
        _user_env(host, deploy_root),
        function("dist_unmake", guarded, joiner="\n"),
    ]
    if upload is not None:
        parts += [
            assign("A", upload.incoming),
            assign("SHA", upload.sha256),
            assign("ASHA", upload.artifact_sha256 or upload.sha256),
            assign("FMT", upload.format),
        ]
    else:
        parts.append(assign("ASHA", "-"))
    parts += [
        library("lease", "stage", "dist"),
        raw("lease_renew\nclean_scratch\ndist_drop_payloads"),
    ]
    if upload is not None:
        parts += [
            raw(f"if ! staged; then\nsay {SEND}\nreceive\nsay {RECEIVED}"),
            packages.place(upload.format),
            raw("fi"),
        ]
    parts.append(raw(f'exec </dev/null; say {STAGED}\nrm -f "$TESTED/$ID"'))
    parts += _places(placements)
    for i, p in enumerate(placements):
        parts.append(assign("TGT", p.target.layout.name))
        for command in tests:
            why = f"in-place test failed in {p.target.layout.versions}/{p.filename}: {command}"
            failed = cmd("dist_test_failed", why)
            parts.append(_in_version(p.target.layout.versions, i, command).or_else(failed))
    parts.append(raw("mark_tested"))
    return Step("stage", script(parts), upload, ((0, "tested"), LOCKED_END))


def _places(placements: Sequence[Placement]) -> list[Sh]:
    """`dist_place` for each version to make (`made_K`: it did), `placed_I`: the version
    placement I links (an equal older one, for `match: content`)."""
    out, made = [], 0
    for i, p in enumerate(placements):
        if p.slot is None:
            out.append(assign(f"placed_{i}", p.filename))
            continue
        others = [name for name, _ in p.candidates]
        numbered = _numbered(p.target.layout, p.filename)
        out.append(cmd("dist_place", str(p.slot), p.target.dest, p.filename, numbered, *others))
        out.append(raw(f"made_{made}=$MADE placed_{i}=$PLACED"))
        made += 1
    return out


def _numbered(layout: DistLayout, filename: str) -> str:
    """`NAME.N` of the version `filename`: the number `dist_place` checks is still free."""
    version = layout.parse(filename)
    if version is None:
        raise ConfigError(f"{filename!r} is not a version of {layout.name}")
    return f"{layout.name}.{version.number}"


def _if_made(k: int, layout: DistLayout, filename: str) -> Sh:
    """Remove the version this run made for target k, and the folders it made for it
    if they are empty now, so a failed host looks as it did."""
    remove = cmd("rm", "-rf", "--", layout.version_path(filename))
    tidy = cmd("rmdir", "--", layout.versions, layout.folder)
    test = f'if [ "${{made_{k}:-0}}" = 1 ]; then'
    tail = "2>/dev/null || true; fi"
    return Sh(
        f"{test} {remove.text}; {tidy.text} {tail}", f"{test} {remove.shown}; {tidy.shown} {tail}"
    )


def _in_version(versions: str, i: int, command: str) -> Sh:
    """`dist_in VERSIONS/"$placed_i" sh -c COMMAND` (see sh/dist.sh): in the version
    placement i links, which `dist_place` may have found equal to an older one."""
    where, user = f'{cmd(versions).text}/"$placed_{i}"', user_shell(command)
    shown = f'{cmd(versions).shown}/"$placed_{i}"'
    return Sh(f"dist_in {where} {user.text}", f"dist_in {shown} {user.shown}")


def switch(
    deploy_root: str,
    dist_id: str,
    lock: LockSpec,
    placements: Sequence[Placement],
    ledgers: Ledgers,
    *,
    untested_ok: bool = False,
) -> Step:
    """Move every link (see the module docstring), then give the lease back."""
    local = state_layout(deploy_root)
    body: list[Sh] = [
        raw(
            '[ -f "$TESTED/$ID" ] || [ "$UNTESTED_OK" = 1 ] || '
            'die "dist $ID has not passed its in-place tests on this host" "$EX_NOT_TESTED"'
        ),
        *(cmd("dist_linkable", p.target.dest) for p in placements),
        raw('rm -rf -- "$DPEND.new"\nmkdir -p "$DPEND.new"\nput "$DPEND.new/id" "$ID"'),
        *(cmd("dist_hold", str(k), p.target.dest) for k, p in enumerate(placements)),
        raw('mv -T "$DPEND.new" "$DPEND"'),
    ]
    for p in placements:
        body.append(cmd("dist_link", p.target.dest, p.filename))
        if p.recommit:
            body.append(cmd("dist_recommit", p.target.layout.info, p.commit, p.info))
        else:
            body.append(cmd("dist_info", p.target.layout.info, p.info))
    body.append(raw('dist_epoch\nrm -rf -- "$DPEND"\nledger "$LOK_A" "$LOK_B" "$LOK_C" "" "$ID"'))
    body.append(raw('rm -rf -- "${REL:?}/$ID"\nrm -f "$TESTED/$ID"'))
    parts = [
        *_dist_preamble(deploy_root, local),
        *variables(lock),
        assign("ID", dist_id),
        assign("UNTESTED_OK", "1" if untested_ok else "0"),
        *ledgers.variables(),
        function("dist_switch", body, joiner="\n"),
        library("lease", "dist"),
        raw("lease_renew\ndist_recover\ndist_activate\nlease_give_back"),
    ]
    return Step("activate", script(parts), ends=ACTIVATION_ENDS)


def read_ledger(deploy_root: str) -> Step:
    """Print the host's dist ledger (nothing if it has none yet)."""
    text = raw('cat "$LEDGER" 2>/dev/null >&3 || true')
    return Step("ledger", script([*preamble(state_layout(deploy_root)), text]))


def look(deploy_root: str, targets: Sequence[HostTarget]) -> Step:
    """Each target's facts, read-only (for `status`)."""
    local = state_layout(deploy_root)
    parts = [
        *_dist_preamble(deploy_root, local),
        library("dist"),
        *(cmd("dist_facts", str(k), t.dest) for k, t in enumerate(targets)),
    ]
    return Step("look", script(parts))


def cache(
    deploy_root: str,
    src: str,
    dst: str,
    *,
    ttl: int,
    force: bool,
    dryrun: bool,
    ignorable: Sequence[str],
    wait: float = 0.0,
) -> Step:
    """Refresh the host's cache `dst` from `src` (see sh/dist.sh, `dist_cache`), holding
    the dist mutex so it never copies while a switch is under way there."""
    local = state_layout(deploy_root)
    parts = [
        *_dist_preamble(deploy_root, local),
        assign("SRC", src),
        assign("DST", dst),
        assign("IGN", " ".join(ignorable)),
        assign("WAIT", str(int(wait))),
        assign("RUN", "-"),
        library("lease", "dist"),
        raw('[ -d "$SRC" ] || die "source does not exist: $SRC"\nmkdir -p "$FD"'),
        raw("DEADLINE=$(($(date +%s) + WAIT))\nmutex_take"),
        cmd("dist_cache", src, dst, str(ttl), "1" if force else "0", "1" if dryrun else "0"),
    ]
    return Step("cache", script(parts))

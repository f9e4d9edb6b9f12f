"""Pure: a host's facts plus a release -> the scripts that move it, step by step.

Every step is one POSIX sh script (one round trip).  Scripts begin by
assigning each value to a shell variable with `assign` (the only quoting), and
refer to them as "$VAR" afterwards, so hostile paths and ids are inert.
`--dry-run` prints these very objects; a real run sends them.  Beside 0 and
1, the scripts exit LOCK_HELD (see `lease`), REVERTED or NOT_STAGED on
purpose, and the runner maps those to outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fleetdist.release import packages
from fleetdist.release.command import Sh, assign, export, fail, raw, script, user_shell
from fleetdist.release.layout import MARKER, ReleaseLayout
from fleetdist.release.lease import LockSpec, break_lock, give_back, renew, take
from fleetdist.release.shell import append_ledger, append_ledger_filled, root

REVERTED = 76
NOT_STAGED = 77
# Lines the prepare script prints as it gets past each stage, so a failure can
# be pinned on the right step without a round trip per step.
RECEIVED, STAGED, UNCHANGED = "@@received", "@@staged", "@@unchanged"
# The line after which `prepare` reads the artifact (see `transport.base.Stdin`).
SEND = "@@send"


@dataclass(frozen=True)
class Upload:
    """A payload on its way to a host: where it lands, its sha256, how it unpacks.

    `artifact_sha256` is what the release marker records: the artifact's own
    digest, which differs from `sha256` when a tar.gz is sent inflated
    (see `build.payload`).
    """

    incoming: str
    sha256: str
    format: str
    artifact_sha256: str = ""

    @classmethod
    def of(cls, ctx: Context, sha256: str, fmt: str, artifact_sha256: str) -> Upload:
        """The upload of one host's release, landing in its `incoming/` directory."""
        return cls(ctx.layout.incoming(f"{ctx.release_id}.{fmt}"), sha256, fmt, artifact_sha256)


@dataclass(frozen=True)
class Facts:
    """What a probe found on a host: the link, the previous id, staged releases.

    `releases` is newest first, as (release id, staged-at epoch seconds).
    """

    current: str | None = None
    previous: str | None = None
    releases: tuple[tuple[str, float], ...] = ()
    lock: str | None = None

    @property
    def release_ids(self) -> list[str]:
        return [rid for rid, _ in self.releases]


@dataclass(frozen=True)
class Context:
    """Everything the scripts of one host need, already resolved for that host."""

    layout: ReleaseLayout
    app: str
    release_id: str
    env_name: str = "prod"
    host: str = ""
    env: tuple[tuple[str, str], ...] = ()
    secret_env: frozenset[str] = field(default_factory=frozenset)
    test: tuple[str, ...] = ()
    before_activate: tuple[str, ...] = ()
    after_activate: tuple[str, ...] = ()
    healthcheck: str | None = None
    keep: int = 5


def _exports(ctx: Context) -> list[Sh]:
    base = [
        export("FLEETDIST_APP", ctx.app),
        export("FLEETDIST_RELEASE", ctx.release_id),
        export("FLEETDIST_ROOT", ctx.layout.root),
        export("FLEETDIST_ENV", ctx.env_name),
        export("FLEETDIST_HOST", ctx.host),
    ]
    return base + [export(k, v, secret=k in ctx.secret_env) for k, v in ctx.env]


def probe(layout: ReleaseLayout, lock: LockSpec | None) -> Sh:
    """Print the host's facts; with `lock`, take the lease first.

    Output lines: `previous ID`, `lock HOLDER`, `stat EPOCH current -> releases/ID` and
    `stat EPOCH releases/ID/MARKER` (see `parse_facts`).
    The release id is always the last field, so ids with spaces survive.
    """
    parts = [root(layout)]
    if lock is not None:
        parts += take(lock)
    return script([*parts, *_facts()])


def _facts() -> list[Sh]:
    """Print `previous`, `lock`, then the `current` link and the staged releases (one `stat`).

    Leaves "$prev" set for the rest of a script, and the working directory at "$R".
    """
    return [
        raw(
            'prev=""; [ -f "$R/.fleetdist/previous" ] && read -r prev < "$R/.fleetdist/previous" || true\n'
            'holder=""; [ -f "$R/.fleetdist/lock/holder" ] && read -r holder < "$R/.fleetdist/lock/holder" || true\n'
            'printf \'previous %s\\nlock %s\\n\' "$prev" "$holder"\n'
            # One exec for the link and every marker: "stat EPOCH current -> releases/ID" and
            # "stat EPOCH releases/ID/MARKER" lines (QUOTING_STYLE: %N unquoted), read by parse_facts.
            f"cd \"$R\" 2>/dev/null && QUOTING_STYLE=literal stat -c 'stat %.9Y %N' -- current releases/*/{MARKER} 2>/dev/null || true"
        )
    ]


def parse_facts(stdout: str) -> Facts:
    """Read a probe's output back into Facts (newest release first)."""
    current = previous = lock = None
    releases: list[tuple[str, float]] = []
    for line in stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "previous" and rest:
            previous = rest
        elif kind == "lock" and rest:
            lock = rest
        elif kind == "stat":
            epoch, _, name = rest.partition(" ")
            try:
                staged = float(epoch)
            except ValueError:
                continue
            if name.startswith("current -> "):
                current = name.removeprefix("current -> ").removeprefix("releases/") or None
                continue
            rid = name.removeprefix("releases/").removesuffix(f"/{MARKER}")
            if rid and "/" not in rid and name != rid:
                releases.append((rid, staged))
    releases.sort(key=lambda item: (-item[1], item[0]))
    return Facts(current, previous, tuple(releases), lock)


def prepare(ctx: Context, lock: LockSpec, upload: Upload, *, bundle: bool = False) -> Sh:
    """Phase 1 on one host in one round trip: lease, facts, upload if needed, tests.

    Takes the lease and prints the probe's facts (see `parse_facts`).  If the
    release is already live it prints UNCHANGED and stops.  If it is not
    staged yet, it prints SEND and only then reads stdin: the transport
    streams the artifact once it sees that line, so a host that already has
    the release is sent nothing.  The upload is written to "$A" (a full disk
    fails here, naming the free space), its sha256 (by `openssl dgst` where
    there is one, else `sha256sum`) must match, and
    `packages.place` turns it into the staged release.  Then, staged already
    or just now, the venv bundle check (`bundle`) and the recipe's `test:`
    commands run inside the release, with stdin empty, first failure stops.
    RECEIVED and STAGED lines on stdout tell the runner how far it got.
    """
    parts = [root(ctx.layout), *take(lock), assign("ID", ctx.release_id), *_facts()]
    parts += [
        raw(f'if [ "$R/current" -ef "$R/releases/$ID" ]; then echo {UNCHANGED}; exit 0; fi'),
        assign("A", upload.incoming),
        assign("SHA", upload.sha256),
        assign("ASHA", upload.artifact_sha256 or upload.sha256),
        raw(f'if [ ! -f "$R/releases/$ID/{MARKER}" ]; then\necho {SEND}'),
        raw(
            'cat > "$A" || { rm -f "$A"; echo "upload failed: $(df -Pk "$R" | awk \'NR==2 {print $4}\') KiB free on $R" >&2; exit 1; }\n'
            # OpenSSL's sha256 uses the CPU's SHA extensions: twice as fast as coreutils'.
            'got=""; if command -v openssl >/dev/null 2>&1; then got=$(openssl dgst -sha256 -r < "$A" 2>/dev/null) || got=""; fi\n'
            'if [ -z "$got" ]; then got=$(sha256sum < "$A"); fi; got=${got%% *}\n'
            'if [ "$got" != "$SHA" ]; then rm -f "$A"; echo "sha256 mismatch: uploaded $got, expected $SHA" >&2; exit 1; fi'
        ),
        raw(f"echo {RECEIVED}"),
        *packages.place(upload.format),
        raw("fi"),
        raw(f"exec </dev/null; echo {STAGED}"),
    ]
    if bundle:
        parts += packages.bundle_check()
    parts += [*_exports(ctx), raw('cd "$R/releases/$ID"')]
    for command in ctx.test:
        parts.append(user_shell(command).or_else(fail("in-place test failed: %s", command)))
    return script(parts)


def _hooks(commands: Sequence[str], where: str) -> Sh:
    """Run commands in a subshell inside `where` (a "$VAR" expression), chained by &&."""
    inner = raw(f"cd {where}")
    for command in commands:
        inner = inner.and_then(user_shell(command))
    return Sh(f"( {inner.text} )", f"( {inner.shown} )")


Ledger = tuple[str, str, str]  # a `report.ledger.template`: from/to filled in on the host


def activate(
    ctx: Context,
    lock: LockSpec | None,
    target: str,
    *,
    prune: Iterable[str] = (),
    ledger_ok: Ledger,
    ledger_reverted: Ledger,
    release: bool = False,
    seen: str | None = None,
) -> Sh:
    """Flip `current` to `target` (see `_activation`); with `release`, give the lease back.

    Giving the lease back in the same script saves the rollout a round trip
    per host.  `seen` is the release the controller last saw live there: the
    script confirms it with `test -ef` (a builtin) and reads the link itself
    only if that fails, which spares most hosts a fork and an exec.
    """
    parts = [root(ctx.layout)]
    if lock is not None:
        parts += renew(lock)
    parts += [assign("ID", target), assign("SEEN", seen or "")]
    parts.append(
        raw(
            'OLD=$SEEN\nif [ -n "$OLD" ] && [ "$R/current" -ef "$R/releases/$OLD" ]; then :\n'
            'elif [ -z "$OLD" ] && [ ! -e "$R/current" ] && [ ! -h "$R/current" ]; then :\n'
            'else OLD=$(readlink "$R/current" 2>/dev/null || true); OLD=${OLD#releases/}; fi'
        )
    )
    parts += _activation(ctx, prune, ledger_ok, ledger_reverted)
    if release and lock is not None:
        parts += give_back(lock)
    return script(parts)


def rollback(
    ctx: Context, lock: LockSpec, to: str | None, *, ledger_ok: Ledger, ledger_reverted: Ledger
) -> Sh:
    """A whole rollback in one round trip: lease, facts, target, activation, lease back.

    The target is `to`, else the host's own `previous`; the script prints the
    probe's facts and `target ID` so the controller can report from/to.
    Rolling back to the release already live prints UNCHANGED and changes
    nothing.
    """
    parts = [root(ctx.layout), *take(lock), *_facts(), assign("TO", to or "")]
    parts.append(
        raw(
            'cur=$(readlink "$R/current" 2>/dev/null || true)\n'
            "ID=${TO:-$prev}; printf 'target %s\\n' \"$ID\"\n"
            'if [ -z "$ID" ]; then echo "no previous release to roll back to" >&2; exit 1; fi\n'
            f'if [ "$ID" = "${{cur#releases/}}" ]; then echo {UNCHANGED}; else\n'
            f'[ -f "$R/releases/$ID/{MARKER}" ] || {{ echo "release \'$ID\' is not on this host" >&2; exit {NOT_STAGED}; }}'
        )
    )
    parts += [raw("OLD=${cur#releases/}"), *_activation(ctx, (), ledger_ok, ledger_reverted)]
    parts += [raw("fi"), *give_back(lock)]
    return script(parts)


def _activation(
    ctx: Context, prune: Iterable[str], ledger_ok: Ledger, ledger_reverted: Ledger
) -> list[Sh]:
    """Flip `current` from "$OLD" (set by the caller) to "$ID", run hooks and checks, prune.

    The new link is made under a temporary name and renamed over `current`
    (`mv -T` is one rename(2)), so `current` is never missing.  If an
    after_activate hook or the healthcheck fails, `current` and `previous`
    are put back as they were, the old release's after_activate hooks run
    again (to restart it), and the script exits REVERTED.  The matching
    ledger line is appended by the script itself, so a controller killed
    right after the flip still leaves the record on the host.
    """
    parts = [*_exports(ctx)]
    parts.append(
        raw(
            f'[ -f "$R/releases/$ID/{MARKER}" ] || {{ echo "release $ID is not staged here" >&2; exit {NOT_STAGED}; }}\n'
            'PREV=""; [ -f "$R/.fleetdist/previous" ] && read -r PREV < "$R/.fleetdist/previous" || true\n'
            'flip() { ln -sfn "releases/$1" "$R/.current.tmp" && mv -T "$R/.current.tmp" "$R/current"; }\n'
            'remember() { if [ -n "$1" ]; then printf \'%s\\n\' "$1" > "$R/.fleetdist/previous.tmp" && '
            'mv -f "$R/.fleetdist/previous.tmp" "$R/.fleetdist/previous"; else rm -f "$R/.fleetdist/previous"; fi; }'
        )
    )
    if ctx.before_activate:
        parts.append(
            _hooks(ctx.before_activate, '"$R/releases/$ID"').or_else(
                raw('{ echo "before_activate hook failed" >&2; exit 1; }')
            )
        )
    reverted = append_ledger_filled(ledger_reverted, "OLD", "ID")
    revert_hooks = _hooks(ctx.after_activate, '"$R/current"').text if ctx.after_activate else ":"
    parts.append(
        raw(
            "revert() {\n"
            '  if [ -n "$OLD" ]; then flip "$OLD"; else rm -f "$R/current"; fi\n'
            '  remember "$PREV"\n'
            f'  if [ -n "$OLD" ]; then {revert_hooks} || true; fi\n'
            + "".join(f"  {line.text}\n" for line in reverted)
            + f"  exit {REVERTED}\n"
            "}"
        )
    )
    # `previous` is written before the flip: a kill between the two leaves
    # previous == current (a harmless no-op rollback), never a wrong target.
    parts.append(raw('if [ "$OLD" != "$ID" ]; then remember "$OLD"; fi; flip "$ID"'))
    if ctx.after_activate:
        parts.append(
            _hooks(ctx.after_activate, '"$R/current"').or_else(
                raw(
                    '{ echo "after_activate hook failed; reverted to ${OLD:-nothing}" >&2; revert; }'
                )
            )
        )
    if ctx.healthcheck:
        parts.append(
            _hooks((ctx.healthcheck,), '"$R/current"').or_else(
                raw('{ echo "healthcheck failed; reverted to ${OLD:-nothing}" >&2; revert; }')
            )
        )
    doomed = list(prune)
    if doomed:
        parts.append(_drop_function())
    for rid in doomed:
        # The flip already happened: a prune that fails is a warning, never a failed deploy.
        parts.append(
            assign("X", rid).and_then(
                raw('drop "$X" || printf \'warning: could not prune %s\\n\' "$X" >&2')
            )
        )
    return parts + append_ledger_filled(ledger_ok, "OLD", "ID")


def _drop_function() -> Sh:
    """`drop ID`: delete a release; one an OS package installed is purged through dpkg.

    Deleting a dpkg-owned directory with `rm -rf` would leave dpkg believing
    the package is still installed, so the owner of the release's marker
    file is looked up first.
    """
    return raw(
        "drop() {\n"
        '  pkg=""\n'
        "  if command -v dpkg >/dev/null 2>&1; then\n"
        f'    pkg=$(dpkg -S "$R/releases/$1/{MARKER}" 2>/dev/null | cut -d: -f1 || true)\n'
        "  fi\n"
        '  if [ -n "$pkg" ]; then\n'
        '    if [ "$(id -u)" -eq 0 ]; then dpkg --purge "$pkg"; else sudo -n dpkg --purge "$pkg"; fi >/dev/null || return 1\n'
        "  fi\n"
        '  rm -rf -- "$R/releases/$1"\n'
        "}"
    )


def finish(layout: ReleaseLayout, lock: LockSpec | None, ledger_lines: Iterable[str]) -> Sh:
    """Append ledger lines and give the lease back (only if it is still ours)."""
    parts = [root(layout), raw('mkdir -p "$R/.fleetdist"')]
    parts += [append_ledger(line) for line in ledger_lines]
    if lock is not None:
        parts += give_back(lock)
    return script(parts)


def prune_candidates(facts: Facts, target: str, keep: int) -> list[str]:
    """Releases to delete after `target` goes live: all but `keep`, never the protected ones.

    `target` and the release it replaces (facts.current, which becomes
    `previous`) always stay, whatever `keep` says, so a rollback and a second
    rollback always have somewhere to go.  The recorded previous release is
    only protected when `current` does not move (it stays the rollback target).
    Protected releases count towards `keep`; the newest others fill the rest.
    """
    protected = {target, facts.current}
    if target == facts.current:
        protected.add(facts.previous)
    ordered = [target] + [rid for rid in facts.release_ids if rid != target]
    room = keep - sum(1 for rid in ordered if rid in protected)
    doomed: list[str] = []
    for rid in ordered:
        if rid in protected:
            continue
        if room > 0:
            room -= 1
            continue
        doomed.append(rid)
    return doomed


def read_ledger(layout: ReleaseLayout) -> Sh:
    """Print the host's ledger (nothing if it has none yet)."""
    return script([root(layout), raw('cat "$R/.fleetdist/ledger.jsonl" 2>/dev/null || true')])


def force_unlock(layout: ReleaseLayout, ledger_line: str) -> Sh:
    """Break the lease whoever holds it, and say so in the ledger."""
    return script([root(layout), *break_lock(ledger_line)])

"""Pure: a host's context plus a release -> the scripts that move it, step by step.

Every step is one POSIX sh script (one round trip), built the same way: the
layout's paths and every other value assigned as quoted shell variables
(`command.assign`, the only quoting), the recipe's commands rendered as
functions (`user_env`, `hooks_before`, `hooks_after`, `healthcheck`), the
shell libraries of `sh/` inlined (`shlib`), then a few function calls.
`--dry-run` prints these very objects; a real run sends them.  Beside 0 and
1, the scripts exit LOCK_HELD (see `lease`), REVERTED, NOT_STAGED or
NOT_TESTED on purpose, and the runner maps those to outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleetdist.release import packages
from fleetdist.release.command import (
    Sh,
    assign,
    cmd,
    export,
    function,
    raw,
    script,
    user_shell,
)
from fleetdist.release.facts import (
    Facts,
    parse_facts,
    parse_markers,
    parse_recoveries,
    parse_target,
)
from fleetdist.release.layout import ReleaseLayout
from fleetdist.release.lease import LOCK_HELD, LockSpec, variables
from fleetdist.release.shlib import library
from fleetdist.release.step import (
    ACTIVATION_ENDS,
    LOCKED_END,
    NOT_STAGED,
    NOT_TESTED,
    RECEIVED,
    REVERTED,
    SEND,
    STAGED,
    UNCHANGED,
    Context,
    Ledger,
    Ledgers,
    Step,
    Upload,
)

__all__ = [
    "NOT_STAGED",
    "NOT_TESTED",
    "RECEIVED",
    "REVERTED",
    "SEND",
    "STAGED",
    "UNCHANGED",
    "Context",
    "Facts",
    "Ledger",
    "Ledgers",
    "Step",
    "Upload",
    "parse_facts",
    "parse_markers",
    "parse_recoveries",
    "parse_target",
]


def preamble(layout: ReleaseLayout) -> list[Sh]:
    """The protocol channel, then every path of the layout and every exit code, as the
    variables `sh/` uses.  `exec 3>&1 1>&2`: from here on only `say` (and the facts)
    reach the controller's stdout; anything else any program prints goes to stderr."""
    codes = {
        "EX_LOCKED": LOCK_HELD,
        "EX_REVERTED": REVERTED,
        "EX_NOT_STAGED": NOT_STAGED,
        "EX_NOT_TESTED": NOT_TESTED,
    }
    return [
        raw("exec 3>&1 1>&2"),
        *(assign(name, path) for name, path in layout.variables()),
        *(assign(name, str(code)) for name, code in codes.items()),
        assign("ABI_FILE", packages.ABI_FILE),
    ]


def _user_env(ctx: Context) -> Sh:
    """`user_env`: export the recipe's env and FLEETDIST_* (only `run_in` calls it).

    FLEETDIST_RELEASE, FLEETDIST_PREVIOUS_RELEASE and FLEETDIST_ACTION come
    from the script's "$ID", "$OLD" and "$ACT" when a command runs, so a
    rollback's hooks (and a revert's) see the release they are about.
    """
    parts = [
        export("FLEETDIST_APP", ctx.app),
        export("FLEETDIST_ROOT", ctx.layout.root),
        export("FLEETDIST_ENV", ctx.env_name),
        export("FLEETDIST_HOST", ctx.host),
        raw('export FLEETDIST_RELEASE="$ID" FLEETDIST_PREVIOUS_RELEASE="$OLD"'),
        raw('export FLEETDIST_ACTION="$ACT"'),
        *(export(k, v, secret=k in ctx.secret_env) for k, v in ctx.env),
    ]
    return function("user_env", parts, joiner="\n")


def _in(where: str, command: str) -> Sh:
    """`run_in WHERE sh -c COMMAND` (see sh/lib.sh); `where` is a "$VAR" expression."""
    user = user_shell(command)
    return Sh(f"run_in {where} {user.text}", f"run_in {where} {user.shown}")


def _hooks(ctx: Context) -> list[Sh]:
    """The recipe's hooks and healthcheck as the functions sh/activate.sh calls."""
    check = (ctx.healthcheck,) if ctx.healthcheck else ()
    return [
        function("hooks_before", [_in('"$REL/$ID"', c) for c in ctx.before_activate]),
        function("hooks_after", [_in('"$CUR"', c) for c in ctx.after_activate]),
        function("healthcheck", [_in('"$CUR"', c) for c in check]),
    ]


def _activating(ctx: Context, ledgers: Ledgers, *, action: str, untested_ok: bool) -> list[Sh]:
    """What any script that may flip or recover `current` defines before its body."""
    return [
        assign("ACT", action),
        assign("UNTESTED_OK", "1" if untested_ok else "0"),
        *ledgers.variables(),
        _user_env(ctx),
        *_hooks(ctx),
    ]


def probe(layout: ReleaseLayout) -> Step:
    """Print the host's facts, read-only (see sh/facts.sh and `facts.parse_facts`)."""
    return Step("probe", script([*preamble(layout), library("lease", "facts"), raw("facts")]))


def prepare(ctx: Context, lock: LockSpec, upload: Upload, *, ledgers: Ledgers) -> Step:
    """Phase 1 on one host in one round trip: lease, recovery, facts, upload, tests.

    Takes the lease, undoes a flip a dead script left unconfirmed
    (`recover`), and prints the facts.  If the release is already live it
    prints UNCHANGED and stops.  If it is not staged from this artifact yet
    (`staged`), it prints SEND and only then reads stdin: the transport
    streams the payload once it sees that line, so a host that already has
    the release is sent nothing.  The
    upload's sha256 must match (`receive`), `packages.place` stages it.
    Then, staged already or just now, the recipe's shared paths are linked
    into the release (`share_dir`, `share_file`), and the venv bundle check
    (`bundle`) and the recipe's `test:` commands run inside it, stdin empty,
    first failure stops; only if all pass is the release marked tested, the
    mark activation requires.  RECEIVED and STAGED lines on stdout tell the
    runner how far it got.
    """
    parts = [
        *preamble(ctx.layout),
        *variables(lock),
        assign("ID", ctx.release_id),
        assign("OLD", ""),
        assign("A", upload.incoming),
        assign("SHA", upload.sha256),
        assign("ASHA", upload.artifact_sha256 or upload.sha256),
        assign("FMT", upload.format),
        *_activating(ctx, ledgers, action="deploy", untested_ok=False),
        library("lease", "facts", "stage", "activate"),
        raw("lease_take\nrecover\nfacts"),
        raw(f'if [ "$CID" = "$ID" ]; then say {UNCHANGED}; exit 0; fi'),
        raw('if [ "$CID" != "?" ]; then OLD=$CID; fi\nclean_scratch'),
        raw(f"if ! staged; then\nsay {SEND}\nreceive\nsay {RECEIVED}"),
        packages.place(upload.format),
        raw("fi"),
        raw(f'exec </dev/null; say {STAGED}\nrm -f "$TESTED/$ID"'),
        *(cmd("share_dir", path) for path in ctx.shared_dirs),
        *(cmd("share_file", path) for path in ctx.shared_files),
    ]
    if upload.bundle:
        parts.append(packages.bundle_check())
    for command in ctx.test:
        failed = cmd("test_failed", f"in-place test failed: {command}")
        parts.append(_in('"$REL/$ID"', command).or_else(failed))
    parts.append(raw("mark_tested"))
    return Step("prepare", script(parts), upload, ((0, "tested"), LOCKED_END))


def activate(
    ctx: Context,
    lock: LockSpec | None,
    target: str,
    *,
    ledger_ok: Ledger,
    ledger_reverted: Ledger,
    ledger_recovered: Ledger | None = None,
    action: str = "deploy",
    prune: Iterable[str] = (),
    release: bool = False,
    seen: str | None = None,
    untested_ok: bool = False,
) -> Step:
    """Flip `current` to `target` (see sh/activate.sh); with `release`, give the lease back.

    Giving the lease back in the same script saves the rollout a round trip
    per host.  `seen` is the release the controller last saw live there: the
    script confirms it with `test -ef` (a builtin) before it looks further.
    """
    ledgers = Ledgers(ledger_ok, ledger_reverted, ledger_recovered or ledger_reverted)
    parts = [*preamble(ctx.layout)]
    parts += variables(lock) if lock is not None else [assign("WAIT", "0"), assign("RUN", "-")]
    parts += [
        assign("ID", target),
        assign("SEEN", seen or ""),
        assign("PRUNE", " ".join(prune)),
        *_activating(ctx, ledgers, action=action, untested_ok=untested_ok),
        library("lease", "activate"),
    ]
    body = ["lease_renew" if lock is not None else "DEADLINE=0\nmutex_take"]
    body += ["recover", 'current_id "$SEEN"', 'OLD=$CID; if [ "$OLD" = "?" ]; then OLD=""; fi']
    body.append("activate")
    if release and lock is not None:
        body.append("lease_give_back")
    return Step("activate", script([*parts, raw("\n".join(body))]), ends=ACTIVATION_ENDS)


def rollback(
    ctx: Context,
    lock: LockSpec,
    to: str | None,
    *,
    ledgers: Ledgers,
    untested_ok: bool = False,
) -> Step:
    """A whole rollback in one round trip: lease, recovery, facts, target, activation.

    The target is `to`, else the host's own `previous`; the script prints
    the facts and `@@target ID` so the controller can report from/to.  Rolling
    back to the release already live prints UNCHANGED and changes nothing.
    The lease is given back unless the activation failed (the runner's
    `finish` does it then, after recording the failure).
    """
    parts = [
        *preamble(ctx.layout),
        *variables(lock),
        assign("TO", to or ""),
        assign("ID", ""),
        assign("OLD", ""),
        assign("PRUNE", ""),
        *_activating(ctx, ledgers, action="rollback", untested_ok=untested_ok),
        library("lease", "facts", "activate"),
        raw(
            "lease_take\nrecover\nfacts\n"
            'ID=${TO:-$PREV}; say "@@target $ID"\n'
            '[ -n "$ID" ] || die "no previous release to roll back to"\n'
            f'if [ "$ID" = "$CID" ]; then say {UNCHANGED}; else\n'
            'if [ "$CID" != "?" ]; then OLD=$CID; fi\nactivate\nfi\nlease_give_back'
        ),
    ]
    return Step("rollback", script(parts), ends=ACTIVATION_ENDS)


def take_lease(layout: ReleaseLayout, lock: LockSpec) -> Step:
    """Take (or renew) the per-app lease and keep it: a runbook holds it for its whole run,
    and its deploy steps find it their own (same run id); `finish` gives it back."""
    parts = [*preamble(layout), *variables(lock), library("lease"), raw("lease_take")]
    return Step("lease", script(parts), ends=((0, "held"), LOCKED_END))


def renew_lease(layout: ReleaseLayout, lock: LockSpec) -> Step:
    """Push out the expiry of the lease this run holds on a host still waiting for its
    batch, so a long rollout never leaves it to expire; `lease_renew` stops (EX_LOCKED)
    if another run took it over meanwhile."""
    parts = [*preamble(layout), *variables(lock), library("lease"), raw("lease_renew")]
    return Step("renew", script(parts), ends=((0, "renewed"), LOCKED_END))


def finish(layout: ReleaseLayout, lock: LockSpec | None, ledger_lines: Iterable[str]) -> Step:
    """Append ledger lines and give the lease back (only if it is still ours)."""
    parts = [*preamble(layout)]
    parts += variables(lock) if lock is not None else [assign("WAIT", "0")]
    parts += [library("lease"), raw('mkdir -p "$FD"')]
    parts += [append_ledger(line) for line in ledger_lines]
    if lock is not None:
        parts.append(raw("DEADLINE=$(($(date +%s) + WAIT))\nmutex_take\nlease_give_back"))
    return Step("finish", script(parts))


def append_ledger(line: str) -> Sh:
    """Append one JSON line (rendered on the controller) to the host's ledger."""
    return cmd("printf", "%s\\n", line).append_to('"$LEDGER"')


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


def read_ledger(layout: ReleaseLayout) -> Step:
    """Print the host's ledger (nothing if it has none yet)."""
    text = raw('cat "$LEDGER" 2>/dev/null >&3 || true')
    return Step("ledger", script([*preamble(layout), text]))


def force_unlock(layout: ReleaseLayout, ledger_line: str, wait: float = 0.0) -> Step:
    """Break the lease whoever holds it (once no script runs there), and say so in the ledger."""
    parts = [
        *preamble(layout),
        assign("WAIT", str(int(wait))),
        library("lease"),
        raw("lease_break"),
        append_ledger(ledger_line),
    ]
    return Step("unlock", script(parts), ends=(LOCKED_END, (0, "done")))

"""Pure: the format-specific steps of a release (OS package install, venv bundle checks).

A `.deb` is not unpacked by fleetdist: the host's package manager installs
it (resolving its dependencies) into `/opt/<app>/releases/<version>/`, which
already holds fleetdist's release marker, so the probe sees it as staged and
activation and rollback flip `current` exactly as for archives.  Rollback
never reinstalls: both versions stay installed side by side.

A venv bundle unpacks like a tar.gz, but before activation `check_bundle`
proves it can run here: every shebang in `venv/bin` names an interpreter
that exists on this host, and the interpreter the venv was made from is
there with the same Python ABI (SOABI) the bundle was built against.
"""

# Shell snippets read better on one line than split across Python strings.
# ruff: noqa: E501

from __future__ import annotations

from fleetdist.release import steps
from fleetdist.release.command import Sh, assign, raw, script
from fleetdist.release.layout import MARKER
from fleetdist.release.steps import Context, LockSpec

ABI_FILE = ".fleetdist-abi"


def unpack(fmt: str, ctx: Context, lock: LockSpec, incoming: str, sha256: str) -> Sh:
    """The step that turns an uploaded artifact into a staged release, by format."""
    if fmt == "deb":
        return install_deb(ctx, lock, incoming, sha256)
    return steps.unpack(ctx, lock, incoming, sha256)


def install_deb(ctx: Context, lock: LockSpec, incoming: str, sha256: str) -> Sh:
    """Verify the upload, `apt-get install` it, and check it installed this release dir."""
    return script(
        [
            assign("R", ctx.layout.root),
            *steps._still_held(lock),
            assign("ID", ctx.release_id),
            assign("A", incoming),
            assign("SHA", sha256),
            raw(
                'got=$(sha256sum < "$A" | cut -d" " -f1)\n'
                'if [ "$got" != "$SHA" ]; then rm -f "$A"; echo "sha256 mismatch: uploaded $got, expected $SHA" >&2; exit 1; fi'
            ),
            raw(
                "command -v apt-get >/dev/null 2>&1 || "
                '{ echo "no apt-get here: .deb artifacts need a Debian-family host" >&2; exit 1; }\n'
                # Not root: sudo without a password prompt, or fail fast.
                'if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo -n"; fi\n'
                'LOG="$R/.fleetdist/apt.log"'
            ),
            # apt-get resolves the package's dependencies; "$A" is an absolute path, as it requires.
            raw(
                "if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "
                '--no-install-recommends "$A" > "$LOG" 2>&1; then\n'
                '  tail -n 5 "$LOG" >&2; echo "apt-get install failed (full log: $LOG)" >&2; exit 1\n'
                "fi"
            ),
            raw(
                f'[ -f "$R/releases/$ID/{MARKER}" ] || {{ echo "the package did not install '
                '$R/releases/$ID: packages install under /opt/<app>, so deploy_root must be that" >&2; exit 1; }\n'
                'rm -f "$A"'
            ),
        ]
    )


def check_bundle(ctx: Context) -> Sh:
    """Fail (listing every problem) unless the venv bundle's interpreters fit this host."""
    return script(
        [
            assign("R", ctx.layout.root),
            assign("ID", ctx.release_id),
            raw('D="$R/releases/$ID"; bad=0'),
            raw(
                'for f in "$D"/venv/bin/*; do\n'
                '  if [ -L "$f" ] || [ ! -f "$f" ] || [ "$(head -c 2 "$f")" != "#!" ]; then continue; fi\n'
                '  i=$(head -n 1 "$f" | cut -c3- | sed "s/^[[:space:]]*//; s/[[:space:]].*//")\n'
                '  if [ ! -x "$i" ]; then\n'
                '    echo "shebang of ${f#"$D"/} names $i, not on this host (bundle built for another root?)" >&2; bad=1\n'
                "  fi\n"
                "done"
            ),
            raw(
                'home=$(sed -n "s/^home *= *//p" "$D/venv/pyvenv.cfg" 2>/dev/null || true)\n'
                f'want=$(cat "$D/{ABI_FILE}" 2>/dev/null || echo unknown)\n'
                'if [ ! -x "$home/python3" ]; then\n'
                '  echo "venv interpreter $home/python3 is missing on this host" >&2; bad=1\n'
                "else\n"
                '  got=$("$home/python3" -c "import sysconfig; print(sysconfig.get_config_var(\'SOABI\'))" 2>/dev/null || echo unknown)\n'
                '  if [ "$got" != "$want" ]; then echo "python ABI mismatch: bundle built for $want, host $home/python3 is $got" >&2; bad=1; fi\n'
                "fi\n"
                '"$D/venv/bin/python" -c "import sys" || { echo "venv/bin/python does not start here" >&2; bad=1; }\n'
                'exit "$bad"'
            ),
        ]
    )

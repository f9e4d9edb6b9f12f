"""Pure: how an uploaded artifact becomes a staged release, by format, on the host.

Fragments over the variables the prepare script sets (`$R` root, `$ID`
release id, `$A` the verified upload, `$ASHA` the artifact's sha256). An
archive is unpacked into a staging directory that gets its marker and is
then renamed into `releases/`, so a half-unpacked release never looks
staged. A `.deb` is not unpacked by fleetdist: the host's package manager
installs it (resolving its dependencies) into
`/opt/<app>/releases/<version>/`, which already holds fleetdist's release
marker, so activation and rollback flip `current` exactly as for archives,
and rollback never reinstalls.

A venv bundle unpacks like a tar.gz, but before the tests `bundle_check`
proves it can run here: every shebang in `venv/bin` names an interpreter
that exists on this host, and the interpreter the venv was made from is
there with the same Python ABI (SOABI) the bundle was built against.
"""

# Shell snippets read better on one line than split across Python strings.
# ruff: noqa: E501

from __future__ import annotations

from fleetdist.release.command import Sh, raw
from fleetdist.release.layout import MARKER

ABI_FILE = ".fleetdist-abi"


def place(fmt: str) -> list[Sh]:
    """Turn the verified upload "$A" into the staged release "$R/releases/$ID".

    `fmt` "tar" is a tar.gz the controller inflated (see `build.payload`).
    """
    return _install_deb() if fmt == "deb" else _unpack_tar(gzip=fmt != "tar")


def _unpack_tar(*, gzip: bool) -> list[Sh]:
    """Unpack into staging, mark it, rename it into place.

    The archive was checked on the controller (no absolute paths, no `..`,
    no escaping links) and its sha256 on the host, so these are exactly the
    checked bytes; GNU tar's own refusal of `..` stays on as a second guard.
    """
    return [
        raw('S="$R/.fleetdist/staging/$ID"; D="$R/releases/$ID"'),
        raw('if [ -e "$S" ]; then rm -rf "$S"; fi; mkdir -p "$S"'),
        raw(
            f'tar -x{"z" if gzip else ""}f "$A" -C "$S" --no-same-owner || '
            '{ rm -rf "$S" "$A"; echo "unpack failed (disk full?): $(df -h "$R" | tail -1)" >&2; exit 1; }'
        ),
        raw(f'printf \'%s %s\\n\' "$ID" "$ASHA" > "$S/{MARKER}"'),
        raw(f'if [ -e "$D" ] && [ ! -f "$D/{MARKER}" ]; then rm -rf "$D"; fi'),
        raw('mv -T "$S" "$D"; rm -f "$A"'),
    ]


def _install_deb() -> list[Sh]:
    """`apt-get install` the upload, and check it installed this release dir."""
    return [
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


def bundle_check() -> list[Sh]:
    """Fail (listing every problem) unless the venv bundle's interpreters fit this host."""
    return [
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
            # A fragment: stop the prepare script only when something is wrong.
            'if [ "$bad" -ne 0 ]; then exit 1; fi'
        ),
    ]

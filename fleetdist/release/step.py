"""The values host steps are made of: Step, the per-host Upload, the host Context,
the ledger lines a script may append, and the exit codes and stage lines of the
protocol.  `steps` builds them; the rollout sends them; `--dry-run` prints them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from fleetdist.config.schema import Host
from fleetdist.release.command import Sh, as_user, assign
from fleetdist.release.facts import BECAME
from fleetdist.release.layout import ReleaseLayout
from fleetdist.release.lease import LOCK_HELD

REVERTED = 76
NOT_STAGED = 77
NOT_TESTED = 78
# Lines the prepare script prints as it gets past each stage, so a failure can
# be pinned on the right step without a round trip per step (`facts.MARKERS`).
RECEIVED, STAGED, UNCHANGED = "@@received", "@@staged", "@@unchanged"
# The line after which `prepare` reads the artifact (see `transport.base.Stdin`).
SEND = "@@send"


@dataclass(frozen=True)
class Upload:
    """What one host is sent for its release: from where, where it lands, how it is
    verified (its sha256) and placed (its format, and whether the placed release is a
    venv bundle whose interpreters must be checked there).

    A value per host, so a host can be sent something else than its neighbour
    (the full payload today) without the orchestrator knowing more than
    "stream `source` after the host asks".  `artifact_sha256` is what the
    release marker records: the artifact's own digest, which differs from
    `sha256` because hosts are sent fleetdist's canonical re-serialisation
    of an archive (see `shipping.payload`).
    """

    incoming: str
    sha256: str
    format: str
    artifact_sha256: str = ""
    source: Path | None = None
    note: str = ""  # what `source` is, for --dry-run
    bundle: bool = False

    @classmethod
    def of(
        cls,
        ctx: Context,
        sha256: str,
        fmt: str,
        artifact_sha256: str,
        *,
        source: Path | None = None,
        note: str = "",
        bundle: bool = False,
    ) -> Upload:
        """The upload of one host's release, landing in its `incoming/` directory."""
        incoming = ctx.layout.incoming(f"{ctx.release_id}.{fmt}")
        return cls(incoming, sha256, fmt, artifact_sha256, source, note, bundle)

    def describe(self) -> str:
        """One comment line for --dry-run: what is streamed, and when."""
        what = f"{self.source}{', ' + self.note if self.note else ''}"
        return f"# stdin: {what} (sent only after the host prints {SEND})"


@dataclass(frozen=True)
class Step:
    """One script a host runs, as a value: the rollout sends it, `--dry-run` prints it.

    `upload` is what the host reads on stdin once it prints SEND (None: only
    the secrets head, see `command.script`); `ends` are the exit codes the
    script ends with on purpose, each a meaning the runner maps to an
    outcome (anything else is a failure of the step).  Output lines follow
    the protocol of `facts`: stage markers (`@@...`) and fact records.
    """

    name: str
    script: Sh
    upload: Upload | None = None
    ends: tuple[tuple[int, str], ...] = ((0, "done"),)

    @property
    def text(self) -> str:
        return self.script.text

    @property
    def shown(self) -> str:
        return self.script.shown

    @property
    def stdin_head(self) -> bytes:
        return self.script.stdin_head

    def for_host(self, host: Host) -> Step:
        """This step as `host` runs it: through `sudo -n -u USER` when its inventory
        says `become` (see `command.as_user`), else unchanged."""
        if not host.become:
            return self
        wrapped = as_user(self.script, host.become_user, mark=BECAME)
        return dataclasses.replace(self, script=wrapped)

    def render(self) -> str:
        """What --dry-run prints: the script as shown (secrets masked), and its stdin."""
        head = f"{self.upload.describe()}\n" if self.upload and self.upload.source else ""
        return head + self.shown


LOCKED_END = (LOCK_HELD, "locked")
ACTIVATION_ENDS = (
    (0, "activated"),
    LOCKED_END,
    (REVERTED, "reverted"),
    (NOT_STAGED, "not staged"),
    (NOT_TESTED, "not tested"),
)


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
    shared_dirs: tuple[str, ...] = ()
    shared_files: tuple[str, ...] = ()


Ledger = tuple[str, str, str]  # a `report.ledger.template`: from/to filled in on the host


@dataclass(frozen=True)
class Ledgers:
    """The ledger lines an activating script may append: ok, reverted, recovered."""

    ok: Ledger
    reverted: Ledger
    recovered: Ledger

    def variables(self) -> list[Sh]:
        named = {"LOK": self.ok, "LREV": self.reverted, "LREC": self.recovered}
        return [
            assign(f"{prefix}_{part}", piece)
            for prefix, line in named.items()
            for part, piece in zip("ABC", line, strict=True)
        ]

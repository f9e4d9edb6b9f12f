"""The FleetdistError tree.

Every message is one line that names the file, host or field at fault, because
runbooks grep logs and operators read them at 3am.  Each class carries the exit
code the CLI turns it into, so no caller has to map exceptions by hand.
"""

from __future__ import annotations


class ExitCode:
    """Every exit code fleetdist documents (README, "Exit codes"), in one place."""

    OK = 0
    FAILED = 1
    USAGE = 2
    ABORTED = 3
    LOCKED = 4
    UNREACHABLE = 5


class FleetdistError(Exception):
    """Base of every error fleetdist raises on purpose."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))


class ConfigError(FleetdistError):
    """A recipe, inventory, env file or flag is wrong: `file: path.to.field: reason`."""

    @classmethod
    def at(cls, source: str, field: str, reason: str) -> ConfigError:
        where = f"{source}: {field}" if field else source
        return cls(f"{where}: {reason}")


class UsageError(FleetdistError):
    """A flag or argument is wrong (exit 2), reported like every other error."""


class ConfirmError(UsageError):
    """The inventory says `confirm: true` and the run was not confirmed (`--yes`).

    `word` is what an operator at a terminal may type instead (the inventory's name).
    """

    def __init__(self, message: str, word: str) -> None:
        super().__init__(message)
        self.word = word


class HostPatternError(ConfigError):
    """A host pattern such as `web[3-1]` cannot be expanded."""


class ArtifactError(FleetdistError):
    """An artifact is missing, corrupt, or would unpack outside its release."""


class BuildError(FleetdistError):
    """A build step failed; the message ends with the tail of its log."""

    exit_code = ExitCode.FAILED


class HostError(FleetdistError):
    """A host answered, but the script that reads it failed (exit 1)."""

    exit_code = ExitCode.FAILED


class TransportError(FleetdistError):
    """A host cannot be reached or dropped the connection."""

    exit_code = ExitCode.UNREACHABLE


class HostKeyError(TransportError):
    """A host presented an unknown or changed key under strict checking."""

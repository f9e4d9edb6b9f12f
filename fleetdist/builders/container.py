"""Clean, throw-away build containers (Docker), removed whatever happens.

Each build runs one `docker run --rm` with a generated name and a label, the
inputs mounted read-only and one output directory mounted read-write.  The
`finally` block force-removes the container by name as well, so a timeout,
a Ctrl-C or a crash of the controller between `run` and `--rm` still leaves
nothing behind (`docker ps -a --filter label=org.fleetdist.build` is the
check).  Docker missing, not running, or the machine's image absent are
reported with what to do about it, before anything starts.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from fleetdist.builders.buildlog import BuildLog
from fleetdist.config.buildspec import Machine
from fleetdist.errors import BuildError

LABEL = "org.fleetdist.build"
START_HINT = "start it with `sudo systemctl start docker` (or `sudo scripts/docker-up.sh`)"


@dataclass(frozen=True)
class Mount:
    host: Path
    path: str
    readonly: bool = True

    def arg(self) -> str:
        return f"type=bind,source={self.host},target={self.path}" + (
            ",readonly" if self.readonly else ""
        )


def _docker(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BuildError(
            "docker: command not found; install Docker (Debian: `apt-get install docker.io`)"
        ) from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"docker {args[0]}: no answer within {timeout:g}s; {START_HINT}") from None


def check_docker() -> None:
    """Raise BuildError when no Docker engine answers, saying how to start one."""
    proc = _docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        why = (proc.stderr.strip().splitlines() or ["no server version"])[-1]
        raise BuildError(f"Docker is not running ({why}); {START_HINT}")


def image_id(machine: Machine) -> str:
    """The local image's id; a missing image is a BuildError naming the machine and the fix."""
    proc = _docker("image", "inspect", "--format", "{{.Id}}", machine.image)
    if proc.returncode != 0:
        raise BuildError(
            f"build machine {machine.name}: image {machine.image} is missing "
            f"(no registry is used, images are built locally); {machine.hint}"
        )
    return proc.stdout.strip()


def run_container(
    image: str,
    command: list[str],
    *,
    mounts: list[Mount],
    env: dict[str, str],
    log: BuildLog,
    labels: dict[str, str],
    timeout: float,
) -> None:
    """Run `command` in a fresh container of `image`; always remove the container."""
    name = f"fleetdist-build-{uuid.uuid4().hex[:12]}"
    argv = ["docker", "run", "--rm", "--name", name, "--label", f"{LABEL}=1"]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{LABEL}.{key}={value}"]
    for mount in mounts:
        argv += ["--mount", mount.arg()]
    for key, value in sorted(env.items()):
        argv += ["--env", f"{key}={value}"]
    try:
        log.run([*argv, image, *command], what=f"build in container {name}", timeout=timeout)
    finally:
        # --rm covers a normal exit; this covers timeouts, interrupts and docker client crashes.
        _docker("rm", "--force", "--volumes", name, timeout=120)

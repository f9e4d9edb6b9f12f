"""The throwaway fleetdist project both sides deploy: env/, the hello app, a recipe,
per-round inventories, and the two release artifacts built from it.

The app carries a random payload by default, so the artifacts are incompressible:
about the same bytes go over the wire for fleetdist (which sends such a tar.gz
inflated, see fleetdist/shipping/payload.py) and for the OpenSSH reference.  With
`--payload text` it carries made-up words instead, which gzip shrinks to
less than half, as it does source code: then both sides send the same tar.gz.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from containers import Fleet
from shell import REPO, sh


class Project:
    """A throwaway fleetdist project: env/, recipes/hello.yaml, app/ with a random payload."""

    def __init__(
        self, root: Path, fleet: Fleet, payload_mb: float, with_tests: bool, kind: str = "random"
    ) -> None:
        self.root, self.fleet, self.payload_mb, self.kind = root, fleet, payload_mb, kind
        shutil.copytree(REPO / "env", root / "env")
        shutil.copytree(
            REPO / "examples" / "hello", root / "app",
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )  # fmt: skip
        (root / "recipes").mkdir()
        import yaml

        doc: dict[str, Any] = {
            "app": "hello",
            "version": "{HELLO_VERSION}",
            "source": {"path": "../app"},
            "deploy_root": "{DEPLOY_BASE}/hello",
            "keep": 3,
        }
        if with_tests:  # what tests/integration/project.py does: in-place tests + healthcheck
            doc["test"] = ["python3 -m unittest discover -s tests -t . -q"]
            doc["healthcheck"] = "python3 -m hello --version"
        (root / "recipes" / "hello.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        self.inventories = root / "inventories"
        self.inventories.mkdir()

    def inventory(self, n: int, deploy_base: str) -> Path:
        """Same shape as tests/integration/fleet.py `Fleet.inventory`, first n nodes."""
        import yaml

        nodes = self.fleet.nodes[:n]
        doc = {
            "defaults": {
                "transport": "ssh",
                "user": "root",
                "identity_file": str(self.fleet.client_key),
                "known_hosts": str(self.fleet.known_hosts),
                "connect_timeout": 10,
                "command_timeout": 300,
                "vars": {"DEPLOY_BASE": deploy_base},
            },
            "groups": {"bench": {"hosts": [nd.name for nd in nodes]}},
            "hosts": {nd.name: {"hostname": "127.0.0.1", "port": nd.port} for nd in nodes},
        }
        path = self.inventories / f"{deploy_base.strip('/').replace('/', '_')}.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def build(self, version: str, env: dict[str, str], py: str) -> dict[str, Any]:
        """`fleetdist build` with a fresh payload; the tar.gz artifact's JSON plus build_s."""
        payload = self.root / "app" / "hello" / "payload.bin"
        payload.write_bytes(self.payload_bytes(int(self.payload_mb * 1024 * 1024)))
        argv = [py, "-m", "fleetdist.cli", "build", "--project", str(self.root), "--json"]
        t0 = time.monotonic()
        proc = sh(argv, 300, check=False, env={**env, "HELLO_VERSION": version}, cwd=self.root)
        if proc.returncode != 0:
            raise RuntimeError(f"fleetdist build failed ({proc.returncode}): {proc.stderr[-2000:]}")
        artifact: dict[str, Any] = next(
            a for a in json.loads(proc.stdout)["artifacts"] if a["format"] == "tar.gz"
        )
        artifact["build_s"] = round(time.monotonic() - t0, 3)
        return artifact

    def payload_bytes(self, size: int) -> bytes:
        """`size` fresh bytes: random, or lines of words from a random 4096-word vocabulary."""
        if self.kind == "random":
            return os.urandom(size)
        rng = random.Random(os.urandom(16))
        letters = "abcdefghijklmnopqrstuvwxyz_"
        vocab = ["".join(rng.choices(letters, k=rng.randint(2, 12))) for _ in range(4096)]
        words = rng.choices(vocab, k=size // 6)
        lines = (" ".join(words[i : i + 10]) for i in range(0, len(words), 10))
        return "\n".join(lines).encode()[:size].ljust(size, b"\n")

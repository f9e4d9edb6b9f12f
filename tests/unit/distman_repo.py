"""A small git repo with a dist.json, and ways to run `fleetdist dist` and real distman on it.

Commits use fixed dates, so two copies built by the same steps have the same
hashes and their deployed trees can be compared name for name.
"""

from __future__ import annotations

import dis
import importlib.util
import json
import marshal
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetdist.cli import main

MAGIC_NUMBER = importlib.util.MAGIC_NUMBER

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}

DIST_JSON: dict[str, Any] = {
    "author": "team@example.com",
    "version": 1,
    "pipeline": {
        "tokens": {
            "func": "distman.transform.replace_tokens",
            "options": {"tokens": {"__APP__": "{APP_NAME}", "__ENV__": "{ENV}"}},
        }
    },
    "targets": {
        "tools": {"source": "tools", "destination": "{DEPLOY_ROOT}/etc/tools", "pipeline": {}},
        "hello": {
            "source": "bin/hello.sh",
            "destination": "{DEPLOY_ROOT}/bin/hello",
            "pipeline": {"mode": {"func": "distman.transform.chmod", "options": {"mode": "750"}}},
        },
        "pk": {"source": "pkgs/*/*.txt", "destination": "{DEPLOY_ROOT}/mm/%1-%2", "pipeline": {}},
        "doc": {
            "source": "doc.txt",
            "destination": "{DEPLOY_ROOT}/share/{APP_NAME}/doc.txt",
            "options": {"match": "content"},
            "pipeline": {"up": {"script": "tr a-z A-Z < {input} > {output}"}},
        },
        "style": {
            "source": "web/style.css",
            "destination": "{DEPLOY_ROOT}/web/style.css",
            "pipeline": {"min": {"func": "distman.transform.minify"}},
        },
        "lib": {
            "source": "lib/mod.py",
            "destination": "{DEPLOY_ROOT}/lib/mod.pyc",
            "pipeline": {"pyc": {"func": "distman.transform.byte_compile"}},
        },
        "later": {
            "source": "not/yet.cfg",
            "destination": "{DEPLOY_ROOT}/etc/later",
            "options": {"ignore_missing": True},
            "pipeline": {},
        },
    },
}

DISTMAN_ENV = """\
#!/usr/bin/env envstack
all: &all
  APP_NAME: fixture
  DEPLOY_ROOT: ${ROOT}/${ENV}
linux:
  <<: *all
"""


@dataclass
class Done:
    code: int
    err: str


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "--short=7", "HEAD")


def write(path: Path, text: str | bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    if mode is not None:
        path.chmod(mode)


def make_repo(repo: Path, dist: dict[str, Any] | None = None) -> Path:
    """The fixture repo, committed once on `main`."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    write(repo / "dist.json", json.dumps(DIST_JSON if dist is None else dist, indent=2))
    write(repo / "distman.env", DISTMAN_ENV)
    write(repo / ".gitignore", "build/\n")
    write(repo / "tools" / "app.cfg", "app=__APP__\r\nenv=__ENV__\r\n")
    write(repo / "tools" / "sub" / "deep.cfg", "deep\n")
    write(repo / "tools" / ".hidden", "skipped\n")
    write(repo / "tools" / "old.bak", "skipped\n")
    write(repo / "tools" / "blob.bin", b"\x00\x01\r\n\x02")
    (repo / "tools" / "link.cfg").symlink_to("app.cfg")
    write(repo / "bin" / "hello.sh", "#!/bin/sh\necho hello\n", 0o755)
    write(repo / "pkgs" / "a" / "one.txt", "one\n")
    write(repo / "pkgs" / "b" / "two.txt", "two\n")
    write(repo / "doc.txt", "docs v1\n")
    write(repo / "web" / "style.css", "/* c */\nbody {\n  color : red ;\n}\n")
    write(repo / "lib" / "mod.py", "X = 1\n")
    commit(repo, "first")
    return repo


def isolate(monkeypatch: Any, root: Path) -> None:
    """Where distman and fleetdist write logs and deploy: all under `root`."""
    monkeypatch.setenv("LOG_DIR", str(root / "log"))
    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("USER", "tester")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # .pyc by hash: equal across copies
    for name in ("DEPLOY_ROOT", "CACHE_ROOT", "MAX_VERSIONS", "IGNORE_MISSING", "KEEP_VERSIONS"):
        monkeypatch.delenv(name, raising=False)


def fleetdist(repo: Path, *args: str, capsys: Any, root: Path | None = None) -> Done:
    """`fleetdist dist ARGS` in `repo` (in process), with ROOT set to `root`."""
    old, saved = Path.cwd(), os.environ.get("ROOT")
    os.chdir(repo)
    if root is not None:
        os.environ["ROOT"] = str(root)
    try:
        capsys.readouterr()
        code = main(["dist", *args])
    finally:
        os.chdir(old)
        if saved is None:
            os.environ.pop("ROOT", None)
        else:
            os.environ["ROOT"] = saved
    return Done(code, capsys.readouterr().err)


def distman(repo: Path, *args: str, root: Path) -> Done:
    """Real distman 0.8.4, as teams run it: `envstack distman -- dist ARGS`."""
    envstack = Path(sys.executable).with_name("envstack")
    done = subprocess.run(
        [str(envstack), "distman", "--", sys.executable, "-m", "distman.cli", "dist", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ROOT": str(root), "ENVPATH": str(repo)},
        timeout=120,
    )
    return Done(done.returncode, done.stderr + done.stdout)


def snapshot(root: Path, repo: Path) -> dict[str, tuple[str, str]]:
    """Every path under `root`: (type and mode, content or link text), paths normalised."""
    tree: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.startswith("log"):
            continue
        if path.is_symlink():
            tree[rel] = ("l", os.readlink(path))
        elif path.is_dir():
            tree[rel] = (f"d{path.stat().st_mode & 0o777:o}", "")
        else:
            data = path.read_bytes()
            try:
                text = data.decode("utf-8").replace(str(repo), "<repo>")
            except UnicodeDecodeError:
                text = _bytecode(data) if data[:4] == MAGIC_NUMBER else data.hex()
            if rel.endswith(".distman/epoch"):
                text = "<epoch>"
            tree[rel] = (f"f{path.stat().st_mode & 0o777:o}", text)
    return tree


def _bytecode(data: bytes) -> str:
    """A .pyc as its header and its disassembly: marshal's reference flags depend on what
    the writing process had interned, so equal code may differ in a byte."""
    return data[:16].hex() + _code_text(marshal.loads(data[16:]))


def _code_text(code: types.CodeType) -> str:
    nested = [_code_text(c) for c in code.co_consts if isinstance(c, types.CodeType)]
    return "\n".join([code.co_filename, code.co_name, dis.Bytecode(code).dis(), *nested])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated HOME/LOG_DIR; DEPLOY_ROOT is tmp/deploy."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("DEPLOY_ROOT", str(tmp_path / "deploy"))
    return tmp_path / "deploy"


def small_repo(path: Path, targets: dict[str, Any], **top: Any) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    write(path / "dist.json", json.dumps({"author": "a@b", "targets": targets, **top}))
    return path


def target(source: str, dest: str, **more: Any) -> dict[str, Any]:
    return {"source": source, "destination": "{DEPLOY_ROOT}/" + dest, **more}

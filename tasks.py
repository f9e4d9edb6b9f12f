"""The `inv` door and the developers' chores.

User tasks (`inv build`, `inv deploy`, `inv rollback`, `inv status`) call the
same core as `fleetdist` and `fab`; deploy/rollback/status are the fabfile's
own tasks, so their flags cannot drift.  Chores (`inv test`, `inv lint`,
`inv bench`) live here too.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

import fabfile
from fleetdist import cli
from fleetdist.doors import run_verb


@task
def build(c, recipe=None, formats=None, env=None, json=False):
    """Build any subset of tar.gz,tar.bz2,tar.xz,zip,wheel,venv,pex,deb,rpm, in parallel."""
    run_verb("build", recipe=recipe, formats=formats, env=env, json=json)


@task
def init(c, dir=".", force=False, json=False):
    """Write a commented recipe, a local fleet and env files for the app in --dir."""
    flags = [*(["--force"] if force else []), *(["--json"] if json else [])]
    code = cli.main(["init", *flags, "--", dir])
    if code:
        raise Exit(code=code)


@task
def test(c, fast=False):
    """Run the test suite (`--fast`: unit tests only, no Docker)."""
    marker = "-m 'not integration and not docker'" if fast else ""
    c.run(f"python -m pytest {marker}", pty=False)


@task
def lint(c):
    """ruff (lint + format check), mypy --strict, shellcheck: what .ci/run checks first."""
    c.run(shlex.quote(str(Path(__file__).parent / "scripts" / "lint.sh")), pty=False)


@task
def bench(c, sizes="10,50,100"):
    """Deploy/rollback timings against plain OpenSSH (see bench/README.md)."""
    c.run(f"python bench/fleet_bench.py --sizes {sizes}")


ns = Collection(init, build, fabfile.deploy, fabfile.rollback, fabfile.status, fabfile.history,
                fabfile.exec_, fabfile.run_, fabfile.releases, test, lint, bench)  # fmt: skip

"""The builders' shell (sh/*.sh) with hostile values: inert, and doing its job.

The maintainer scripts of `flip_current: postinst` packages run as root on
hosts; the build script runs every test command of the recipe.  Each value
below would run `touch PWNED` if it ever reached a shell as text instead of
as a quoted variable.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fleetdist.builders import ospkg
from fleetdist.builders.machines import DEFAULT_SCRIPT, build_script
from fleetdist.release.shlib import source

EVIL_ROOT = 'r oot/it\'s "q" $(touch PWNED) `touch PWNED`; touch PWNED/hello'
EVIL_VERSION = "1.0 $(touch PWNED) 'x\" `touch PWNED` -rf"
OLD = "0.9.0"
MARKER = ".fleetdist-release"


def pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("PWNED")]


def run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a generated script the way dpkg does: `sh FILE`, as a file of its own."""
    path = cwd / "script.sh"
    path.write_text(script)
    result = subprocess.run(["sh", str(path)], cwd=cwd, capture_output=True, text=True)
    path.unlink()
    return result


def maintainer(key: str, root: Path, version: str, user: Path | None = None) -> str:
    """The maintainer script `key` exactly as `ospkg.write_scripts` writes it."""
    return ospkg._script(ospkg.flip_scripts(str(root), version)[key], user)


def release(root: Path, rid: str) -> None:
    """A release as a package installs it: its directory with fleetdist's marker."""
    (root / "releases" / rid).mkdir(parents=True)
    (root / "releases" / rid / MARKER).write_text(f"{rid} package\n")


@pytest.fixture
def host(tmp_path: Path) -> tuple[Path, Path]:
    """(cwd, root): a hostile app root whose `current` is OLD, and a cwd for PWNED to land in."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / EVIL_ROOT
    release(root, OLD)
    (root / "current").symlink_to(f"releases/{OLD}")
    return cwd, root


def test_maintainer_scripts_share_the_host_engines_flip() -> None:
    scripts = ospkg.flip_scripts("/opt/hello", "1.0.0")
    for text in scripts.values():
        assert source("activate") in text and source("lib") in text
        assert "ID=1.0.0" in text.splitlines()
    assert 'flip "$ID"' in scripts["postinstall"]


def test_postinstall_with_hostile_root_and_version_flips_and_runs_nothing(
    host: tuple[Path, Path], tmp_path: Path
) -> None:
    cwd, root = host
    release(root, EVIL_VERSION)
    result = run(maintainer("postinstall", root, EVIL_VERSION), cwd)
    assert result.returncode == 0, result.stderr
    assert os.readlink(root / "current") == f"releases/{EVIL_VERSION}"
    assert (root / ".fleetdist" / "previous").read_text() == f"{OLD}\n"
    assert not (root / ".current.tmp").exists()
    assert pwned(tmp_path) == []


def test_postremove_with_hostile_version_flips_back_and_runs_nothing(
    host: tuple[Path, Path], tmp_path: Path
) -> None:
    cwd, root = host
    release(root, EVIL_VERSION)
    assert run(maintainer("postinstall", root, EVIL_VERSION), cwd).returncode == 0
    # dpkg removes the package's files before postrm runs.
    (root / "releases" / EVIL_VERSION / MARKER).unlink()
    (root / "releases" / EVIL_VERSION).rmdir()
    result = run(maintainer("postremove", root, EVIL_VERSION), cwd)
    assert result.returncode == 0, result.stderr
    assert os.readlink(root / "current") == f"releases/{OLD}"
    assert not (root / ".fleetdist" / "previous").exists()
    assert pwned(tmp_path) == []


def test_postremove_leaves_current_alone_when_it_names_another_release(
    host: tuple[Path, Path], tmp_path: Path
) -> None:
    cwd, root = host
    result = run(maintainer("postremove", root, EVIL_VERSION), cwd)
    assert result.returncode == 0, result.stderr
    assert os.readlink(root / "current") == f"releases/{OLD}"
    assert pwned(tmp_path) == []


def test_postremove_of_the_last_release_removes_current(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "releases").mkdir(parents=True)
    (root / "current").symlink_to("releases/1.0.0")
    result = run(maintainer("postremove", root, "1.0.0"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert not os.path.lexists(root / "current")


def test_recipe_script_after_the_flip_sees_none_of_its_variables(tmp_path: Path) -> None:
    root = tmp_path / "app"
    release(root, "1.0.0")
    user = tmp_path / "postinst.sh"  # the recipe's own postinstall
    user.write_text('echo "R=${R:-unset} ID=${ID:-unset}"\n')
    result = run(maintainer("postinstall", root, "1.0.0", user), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "R=unset ID=unset\n"
    assert os.readlink(root / "current") == "releases/1.0.0"


HOSTILE_ITEMS = [
    "$(touch PWNED)",
    "`touch PWNED`; touch PWNED",
    "line one\nline two\n",
    "back\\slash \\n \\\\n \\c %s %b",
    'it\'s "q"',
    "-rf",
]


def test_build_script_lists_arrive_item_by_item_and_inert(tmp_path: Path) -> None:
    """The real assignments and sh/items.sh decode every item as it was, running none."""
    values: dict[str, str | list[str]] = {"tests": HOSTILE_ITEMS, "build_deps": [], "app": "$(x)"}
    text = build_script(None, values, "w")
    head = text[: text.index(DEFAULT_SCRIPT)]
    loop = 'while IFS= read -r line; do if item "$line"; then set -- "$@" "$IT"; fi; done'
    probe = "\n".join(
        [
            head + source("items", "fleetdist.builders"),
            f"set --\n{loop} <<EOF\n$BUILD_DEPS\nEOF",
            'echo "BUILD_DEPS $#"',
            f"set --\n{loop} <<EOF\n$TESTS\nEOF",
            'echo "TESTS $#"',
            "printf '%s\\0' \"$@\" > items\n",
        ]
    )
    result = run(probe, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "BUILD_DEPS 0\nTESTS 6\n"
    assert (tmp_path / "items").read_text().split("\0")[:-1] == HOSTILE_ITEMS
    assert "APP='$(x)'" in head.splitlines()
    assert pwned(tmp_path) == []


def test_a_machines_own_template_is_rendered_not_given_variables() -> None:
    assert build_script("echo {{app}}", {"app": "a b"}, "w") == "echo 'a b'"

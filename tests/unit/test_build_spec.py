"""The recipe's `build:` section, build script templates and the build's own errors (no Docker)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleetdist.builders import ospkg
from fleetdist.builders.container import check_docker
from fleetdist.builders.formats import build_recipe
from fleetdist.builders.machines import DEFAULT_SCRIPT, render
from fleetdist.config.buildspec import parse_build
from fleetdist.config.loader import load_recipe
from fleetdist.errors import BuildError, ConfigError

from .conftest import Project


def parse(tmp_path: Path, data: object) -> object:
    return parse_build(data, "r.yaml", tmp_path, tmp_path)


def test_defaults_build_on_bookworm_with_system_python(tmp_path: Path) -> None:
    spec = parse_build(None, "r.yaml", tmp_path, tmp_path)
    assert [m.name for m in spec.machines] == ["bookworm"]
    assert spec.machines[0].image == "fleetdist/build:bookworm"
    assert (spec.python, spec.flip_current) == ("system", "fleetdist")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bulid_deps": ["gcc"]}, "r.yaml: build.bulid_deps: unknown key"),
        ({"python": "pypy"}, "r.yaml: build.python: must be one of system, bundled"),
        ({"flip_current": "yes"}, "r.yaml: build.flip_current: must be one of"),
        ({"machines": ["trixie"]}, "r.yaml: build.machines: machine 'trixie' has no image"),
        ({"machines": {"x": {"image": "i", "imgae": "j"}}}, "build.machines.x.imgae: unknown key"),
        ({"build_deps": "gcc g++"}, None),
        ({"runtime_deps": [1]}, "build.runtime_deps[0]: expected a non-empty string"),
        ({"nfpm": ["x"]}, "build.nfpm: expected a mapping"),
        ({"scripts": {"postinstall": "missing.sh"}}, "build.scripts.postinstall:"),
        ({"scripts": {"postinst": "x.sh"}}, "build.scripts.postinst: unknown key"),
        ({"requirements": ["nope.txt"]}, "build.requirements[0]:"),
    ],
)
def test_build_section_errors_name_the_field(
    tmp_path: Path, data: dict[str, object], message: str | None
) -> None:
    if message is None:
        parse(tmp_path, data)
        return
    with pytest.raises(ConfigError) as err:
        parse(tmp_path, data)
    assert str(err.value).startswith("r.yaml: build.") and message in str(err.value)


def test_machines_file_overrides_builtins_and_recipe_wins(tmp_path: Path) -> None:
    (tmp_path / "machines.yaml").write_text(
        "bookworm:\n  image: local/bookworm:1\n  build_deps: [gcc]\n"
        "el9:\n  image: local/el9:1\n  script: 'echo {{app}}'\n"
    )
    spec = parse_build(
        {"machines_file": "machines.yaml", "machines": {"bookworm": {}, "el9": {"image": "x"}}},
        "r.yaml",
        tmp_path,
        tmp_path,
    )
    by_name = {m.name: m for m in spec.machines}
    assert by_name["bookworm"].image == "local/bookworm:1"
    assert by_name["bookworm"].build_deps == ("gcc",)
    assert (by_name["el9"].image, by_name["el9"].script) == ("x", "echo {{app}}")


def test_unknown_build_key_exits_2_from_the_cli(project: Project) -> None:
    project.write_recipe(build={"python": "system", "colour": "blue"})
    result = project.run("build")
    assert result.code == 2
    assert result.err.strip().endswith(f"{project.recipe_path}: build.colour: unknown key")


def test_unknown_format_in_recipe_names_the_index(project: Project) -> None:
    project.write_recipe(formats=["tar.gz", "msi"])
    with pytest.raises(ConfigError, match=r"hello.yaml: formats\[1\]: unknown format 'msi'"):
        load_recipe(project.recipe_path)


def test_unknown_format_flag_exits_2(project: Project) -> None:
    result = project.run("build", "--formats", "tar.gz,msi")
    assert result.code == 2 and "--formats: unknown format 'msi'" in result.err


def test_missing_source_dir_is_a_config_error(project: Project) -> None:
    project.write_recipe(source="../nowhere")
    result = project.run("build")
    assert result.code == 2
    assert "source.path" in result.err and "is not a directory" in result.err


def test_template_quotes_values_and_expands_lists() -> None:
    out = render(
        "x={{ app }} deps={{deps}} none={{empty}}",
        {"app": "it's $HOME", "deps": ["a b", "c"], "empty": []},
        "w",
    )
    assert out == "x='it'\"'\"'s $HOME' deps='a b' c none="


def test_template_unknown_placeholder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^m\.script: unknown placeholder \{\{nope\}\}"):
        render("{{nope}}", {"app": "x"}, "m.script")


def test_default_script_uses_only_known_placeholders() -> None:
    names = [
        "app",
        "version",
        "prefix",
        "python",
        "build_deps",
        "requirement",
        "requirements",
        "tests",
        "formats",
        "export_tree",
        "owner",
    ]
    render(DEFAULT_SCRIPT, dict.fromkeys(names, "x"), "default")


def test_nfpm_config_versioned_name_prefix_deps_and_merge(project: Project) -> None:
    project.write_recipe(
        version="1.0.0",
        build={
            "runtime_deps": ["libpq5"],
            "flip_current": "postinst",
            "nfpm": {"license": "MIT", "depends": ["ca-certificates"]},
        },
    )
    recipe = load_recipe(project.recipe_path)
    spec = parse_build(recipe.build, recipe.source_file, project.root, recipe.source.path)
    pkg = project.root / "pkg"
    pkg.mkdir()
    scripts = ospkg.write_scripts(recipe, spec, pkg)
    config = ospkg.nfpm_config(recipe, spec, scripts)
    assert config["name"] == "hello-1.0.0"
    assert config["provides"] == ["hello"]
    assert config["depends"] == ["${FLEETDIST_PYTHON_DEP}", "libpq5", "ca-certificates"]
    assert config["license"] == "MIT"
    assert config["contents"][0]["dst"] == "/opt/hello/releases/1.0.0"
    assert set(scripts) == {"postinstall", "postremove"}
    # The host engine's own flip (sh/activate.sh), not a copy of its text.
    assert 'flip "$ID"' in (pkg / "postinstall.sh").read_text()
    json.dumps(config)  # what is written as nfpm.yaml


def test_bundled_python_drops_the_python_dependency(project: Project) -> None:
    project.write_recipe(build={"python": "bundled"})
    recipe = load_recipe(project.recipe_path)
    spec = parse_build(recipe.build, recipe.source_file, project.root, recipe.source.path)
    assert ospkg.nfpm_config(recipe, spec, {})["depends"] == []


def test_docker_not_running_says_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(BuildError, match=r"^Docker is not running .*start it with"):
        check_docker()


def test_failing_requirement_fails_with_pip_tail(project: Project) -> None:
    """No index needed: pip fails on a requirement file that does not exist."""
    os.remove(project.app_dir / "pyproject.toml")
    (project.app_dir / "requirements.txt").write_text("./no-such-wheel-1.0-py3-none-any.whl\n")
    project.write_recipe(build={"requirements": ["requirements.txt"]})
    recipe = load_recipe(project.recipe_path)
    lines: list[str] = []
    with pytest.raises(BuildError) as err:
        build_recipe(
            recipe, project.root / "dist", ("venv",), env={"DEPLOY_BASE": "/srv"}, echo=lines.append
        )
    message = str(err.value)
    assert message.startswith("build wheel: pip wheel (requirements) exited 1; log ")
    assert "no-such-wheel" in message.split("last lines:")[1]
    assert "\n" not in message
    assert any(line.startswith("[wheel] ") for line in lines)
    assert (project.root / "dist" / "logs" / "wheel.log").is_file()

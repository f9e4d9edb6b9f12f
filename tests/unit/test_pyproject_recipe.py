"""Recipes that take app and version from pyproject.toml, or live in `[tool.fleetdist]`."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from fleetdist.config.loader import load_recipe
from fleetdist.errors import ConfigError

from .conftest import FAST_HEALTHCHECK, FAST_TEST, HOSTS, Project

TOOL_TABLE = f"""
[tool.fleetdist]
deploy_root = "/srv/apps/hello"
test = ['{FAST_TEST}']
healthcheck = "{FAST_HEALTHCHECK}"
env = {{HELLO_GREETING = "hello"}}
"""


def test_a_recipe_without_app_and_version_takes_them_from_project(project: Project) -> None:
    project.write_recipe(app=None, version=None)
    pyproject = project.app_dir / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "1.0.0"', 'version = "1.4.2"'))
    rid = project.deploy()
    assert rid.startswith("1.4.2-")
    assert {project.current(h) for h in HOSTS} == {rid}
    assert project.ledger("web01")[-1]["app"] == "hello"


def test_the_pyproject_name_is_normalised(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text('[project]\nname = "My_Cool.App"\nversion = "2.0"\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text("source: app\ndeploy_root: /srv/x\n")
    loaded = load_recipe(recipe)
    assert (loaded.app, loaded.version, loaded.version_from) == ("my-cool-app", "2.0", "pyproject")


@pytest.mark.parametrize(
    ("project_table", "message"),
    [
        ('name = "hello"\n', "pyproject.toml has no project.version"),
        ('name = "hello world"\nversion = "1"\n', "project.name: 'hello world': use lowercase"),
        ('name = "hello"\nversion = "1/2"\n', "project.version: '1/2' cannot be a release id"),
        ('name = "hello"\nversion = 1\n', "project.version: expected a string"),
    ],
)
def test_unusable_project_metadata_is_one_line_naming_the_file(
    tmp_path: Path, project_table: str, message: str
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text("[project]\n" + project_table)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("source: app\ndeploy_root: /srv/x\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(recipe)
    assert message in str(info.value) and "pyproject.toml" in str(info.value)


def test_a_recipe_value_wins_over_pyproject(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text('[project]\nname = "hello"\nversion = "1.0"\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text('app: other\nversion: "9"\nsource: app\ndeploy_root: /srv/x\n')
    loaded = load_recipe(recipe)
    assert (loaded.app, loaded.version, loaded.version_from) == ("other", "9", "recipe")


def tool_project(project: Project) -> Path:
    """The example app as its own project: the recipe in its pyproject, no recipes/."""
    shutil.rmtree(project.root / "recipes")
    app = project.app_dir
    (app / "pyproject.toml").write_text((app / "pyproject.toml").read_text() + TOOL_TABLE)
    shutil.copytree(project.root / "inventories", app / "inventories")
    shutil.copytree(project.root / "env", app / "env")
    return app


def test_tool_fleetdist_holds_the_whole_recipe(project: Project) -> None:
    project.root = tool_project(project)
    rid = project.deploy()
    assert rid.startswith("1.0.0-")
    assert {project.current(h) for h in HOSTS} == {rid}
    shipped = project.host_root("web01") / "current"
    assert (shipped / "hello" / "__init__.py").is_file()
    assert (project.root / "dist").is_dir() and (project.root / ".fleetdist").is_dir()
    assert not (shipped / "dist").exists() and not (shipped / ".fleetdist").exists()
    again = project.run("deploy", "--json")
    assert again.code == 0 and again.json()["release_id"] == rid, "dist/ is not in the tree"


def test_tool_fleetdist_errors_name_the_table(project: Project) -> None:
    project.root = tool_project(project)
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "bogus = 1\n")
    result = project.run("deploy")
    assert result.code == 2
    assert f"{pyproject}: tool.fleetdist.bogus: unknown key" in result.err


def test_no_recipe_and_no_tool_table_says_where_it_looked(project: Project) -> None:
    shutil.rmtree(project.root / "recipes")
    result = project.run("deploy")
    assert result.code == 2 and "no [tool.fleetdist] in" in result.err


def test_a_dynamic_version_comes_from_the_wheel_metadata_not_an_import(project: Project) -> None:
    """The package refuses to be imported: only the build backend's metadata can say 7.3.1."""
    app = project.app_dir
    (app / "VERSION").write_text("7.3.1\n")
    (app / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "hello"
            dynamic = ["version"]

            [tool.setuptools]
            packages = ["hello"]

            [tool.setuptools.dynamic]
            version = {file = "VERSION"}
            """
        )
    )
    project.write_recipe(app=None, version=None)
    guard = app / "hello" / "__init__.py"
    guard.write_text("raise SystemExit('imported while packaging')\n" + guard.read_text())
    result = project.run("build", "--json", "--formats", "tar.gz")
    assert result.code == 0, result.err
    [art] = result.json()["artifacts"]
    assert art["version"] == "7.3.1" and art["release_id"].startswith("7.3.1-")
    assert not list(app.glob("*.egg-info")), "the backend ran on a copy"

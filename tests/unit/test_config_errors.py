"""Every configuration error: exit code 2 and one line on stderr naming the file and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from fleetdist.config.loader import load_inventory, load_recipe
from fleetdist.errors import ConfigError

from .conftest import Project

Edit = Callable[[Project], object]


def recipe_edit(**changes: object) -> Edit:
    return lambda p: p.write_recipe(**changes)


def recipe_text(text: str) -> Edit:
    return lambda p: p.recipe_path.write_text(text)


def recipe_bytes(data: bytes) -> Edit:
    return lambda p: p.recipe_path.write_bytes(data)


def inventory_text(data: bytes) -> Edit:
    return lambda p: (p.root / "inventories" / "local.yaml").write_bytes(data)


def inventory(data: object) -> Edit:
    def edit(p: Project) -> None:
        (p.root / "inventories" / "local.yaml").write_text(yaml.safe_dump(data))

    return edit


LOCAL = {"transport": "local", "local_root": "{FLEET_ROOT}/{host}"}


def hooks_typo(p: Project) -> None:
    p.write_recipe(hooks={"before_activte": ["true"]})


def secret_not_in_env(p: Project) -> None:
    p.write_recipe(env={"A": "1"}, secret_env=["API_TOKEN"])


RECIPE = "recipes/hello.yaml"
INVENTORY = "inventories/local.yaml"

CASES: list[tuple[str, Edit, list[str], list[str]]] = [
    # (id, edit, extra argv, substrings the one error line must hold)
    (
        "recipe-malformed-yaml",
        recipe_text("app: hello\nversion: '1'\nsource: [unclosed\ndeploy_root: /x\n"),
        [],
        [f"{RECIPE}:4", "malformed YAML"],
    ),
    (
        "recipe-tab-indent",
        recipe_text("app: hello\nsource:\n\tpath: x\n"),
        [],
        [f"{RECIPE}:3", "malformed YAML"],
    ),
    (
        "recipe-not-a-mapping",
        recipe_text("- just\n- a list\n"),
        [],
        [RECIPE, "expected a mapping, got a list"],
    ),
    (
        "recipe-unknown-key",
        recipe_edit(healthchek="true"),
        [],
        [f"{RECIPE}: healthchek: unknown key"],
    ),
    ("recipe-unknown-nested-key", hooks_typo, [], [f"{RECIPE}: hooks.before_activte: unknown key"]),
    (
        "recipe-unknown-source-key",
        recipe_edit(source={"path": "../examples/hello", "exclud": []}),
        [],
        [f"{RECIPE}: source.exclud: unknown key"],
    ),
    (
        "recipe-keep-wrong-type",
        recipe_edit(keep="five"),
        [],
        [f"{RECIPE}: keep: expected an integer, got str"],
    ),
    ("recipe-keep-too-small", recipe_edit(keep=1), [], [f"{RECIPE}: keep: must be between 2"]),
    (
        "recipe-test-wrong-type",
        recipe_edit(test={"a": 1}),
        [],
        [f"{RECIPE}: test: expected a list of strings, got a mapping"],
    ),
    (
        "recipe-test-item-wrong-type",
        recipe_edit(test=["true", 3]),
        [],
        [f"{RECIPE}: test[1]: expected a non-empty string, got int"],
    ),
    (
        "recipe-env-wrong-type",
        recipe_edit(env={"A": [1, 2]}),
        [],
        [f"{RECIPE}: env.A: expected a scalar value, got a list"],
    ),
    (
        # (with a pyproject [project].name in the source, app comes from there)
        "recipe-missing-app",
        recipe_edit(app=None, source="../examples/hello/hello"),
        [],
        [f"{RECIPE}: app: missing required field"],
    ),
    (
        "recipe-missing-deploy-root",
        recipe_edit(deploy_root=None),
        [],
        [f"{RECIPE}: deploy_root: missing required field"],
    ),
    (
        "recipe-missing-source",
        recipe_edit(source=None),
        [],
        [f"{RECIPE}: source: missing required field"],
    ),
    (
        "recipe-bad-app-name",
        recipe_edit(app="Hello World"),
        [],
        [f"{RECIPE}: app: use lowercase letters"],
    ),
    (
        "recipe-version-with-slash",
        recipe_edit(version="1.0/../../x"),
        [],
        [f"{RECIPE}: version:", "cannot be a release id"],
    ),
    (
        "recipe-secret-env-not-in-env",
        secret_not_in_env,
        [],
        [f"{RECIPE}: secret_env[0]: 'API_TOKEN' is not a key of env"],
    ),
    (
        "recipe-missing-variable",
        recipe_edit(deploy_root="{NOPE_BASE}/hello"),
        [],
        [f"{RECIPE}: deploy_root (host web01)", "{NOPE_BASE}"],
    ),
    (
        "recipe-missing-variable-in-env",
        recipe_edit(env={"URL": "http://{NOPE_HOST}/"}),
        [],
        [f"{RECIPE}: env.URL", "{NOPE_HOST}"],
    ),
    (
        "recipe-relative-deploy-root",
        recipe_edit(deploy_root="srv/hello"),
        [],
        [f"{RECIPE}: deploy_root (host web01)", "'srv/hello' is not an absolute path"],
    ),
    (
        "recipe-source-not-a-directory",
        recipe_edit(source="../nowhere"),
        ["--dry-run"],
        [f"{RECIPE}: source.path", "is not a directory"],
    ),
    (
        "inventory-malformed-yaml",
        lambda p: (p.root / "inventories" / "local.yaml").write_text(
            "groups:\n  web: {hosts: [a\n"
        ),
        [],
        [f"{INVENTORY}:3", "malformed YAML"],
    ),
    (
        "inventory-unknown-key",
        inventory({"defaults": LOCAL, "hosts": {"web01": {"hostnme": "x"}}}),
        [],
        [f"{INVENTORY}: hosts.web01.hostnme: unknown key"],
    ),
    (
        "inventory-unknown-top-key",
        inventory({"defaults": LOCAL, "host": {"web01": {}}}),
        [],
        [f"{INVENTORY}: host: unknown key"],
    ),
    (
        "inventory-group-unknown-key",
        inventory({"defaults": LOCAL, "groups": {"web": {"hosts": ["web01"], "var": {}}}}),
        [],
        [f"{INVENTORY}: groups.web.var: unknown key"],
    ),
    (
        "inventory-bad-transport",
        inventory({"defaults": {**LOCAL, "transport": "ftp"}, "hosts": {"web01": {}}}),
        [],
        [f"{INVENTORY}: defaults.transport: must be 'local' or 'ssh', got 'ftp'"],
    ),
    (
        "inventory-port-out-of-range",
        inventory({"defaults": LOCAL, "hosts": {"web01": {"port": 70000}}}),
        [],
        [f"{INVENTORY}: hosts.web01.port: must be between 1 and 65535"],
    ),
    (
        "inventory-port-not-a-number",
        inventory({"defaults": LOCAL, "hosts": {"web01": {"port": "twenty-two"}}}),
        [],
        [f"{INVENTORY}: hosts.web01.port: expected an integer, got str"],
    ),
    (
        "inventory-timeout-wrong-type",
        inventory({"defaults": {**LOCAL, "command_timeout": "soon"}, "hosts": {"web01": {}}}),
        [],
        [f"{INVENTORY}: defaults.command_timeout: expected a number, got str"],
    ),
    (
        "inventory-hosts-wrong-type",
        inventory({"defaults": LOCAL, "hosts": ["web01"]}),
        [],
        [f"{INVENTORY}: hosts: expected a mapping, got a list"],
    ),
    (
        "inventory-vars-wrong-type",
        inventory({"defaults": LOCAL, "hosts": {"web01": {"vars": {"role": {"a": 1}}}}}),
        [],
        [f"{INVENTORY}: hosts.web01.vars.role: expected a scalar value, got a mapping"],
    ),
    (
        "inventory-no-hosts",
        inventory({"defaults": LOCAL}),
        [],
        [f"{INVENTORY}: hosts: the inventory defines no hosts"],
    ),
    (
        "inventory-local-without-local-root",
        inventory({"defaults": {"transport": "local"}, "hosts": {"web01": {}}}),
        [],
        [f"{INVENTORY}: host web01: transport 'local' needs local_root"],
    ),
    (
        "inventory-missing-variable",
        inventory(
            {
                "defaults": {"transport": "local", "local_root": "{NOPE_ROOT}/{host}"},
                "hosts": {"web01": {}},
            }
        ),
        [],
        [f"{INVENTORY}: defaults.local_root", "{NOPE_ROOT}"],
    ),
    (
        "recipe-env-name-not-an-identifier",
        recipe_edit(env={"MY-VAR": "x"}),
        [],
        [f"{RECIPE}: env.MY-VAR: env names must be identifiers"],
    ),
    (
        "recipe-env-name-starts-with-a-digit",
        recipe_edit(env={"1X": "x"}),
        [],
        [f"{RECIPE}: env.1X: env names must be identifiers"],
    ),
    (
        "recipe-env-name-is-fleetdists",
        recipe_edit(env={"FLEETDIST_RELEASE": "x"}, secret_env=["FLEETDIST_RELEASE"]),
        [],
        [f"{RECIPE}: env.FLEETDIST_RELEASE: names starting with FLEETDIST_ are fleetdist's own"],
    ),
    (
        "recipe-app-with-newline",
        recipe_edit(app="hello\n"),
        [],
        [f"{RECIPE}: app: use lowercase letters"],
    ),
    (
        "recipe-not-utf8",
        recipe_bytes(b"app: hello\nversion: '1.0'\n# caf\xe9\n"),
        [],
        [f"{RECIPE}:3: not UTF-8 text (byte 0xe9)"],
    ),
    (
        "inventory-not-utf8",
        inventory_text(b"defaults:\n  transport: local\n  local_root: /tmp/\xff\n"),
        [],
        [f"{INVENTORY}:3: not UTF-8 text (byte 0xff)"],
    ),
    (
        "recipe-duplicate-key",
        recipe_text("app: hello\nversion: '1'\nkeep: 3\ndeploy_root: /x\nkeep: 9\n"),
        [],
        [f"{RECIPE}:5: malformed YAML: duplicate key 'keep' (first at line 3)"],
    ),
    (
        "recipe-duplicate-nested-key",
        recipe_text("app: hello\nenv:\n  A: 1\n  B: 2\n  A: 3\n"),
        [],
        [f"{RECIPE}:5: malformed YAML: duplicate key 'A' (first at line 3)"],
    ),
    (
        "inventory-duplicate-host",
        inventory_text(
            b"defaults: {transport: local, local_root: /tmp/x}\n"
            b"hosts:\n  web01: {}\n  web02: {}\n  web01: {port: 2}\n"
        ),
        [],
        [f"{INVENTORY}:5: malformed YAML: duplicate key 'web01' (first at line 3)"],
    ),
    (
        "recipe-unquoted-version",
        recipe_text("app: hello\nversion: 1.10\n"),
        [],
        [f"{RECIPE}: version: YAML read the float 1.1: quote the version as written"],
    ),
    (
        "recipe-integer-version",
        recipe_text("app: hello\nversion: 2\n"),
        [],
        [f"{RECIPE}: version: YAML read the int 2: quote the version as written"],
    ),
    (
        "recipe-deploy-root-climbs",
        recipe_edit(deploy_root="/../../x"),
        [],
        [f"{RECIPE}: deploy_root (host web01): '/../../x' must not contain '..'"],
    ),
    (
        "recipe-deploy-root-climbs-after-expansion",
        recipe_edit(deploy_root="{DEPLOY_BASE}/../../../etc"),
        [],
        [f"{RECIPE}: deploy_root (host web01):", "must not contain '..'"],
    ),
    (
        "recipe-deploy-root-is-root",
        recipe_edit(deploy_root="//"),
        [],
        [f"{RECIPE}: deploy_root (host web01): '//' is the root directory"],
    ),
    (
        "exclude-matches-no-host",
        lambda p: None,
        ["-x", "web09"],
        [f"{INVENTORY}: -x/--exclude: 'web09' matches no selected host"],
    ),
    (
        "exclude-matches-no-selected-host",
        lambda p: None,
        ["-H", "web01", "-x", "web0[2-3]"],
        [f"{INVENTORY}: -x/--exclude: 'web0[2-3]' matches no selected host"],
    ),
    ("missing-recipe", lambda p: None, ["-r", "nope"], ["-r/--recipe: no recipe 'nope'"]),
    (
        "no-recipe-to-choose",
        lambda p: p.recipe_path.unlink(),
        [],
        ["-r/--recipe: choose a recipe (none in"],
    ),
    ("missing-inventory", lambda p: None, ["-i", "nope"], ["-i/--inventory: no inventory 'nope'"]),
    (
        "missing-env-stack",
        lambda p: None,
        ["--env", "staging"],
        ["--env: no staging.env in ENVPATH"],
    ),
    ("bad-env-name", lambda p: None, ["--env", "../prod"], ["--env: '../prod' is not a valid"]),
    (
        "unknown-host",
        lambda p: None,
        ["-H", "web09"],
        [f"{INVENTORY}: hosts: web09 not in inventory"],
    ),
    ("no-hosts-selected", lambda p: None, ["-x", "web"], [f"{INVENTORY}: no hosts selected"]),
    ("bad-batch", lambda p: None, ["--batch", "0"], ["--batch: '0' is not a positive count"]),
    ("bad-max-fail", lambda p: None, ["--max-fail", "lots"], ["--max-fail: 'lots'"]),
    ("bad-parallel", lambda p: None, ["--parallel", "0"], ["--parallel: must be at least 1"]),
]


@pytest.mark.parametrize(
    ("edit", "argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_config_error_is_one_line_naming_the_field(
    project: Project, edit: Edit, argv: list[str], expected: list[str]
) -> None:
    edit(project)
    deploy_only = ("--batch", "--max-fail", "--parallel", "--dry-run")
    verb = "deploy" if argv[:1] and argv[0] in deploy_only else "status"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project.root)  # relative names in messages, like an operator sees them
        result = project.run(verb, "--project", ".", *argv)
    assert result.code == 2, result.err + result.out
    assert result.out == ""
    line = result.err.rstrip("\n")
    if verb == "deploy":  # deploy builds first; the build's own log lines come before
        line = line.splitlines()[-1]
    assert "\n" not in line, line
    assert line.startswith("fleetdist: error: ")
    for text in expected:
        assert text in line
    assert not project.fleet.exists(), "a config error must not touch any host"


@pytest.mark.parametrize(
    "changes",
    [{"deploy_root": "srv/hello"}, {"deploy_root": "{NOPE}/x"}, {"keep": "x"}, {"app": "Bad App"}],
)
def test_deploy_refuses_bad_recipe_before_touching_hosts(
    project: Project, changes: dict[str, object]
) -> None:
    project.write_recipe(**changes)
    result = project.run("deploy")
    assert result.code == 2
    last = result.err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"fleetdist: error: {project.recipe_path}: ")
    assert not project.fleet.exists()


def test_yaml_line_number_points_at_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("app: hello\nversion: '1'\n\n\nkeep: [1, 2\nother: x\n")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: malformed YAML"):
        load_recipe(path)


def test_missing_recipe_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'none.yaml'}: no such file$"):
        load_recipe(tmp_path / "none.yaml")


def test_inventory_layers_merge_in_order(tmp_path: Path) -> None:
    """defaults < groups < host entry, for connection settings and vars alike."""
    path = tmp_path / "inv.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"transport": "ssh", "port": 22, "user": "deploy", "vars": {"a": "d"}},
                "groups": {
                    "web": {"hosts": ["web[1-2]"], "port": 2222, "vars": {"a": "g", "b": "g"}}
                },
                "hosts": {"web2": {"user": "root", "vars": {"b": "{host}-h"}}, "db1": {}},
            },
            sort_keys=False,
        )
    )
    inv = load_inventory(path, {}, {})
    assert list(inv.hosts) == ["web2", "db1", "web1"]
    web1, web2, db1 = inv.hosts["web1"], inv.hosts["web2"], inv.hosts["db1"]
    assert (web1.port, web1.user, web1.vars) == (2222, "deploy", {"a": "g", "b": "g"})
    assert (web2.port, web2.user, web2.vars) == (2222, "root", {"a": "g", "b": "web2-h"})
    assert (db1.port, db1.user, db1.groups) == (22, "deploy", ())
    assert inv.groups == {"web": ("web1", "web2")}


def test_deploy_config_errors_come_before_any_build_or_journal(project: Project) -> None:
    project.write_recipe(deploy_root="{NOPE}/hello")
    result = project.run("deploy")
    assert result.code == 2 and "NOPE" in result.err
    assert not (project.root / "dist").exists()
    assert not (project.root / ".fleetdist" / "runs").exists()
    project.write_recipe(deploy_root="{DEPLOY_BASE}/hello")
    result = project.run("deploy", "--batch", "0")
    assert result.code == 2 and result.err.startswith("fleetdist: error: --batch")
    assert not (project.root / "dist").exists()


@pytest.mark.parametrize("name", ["MY-VAR", "FLEETDIST_HOST", "A B"])
@pytest.mark.parametrize("verb", ["plan", "deploy", "build"])
def test_env_names_that_are_no_shell_variables_are_refused(
    project: Project, verb: str, name: str
) -> None:
    """`env: {MY-VAR: x}` crashed `plan` with a traceback: it is refused before any work."""
    project.write_recipe(env={name: "x"})
    result = project.run(verb)
    assert result.code == 2, result.err + result.out
    assert result.err == f"fleetdist: error: {project.recipe_path}: env.{name}: " + (
        "names starting with FLEETDIST_ are fleetdist's own\n"
        if name.startswith("FLEETDIST_")
        else "env names must be identifiers: letters, digits and _, not starting with a digit\n"
    )
    assert not project.fleet.exists()
    assert not (project.root / "dist").exists()


def test_exclude_of_some_selected_hosts_still_works(project: Project) -> None:
    rid = project.deploy("-x", "web0[2-9]")
    assert project.current("web01") == rid
    assert not project.host_root("web02").exists()

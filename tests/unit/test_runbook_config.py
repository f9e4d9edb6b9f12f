"""Runbook validation and substitution: every bad runbook or param is one line naming
`file: path.to.field` (exit 2, nothing touched), and no value can become shell code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetdist.errors import ConfigError
from fleetdist.runbook import subst
from fleetdist.runbook.load import load_runbook
from fleetdist.runbook.model import Template

from .conftest import REPO, Project

GOOD = """\
params:
  recipe: {type: str, default: hello, pattern: '[a-z]+'}
  port: {type: int, default: 8000}
  strict: {type: bool, default: true}
hosts: web
strategy: {canary: 1, batch: 2, pause: 0s, max_failures: 1, parallel: 2}
steps:
  - name: hello
    exec: [echo, "${host.name}", "${port}"]
"""


def write(root: Path, text: str, name: str = "rb") -> Path:
    folder = root / "runbooks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_shipped_runbooks_load() -> None:
    for path in sorted((REPO / "runbooks").glob("*.yaml")):
        assert load_runbook(path).steps, path


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            "  - {name: a, exec: [ls], bogus: 1}",
            "steps[0].bogus: unknown key",
        ),
        (
            "  - {name: a, exec: [ls], wait: 1s}",
            "steps[0]: give exactly one of exec, local, deploy, rollback, http, wait, pause "
            "(got exec and wait)",
        ),
        ("  - {name: a}", "steps[0]: give exactly one of"),
        ("  - {name: A b, wait: 1s}", "steps[0].name: 'A b': use [a-z0-9][a-z0-9_-]*"),
        (
            "  - {name: a, wait: 1s}\n  - {name: a, wait: 2s}",
            "steps[1].name: 'a' is used by an earlier step",
        ),
        ("  - {name: a, exec: [echo, '${nope}']}", "steps[0].exec[1]: unknown reference ${nope}"),
        (
            "  - {name: a, exec: {shell: 'echo ${host.var.x}'}}",
            "steps[0].exec.shell: unknown reference ${host.var.x}",
        ),
        ("  - {name: a, wait: 3 days}", "steps[0].wait: '3 days' is not a duration"),
        ("  - {name: a, wait: 25h}", "steps[0].wait: '25h' must be 0 and at most 24h"),
        ("  - {name: a, local: [ls], on: lb}", "steps[0].on: only exec steps and http"),
        (
            "  - {name: a, exec: [ls], undo: {name: b, exec: [ls]}}",
            "steps[0].undo.name: unknown key",
        ),
        (
            '  - {name: a, exec: {shell: "echo \\"$(date ${host.name})\\""}}',
            "steps[0].exec.shell: ${host.name} comes after a command substitution inside double",
        ),
        ("  - {name: a, http: {status: 200}}", "steps[0].http.url: missing required field"),
        (
            "  - {name: a, exec: {shell: 'true # ${host.name}'}}",
            "${host.name} comes after the start of a comment",
        ),
        (
            "  - {name: a, exec: {shell: 'echo `echo ${host.name}`'}}",
            "${host.name} comes after the start of a backquoted command",
        ),
        (
            "  - {name: a, exec: {shell: 'echo \\${host.name} ${host.name}'}}",
            "${host.name} right after a backslash: drop the backslash",
        ),
        ("  - {name: a, wait: 1s, timeout: 2s}", "steps[0].timeout: only exec, local and http"),
        ("  - {name: a, http: {url: x, from: lb}}", "steps[0].http.from: must be controller or"),
        ("  - {name: a, exec: [-rf]}", "steps[0].exec[0]: the command must be a program"),
        ("  - {name: a, deploy: {recipe: '${host.name}'}}", "unknown reference ${host.name}"),
    ],
)
def test_step_errors_name_the_field(tmp_path: Path, steps: str, message: str) -> None:
    path = write(tmp_path, f"steps:\n{steps}\n")
    with pytest.raises(ConfigError) as err:
        load_runbook(path)
    assert str(err.value).startswith(f"{path}: "), err.value
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("x: {type: float}", "params.x.type: must be one of str, int, bool, got 'float'"),
        ("x: {type: int, default: abc}", "params.x.default: expected a int, got str"),
        ("x: {type: bool, default: 1}", "params.x.default: expected a bool, got int"),
        ("x: {default: Hello, pattern: '[a-z]+'}", "does not match the pattern '[a-z]+'"),
        ("x: {type: int, pattern: '1'}", "params.x.pattern: only a str param can have"),
        ("x: {pattern: '('}", "params.x.pattern: not a regular expression"),
        ("host: {}", "params.host: param names are [a-z_][a-z0-9_]* and not 'host'"),
        ("x: {typo: 1}", "params.x.typo: unknown key"),
        # a default --param could not give again (as --resume does) is refused at load
        ("x: {type: int, default: 10000000000000000000}", "params.x.default: '1000"),
    ],
)
def test_param_declarations_are_checked(tmp_path: Path, params: str, message: str) -> None:
    path = write(tmp_path, f"params:\n  {params}\nsteps:\n  - {{name: a, wait: 0s}}\n")
    with pytest.raises(ConfigError, match=None) as err:
        load_runbook(path)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("{batch: 0}", "strategy.batch: '0' is not a positive count"),
        ("{max_failures: lots}", "strategy.max_failures: 'lots' is not a count or a percentage"),
        ("{parallel: 0}", "strategy.parallel: must be between 1 and 1000"),
        ("{pause: -1s}", "strategy.pause: '-1s' is not a duration"),
        ("{serial: 1}", "strategy.serial: unknown key"),
    ],
)
def test_strategy_errors(tmp_path: Path, strategy: str, message: str) -> None:
    path = write(tmp_path, f"strategy: {strategy}\nsteps:\n  - {{name: a, wait: 0s}}\n")
    with pytest.raises(ConfigError) as err:
        load_runbook(path)
    assert message in str(err.value)


@pytest.fixture
def rb_project(project: Project) -> Project:
    write(project.root, GOOD)
    return project


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "nope=1"], "--param nope: "),
        (["--param", "port=eighty"], "--param port: 'eighty' is not an int"),
        (["--param", "strict=maybe"], "--param strict: 'maybe' is not a bool"),
        (["--param", "recipe=Hello"], "--param recipe: 'Hello' does not match the pattern"),
        (["--param", "port"], "--param: 'port': use NAME=VALUE"),
        (["--param", "port=1", "--param", "port=2"], "--param port: given twice"),
    ],
)
def test_bad_params_exit_2_before_anything_is_touched(
    rb_project: Project, args: list[str], message: str
) -> None:
    result = rb_project.run("run", "rb", *args)
    assert result.code == 2, result.err
    assert message in result.err and result.err.count("\n") == 1
    assert not rb_project.fleet.exists() and not (rb_project.root / ".fleetdist").exists()


def test_a_param_without_default_must_be_given(rb_project: Project) -> None:
    write(rb_project.root, "params: {who: {}}\nsteps:\n  - {name: a, exec: [echo, '${who}']}\n")
    result = rb_project.run("run", "rb")
    assert result.code == 2
    assert "params.who: has no default: pass --param who=VALUE" in result.err


def test_a_missing_host_var_names_the_host_and_field(rb_project: Project) -> None:
    write(rb_project.root, "steps:\n  - {name: a, exec: [echo, '${host.vars.port}']}\n")
    result = rb_project.run("run", "rb", "--dry-run")
    assert result.code == 2
    assert result.err.strip().endswith("rb.yaml: steps[0].exec[1]: host web01 has no var 'port'")


def test_an_on_host_must_be_in_the_inventory(rb_project: Project) -> None:
    write(rb_project.root, "steps:\n  - {name: a, on: lb, exec: [ls]}\n")
    result = rb_project.run("run", "rb")
    assert result.code == 2
    assert "steps[0].on: 'lb' (for host web01) is not a host of" in result.err
    assert not rb_project.fleet.exists()


def test_an_unknown_runbook_is_a_usage_error(rb_project: Project) -> None:
    result = rb_project.run("run", "nothing-here")
    assert result.code == 2 and "run: no runbook 'nothing-here'" in result.err


# -- substitution ------------------------------------------------------------------

HOSTILE = "a'b\"c $(touch PWNED) `touch PWNED` ; touch PWNED \\ $HOME\nx"


@pytest.mark.parametrize(
    "shell",
    [
        "printf '[%s]' ${v}",  # a word of its own
        "printf '[%s]' '${v}'",  # inside single quotes
        "printf '[%s]' \"${v}\"",  # inside double quotes
        ": # it's a comment\nprintf '[%s]' ${v}",  # a quote in a comment quotes nothing
        "printf '[%s]' pre${v}post",  # part of a word
        "printf '[%s]' \"pre ${v} post\"",
    ],
)
def test_a_value_in_a_shell_string_is_always_literal(tmp_path: Path, shell: str) -> None:
    """Run what `subst.shell` makes with sh: the value comes out as written, nothing runs."""
    t = Template(shell, "rb.yaml: steps[0].exec.shell")
    made = subst.shell(t, subst.Values({"v": HOSTILE}))
    out = subprocess.run(["sh", "-c", made], cwd=tmp_path, capture_output=True, text=True)
    expected = shell.replace("${v}", HOSTILE).split("'[%s]' ", 1)[1].strip("'\"")
    assert out.stdout == f"[{expected}]", made
    assert not list(tmp_path.iterdir())


def test_hostile_params_in_argv_and_shell_reach_the_host_as_written(rb_project: Project) -> None:
    write(
        rb_project.root,
        """\
        params: {v: {}}
        hosts: web01
        steps:
          - name: argv
            exec: [printf, "<%s>\\n", "${v}", "x${v}"]
          - name: shell
            exec: {shell: "printf '<%s>\\\\n' ${v} '${v}' \\"${v}\\" >> out.txt"}
          - name: local
            local: [printf, "<%s>\\n", "${v}"]
        """,
    )
    result = rb_project.run("run", "rb", "--json", "--param", f"v={HOSTILE}")
    assert result.code == 0, result.err
    out = (rb_project.fleet / "web01" / "out.txt").read_text()
    assert out == f"<{HOSTILE}>\n" * 3
    log = rb_project.root / ".fleetdist" / "runs" / result.json()["run_id"] / "web01.log"
    assert f"<x{HOSTILE}>" in log.read_text().replace("\n--- ", "\n")
    assert not [*rb_project.fleet.rglob("PWNED"), *rb_project.root.rglob("PWNED")]
    assert not list(Path.cwd().rglob("PWNED"))


def test_a_literal_dollar_brace_is_written_twice(tmp_path: Path) -> None:
    t = Template("echo $${HOME} $$ ${x}", "f: x")
    assert subst.shell(t, subst.Values({"x": "a b"})) == "echo ${HOME} $$ 'a b'"


def test_fab_and_inv_run_a_runbook_like_fleetdist(rb_project: Project) -> None:
    """`fab run RUNBOOK` and `inv run RUNBOOK` are the same verb: same flags, same errors."""
    from .test_doors import fab

    proc = fab(rb_project, "run", "rb", "--param", "port=eighty")
    assert (proc.returncode, proc.stderr) == (
        2,
        "fleetdist: error: --param port: 'eighty' is not an int\n",
    )
    proc = fab(rb_project, "run", "rb", "--param", "port=81", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["params"] == {"recipe": "hello", "port": "81", "strict": "true"}
    steps = doc["batches"][0]["hosts"][0]["steps"]
    assert steps[0]["script"] == "# on web01:\necho web01 81"
    shutil.copyfile(REPO / "tasks.py", rb_project.root / "tasks.py")
    inv = Path(sys.executable).with_name("inv")
    proc = subprocess.run(
        [str(inv), "--help", "run"], cwd=rb_project.root, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "Run RUNBOOK (runbooks/NAME.yaml or a path)" in proc.stdout


SHELLS = [sh for sh in ("sh", "dash", "bash") if shutil.which(sh)]  # bash: a host's sh may be


def _sh(shell: str, made: str, cwd: Path) -> str:
    return subprocess.run([shell, "-c", made], cwd=cwd, capture_output=True, text=True).stdout


@pytest.mark.parametrize("sh", SHELLS)
def test_a_value_never_becomes_more_than_one_literal_word(tmp_path: Path, sh: str) -> None:
    """A bare word would let bash brace-expand `{a,-n}` into two words, and make a value
    `A=1` in command position an assignment: a value is always quoted in full."""
    t = Template("printf '[%s]' {${v}} ${w}z", "rb.yaml: steps[0].exec.shell")
    made = subst.shell(t, subst.Values({"v": "a,-n", "w": "x"}))
    assert _sh(sh, made, tmp_path) == "[{a,-n}][xz]", made


@pytest.mark.parametrize("sh", SHELLS)
def test_a_value_in_arithmetic_must_be_an_integer(tmp_path: Path, sh: str) -> None:
    """bash evaluates `a[$(cmd)]` in `$((...))` even inside single quotes: in arithmetic a
    value may only be an integer, checked where it is resolved (naming field and host)."""
    t = Template("echo $(( ${v} + 1 )) $(( (2 * ${v}) ))", "rb.yaml: steps[0].exec.shell")
    assert _sh(sh, subst.shell(t, subst.Values({"v": "41"})), tmp_path) == "42 82\n"
    assert _sh(sh, subst.shell(t, subst.Values({"v": "-3"})), tmp_path) == "-2 -6\n"
    for bad in ("a[$(touch PWNED)]", "x=1", "", "1 + 1", "0x1f"):
        with pytest.raises(ConfigError, match=r"steps\[0\]\.exec\.shell: \$\{v\} is in "):
            subst.shell(t, subst.Values({"v": bad}))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "shell",
    [
        "echo hi >&${v}",  # bash expands the word after >& twice
        "echo hi 1>& '${v}'",
        "echo hi >&x$(echo)${v}",
        'cat <&"${v}"',
        "echo $${HOME:${v}}",  # bash: a substring offset is arithmetic
        "echo $${x:-'${v}'}",
        "[[ ${v} -eq 1 ]]",  # bash: [[ ]] operands are arithmetic
        "echo $\\\n${v}",  # bash: $'...' once the line continuation is gone
        'echo "$\\\n${v}"',  # the value would name a variable
    ],
)
def test_a_reference_where_bash_expands_twice_is_refused(shell: str) -> None:
    t = Template(shell, "rb.yaml: steps[0].exec.shell")
    with pytest.raises(ConfigError, match=r"steps\[0\]\.exec\.shell: \$\{v\} comes after "):
        subst.contexts_of(t)


@pytest.mark.parametrize("sh", SHELLS)
def test_bash_double_expansions_would_have_run_the_value(tmp_path: Path, sh: str) -> None:
    """What the refusals above prevent, shown as bash does it (dash does not)."""
    for i, line in enumerate(["echo hi >&'$(touch P{})'", "echo $(( 'a[$(touch P{})]' ))"]):
        subprocess.run([sh, "-c", line.format(i)], cwd=tmp_path, capture_output=True)
    assert Path(sh).name != "bash" or len(list(tmp_path.iterdir())) == 2


def test_a_value_no_command_can_carry_is_refused_before_anything_runs(
    rb_project: Project,
) -> None:
    """A NUL would cut the command a host is sent short (or break the run half way on
    the controller): refused when the run is planned, naming the field and the host."""
    inv = rb_project.root / "inventories" / "local.yaml"
    inv.write_text(inv.read_text().replace("role: web", 'role: web\n      odd: "a\\0b"'))
    write(
        rb_project.root,
        "steps:\n  - {name: a, exec: [touch, ran]}\n"
        "  - {name: b, exec: [echo, '${host.vars.odd}']}\n",
    )
    result = rb_project.run("run", "rb")
    assert result.code == 2, result.err
    assert result.err.strip().endswith(
        "rb.yaml: steps[1].exec[1]: host web01: var 'odd' holds a NUL character, "
        "which no command can carry"
    )
    assert not rb_project.fleet.exists()


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("80@evil.example", "${host.vars.port} is in the URL's host or port: '80@evil.example'"),
        ("80/x", "${host.vars.port} is in the URL's host or port: '80/x'"),
        ("eighty", "is not an http(s) URL (bad port)"),
    ],
)
def test_a_value_cannot_move_an_http_step_to_another_host(
    rb_project: Project, port: str, message: str
) -> None:
    """`http://127.0.0.1:${host.vars.port}/` must GET 127.0.0.1: a var that makes `80@evil`
    of it (userinfo, then another host) or adds a path is refused before anything runs."""
    inv = rb_project.root / "inventories" / "local.yaml"
    inv.write_text(inv.read_text().replace("role: web", f"role: web\n      port: '{port}'"))
    url = "http://127.0.0.1:${host.vars.port}/"
    write(rb_project.root, f"steps:\n  - {{name: a, http: {{url: '{url}'}}}}\n")
    result = rb_project.run("run", "rb", "--dry-run")
    assert result.code == 2, result.err
    assert "rb.yaml: steps[0].http.url" in result.err and message in result.err, result.err
    assert "(host web01)" in result.err and result.err.count("\n") == 1


def test_a_value_in_an_http_path_or_query_stays_there(tmp_path: Path) -> None:
    t = Template("http://127.0.0.1:8000/x/${v}?q=${v}#${v}", "rb.yaml: steps[0].http.url")
    made = subst.url(t, subst.Values({"v": "a/b?c=d&e#f g"}))
    assert (
        made
        == "http://127.0.0.1:8000/x/a/b%3Fc%3Dd%26e%23f%20g?q=a%2Fb%3Fc%3Dd%26e%23f%20g#a%2Fb%3Fc%3Dd%26e%23f%20g"
    )


def test_a_value_in_a_bash_arithmetic_command_must_be_an_integer(tmp_path: Path) -> None:
    """bash's `(( ... ))` (and `for ((...))`) evaluates `a[$(cmd)]` even single-quoted."""
    for shell in ("(( ${v} > 1 )) && echo big", "for ((i = 0; i < ${v}; i++)); do :; done"):
        t = Template(shell, "rb.yaml: steps[0].exec.shell")
        with pytest.raises(ConfigError, match=r"\$\{v\} is in \$\(\(\.\.\.\)\)"):
            subst.shell(t, subst.Values({"v": "a[$(touch PWNED)]"}))
        assert "5" in subst.shell(t, subst.Values({"v": "5"}))
    if shutil.which("bash"):
        t = Template("(( ${v} > 1 )) && echo big", "f: x")
        assert _sh("bash", subst.shell(t, subst.Values({"v": "5"})), tmp_path) == "big\n"

"""The parsed, validated values of a runbook: params, strategy, steps of fixed kinds.

`load` builds these once from YAML and every later module trusts them.
Strings that may hold `${...}` are `Template`s: the text as written and the
`file: path.to.field` they came from, so a reference that cannot be
resolved for a host is reported where it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fleetdist.orchestrate.batches import ALL_AT_ONCE, UNLIMITED, BatchPlan, FailureBudget

ParamType = Literal["str", "int", "bool"]
HttpFrom = Literal["controller", "host"]


@dataclass(frozen=True)
class Template:
    """A string as written in the runbook; `where` names it (`file: steps[2].exec[1]`)."""

    text: str
    where: str


@dataclass(frozen=True)
class Param:
    """A declared parameter: its type, default (None: it must be given) and pattern."""

    name: str
    type: ParamType = "str"
    default: str | None = None  # as the text `--param` would give
    pattern: str | None = None


@dataclass(frozen=True)
class Strategy:
    """Host-first rolling: batches (canary first), a pause between them, ONE failure
    budget for the whole run, and how many hosts of a batch run at once."""

    batches: BatchPlan = ALL_AT_ONCE
    pause: float = 0.0
    max_failures: FailureBudget = UNLIMITED
    parallel: int = 10


@dataclass(frozen=True)
class Command:
    """`exec` and `local`: an argv (each item one argument) or one shell string."""

    argv: tuple[Template, ...] = ()
    shell: Template | None = None


@dataclass(frozen=True)
class Exec:
    command: Command


@dataclass(frozen=True)
class Local:
    command: Command


@dataclass(frozen=True)
class Deploy:
    """The built-in rollout for one host; `recipe` None: the run's selected recipe."""

    recipe: Template | None = None


@dataclass(frozen=True)
class Rollback:
    """Flip back: as the undo of a deploy, to where that deploy found the host;
    otherwise to `to`, else to the host's previous release."""

    recipe: Template | None = None
    to: Template | None = None


@dataclass(frozen=True)
class Http:
    url: Template
    status: int = 200
    body: Template | None = None
    retries: int = 0
    delay: float = 1.0
    timeout: float = 5.0
    origin: HttpFrom = "controller"


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Pause:
    message: Template


Kind = Exec | Local | Deploy | Rollback | Http | Wait | Pause
KINDS = ("exec", "local", "deploy", "rollback", "http", "wait", "pause")


@dataclass(frozen=True)
class Body:
    """What a step (or its undo) does, where (`on`: another inventory host), how long."""

    kind: Kind
    on: Template | None = None
    timeout: float | None = None
    where: str = ""  # `file: steps[2]`, for errors found per host


@dataclass(frozen=True)
class StepSpec:
    name: str
    body: Body
    undo: Body | None = None


@dataclass(frozen=True)
class Runbook:
    """One runbook file.  `digest` is its sha256: `--resume` refuses a changed file."""

    source: str
    name: str
    digest: str
    description: str = ""
    params: dict[str, Param] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()
    strategy: Strategy = field(default_factory=Strategy)
    steps: tuple[StepSpec, ...] = ()

    def recipes(self) -> tuple[Template, ...]:
        """The `recipe` templates of deploy and rollback steps, undo included."""
        found = []
        for step in self.steps:
            for body in (step.body, step.undo):
                kind = body.kind if body else None
                if isinstance(kind, Deploy | Rollback) and kind.recipe is not None:
                    found.append(kind.recipe)
        return tuple(found)

"""Zero-downtime rolling deploy through a real HAProxy, driven by hand.

The baseline of the runbook proofs (test_lb_runbook.py), with no runbook
engine: for each host, drain it in HAProxy over SSH (`fleetdist exec -H lb`
and socat on the runtime API), `fleetdist deploy` it (its after_activate hook
restarts the server from the new release), check it directly, undrain it,
while a client sends requests through HAProxy the whole time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .fleet import WEB, Fleet
from .lb import BACKEND, RESTART, LoadBalancer, admin_command, app_reply, bump, serving_project
from .project import Project
from .traffic import Traffic, assert_rolled

pytestmark = pytest.mark.integration

HOSTS = WEB[:3]  # web04 and web05 serve nothing: HAProxy has them DOWN throughout


def lb_admin(project: Project, command: str) -> None:
    assert project.run("exec", "-H", "lb", "--shell", "--", admin_command(command)) == 0


def test_drain_deploy_undrain_host_by_host_drops_nothing(
    fleet: Fleet, lb: LoadBalancer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = serving_project(fleet, lb, tmp_path, HOSTS)
    bump(project, "1.0.0", monkeypatch)
    assert project.run("deploy", "-H", "web") == 0
    lb.wait_states({h: "UP" if h in HOSTS else "DOWN" for h in WEB})
    bump(project, "1.1.0", monkeypatch)
    with Traffic(lb.url) as client:
        client.wait_for(lambda c: c.seen(HOSTS, "1.0.0"))
        for host in HOSTS:
            lb_admin(project, f"set server {BACKEND}/{host} state maint")
            assert lb.states()[host] == "MAINT"
            assert project.run("deploy", "-H", host) == 0
            assert "version: 1.1.0" in app_reply(fleet, host).splitlines()
            lb_admin(project, f"set server {BACKEND}/{host} state ready")
            client.wait_for(lambda c, h=host: c.seen([h], "1.1.0"))
    assert_rolled(client, [[h] for h in HOSTS], "1.0.0", "1.1.0")
    assert len(client.replies) >= 50, client
    for host in HOSTS:
        assert f"host: {host}" in app_reply(fleet, host).splitlines()


def test_the_same_restart_without_the_drain_drops_requests(
    fleet: Fleet, lb: LoadBalancer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the zero above is the drain's doing (no retries hide a restart)."""
    hosts = WEB[:2]
    project = serving_project(fleet, lb, tmp_path, hosts)
    bump(project, "1.0.0", monkeypatch)
    assert project.run("deploy", "-H", "web") == 0
    lb.wait_states({h: "UP" if h in hosts else "DOWN" for h in WEB})
    bump(project, "1.1.0", monkeypatch)
    with Traffic(lb.url) as client:
        client.wait_for(lambda c: c.seen(hosts, "1.0.0"))
        assert project.run("deploy", "-H", hosts[0]) == 0
        client.wait_for(lambda c: c.seen(hosts[:1], "1.1.0"))
    assert client.failures, client
    print(f"{len(client.failures)} of {client.sent} requests failed: {client.failures[:3]}")


def test_a_plain_deploy_drained_by_around_batch_drops_nothing(
    fleet: Fleet, lb: LoadBalancer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe's around_batch steps drain each batch in HAProxy just for its flip."""
    project = serving_project(fleet, lb, tmp_path, HOSTS)
    bump(project, "1.0.0", monkeypatch)
    assert project.run("deploy", "-H", "web") == 0
    lb.wait_states({h: "UP" if h in HOSTS else "DOWN" for h in WEB})
    state = f"set server {BACKEND}/${{host.name}} state"
    project.recipe(
        hooks={"after_activate": [RESTART]},
        around_batch={
            "before": [
                {
                    "name": "drain",
                    "on": "lb",
                    "exec": {"shell": admin_command(f"{state} maint")},
                    "undo": {"on": "lb", "exec": {"shell": admin_command(f"{state} ready")}},
                }
            ],
            "after": [
                {"name": "undrain", "on": "lb", "exec": {"shell": admin_command(f"{state} ready")}}
            ],
        },
    )
    bump(project, "1.1.0", monkeypatch)
    with Traffic(lb.url) as client:
        client.wait_for(lambda c: c.seen(HOSTS, "1.0.0"))
        assert project.run("deploy", "-H", "web", "--batch", "1") == 0
        client.wait_for(lambda c: c.seen(HOSTS, "1.1.0"))
    assert_rolled(client, [[h] for h in HOSTS], "1.0.0", "1.1.0")
    assert lb.states() == {h: "UP" if h in HOSTS else "DOWN" for h in WEB}

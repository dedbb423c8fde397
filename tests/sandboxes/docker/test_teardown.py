"""`labdeck teardown` on the real engine: an instance's sandbox, registry, network, volumes and
host firewall rules all go; rules left by an instance whose network is gone are found and go."""

from __future__ import annotations

import re
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from app import cli
from app.ports import free_port
from app.sandboxes import naming
from app.sandboxes.docker import network, teardown
from app.sandboxes.docker.runtime import Profile
from tests.support.docker_lab import SANDBOX_IMAGE, TEST_LABELS, instance_name, open_lab, run


def test_an_instance_s_tag_pattern_matches_its_rules_only() -> None:
    pattern = re.compile(teardown.tag_pattern("test-1"))
    assert pattern.search("-A INPUT -i ld-x -m comment --comment labdeck:test-1 -j LD-x-IN")
    assert pattern.search('-A LD-x-IN -j DROP -m comment --comment "labdeck:test-1:0a1b2c"')
    for other in ("test-12", "test-1-lab", "test-12:0a1b2c"):
        assert not pattern.search(f"-A INPUT -m comment --comment labdeck:{other} -j ACCEPT")


def remaining(instance: str) -> list[str]:
    """Everything with the instance's label on every engine, and its tagged rules."""
    left = [
        f"{kind} {name}"
        for _address, client in teardown._engines()
        for kind, name in teardown.objects_of(client, instance)
    ]
    rules = teardown.count_rules(instance, SANDBOX_IMAGE, TEST_LABELS)
    return left + ([f"{rules} rules"] if rules else [])


@pytest.mark.docker
def test_teardown_leaves_nothing_of_the_instance(
    engine: docker.DockerClient, runtime_profile: Profile
) -> None:
    lab = open_lab(engine, runtime_profile, "teardown", seed=[])
    try:
        sandbox = run(lab.ready_sandbox("one"))
    finally:
        run(lab.backend.aclose())
    planned = "\n".join(teardown.plan(lab.instance, SANDBOX_IMAGE, TEST_LABELS))
    for thing in (
        f"container {sandbox} ",
        f"container {lab.registry.name} ",
        f"network {lab.network.name} ",
        f"volume {lab.registry.volume} ",
        f"volume {naming.engine_volume_name(sandbox)} ",
        f"firewall rules tagged labdeck:{lab.instance}",
    ):
        assert thing in planned

    removed = teardown.teardown(lab.instance, SANDBOX_IMAGE, TEST_LABELS)

    assert any("firewall rules" in line for line in removed)
    assert remaining(lab.instance) == []
    assert network.firewall_rules(engine, lab.instance, extra_labels=TEST_LABELS) == []
    assert teardown.teardown(lab.instance, SANDBOX_IMAGE, TEST_LABELS) == []  # idempotent


@pytest.mark.docker
def test_rules_of_an_instance_whose_network_is_gone_are_removed_as_stale(
    engine: docker.DockerClient,
) -> None:
    instance = instance_name("stale")
    network.ensure_network(engine, instance, registry_port=free_port(), extra_labels=TEST_LABELS)
    engine.api.remove_network(naming.network_name(instance))  # behind LabDeck's back
    assert instance in teardown.stale_instances(SANDBOX_IMAGE, TEST_LABELS)

    removed = teardown.teardown_stale(SANDBOX_IMAGE, TEST_LABELS)

    assert any(instance in line for line in removed)
    assert instance not in teardown.stale_instances(SANDBOX_IMAGE, TEST_LABELS)
    assert remaining(instance) == []


@pytest.mark.docker
def test_the_command_lists_then_removes(
    engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    instance = instance_name("cli")
    network.ensure_network(engine, instance, registry_port=free_port(), extra_labels=TEST_LABELS)
    monkeypatch.setenv("LABDECK_DATA_DIR", str(tmp_path))
    declined = CliRunner().invoke(cli.cli, ["teardown", "--instance", instance], input="n\n")
    assert declined.exit_code == 1 and f"network {naming.network_name(instance)}" in declined.output
    assert remaining(instance)  # nothing removed without a yes

    done = CliRunner().invoke(cli.cli, ["teardown", "--instance", instance, "--yes"])

    assert done.exit_code == 0, done.output
    assert remaining(instance) == []
    again = CliRunner().invoke(cli.cli, ["teardown", "--instance", instance, "--yes"])
    assert "Nothing of instance" in again.output


def test_teardown_and_the_backup_commands_are_listed() -> None:
    assert "teardown" in CliRunner().invoke(cli.cli, ["--help"]).output
    db_help = CliRunner().invoke(cli.cli, ["db", "--help"]).output
    assert all(command in db_help for command in ("backup", "backups", "restore", "upgrade"))

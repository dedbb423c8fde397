"""The sandbox image's own parts, checked in plain containers (no inner engine started)."""

from __future__ import annotations

import json

import docker
import pytest

from app.sandboxes.docker.images.catalog import get_recipe
from tests.support.images import run_container

pytestmark = pytest.mark.docker
MERGE = "/usr/local/bin/labdeck-merge-daemon-json"


def run_sandbox(
    client: docker.DockerClient, command: list[str], user: str = "root", shell: bool = True
) -> tuple[int, str]:
    """Run ``command`` in a throwaway sandbox container (with ``shell``, through /bin/sh -c)."""
    entrypoint = ["/bin/sh", "-c"] if shell else None
    environment = {"LABDECK_SANDBOX_NAME": "alice"}
    return run_container(
        client,
        get_recipe("sandbox").tag,
        command,
        entrypoint=entrypoint,
        user=user,
        environment=environment,
    )


def sh(client: docker.DockerClient, script: str, user: str = "root") -> tuple[int, str]:
    return run_sandbox(client, [script], user)


def merged(client: docker.DockerClient, managed: dict, attendee: str | None) -> str:
    setup = (
        f"mkdir -p /etc/labdeck && echo '{json.dumps(managed)}' > /etc/labdeck/daemon.managed.json"
    )
    if attendee is not None:
        setup += f" && printf '%s' '{attendee}' > /etc/docker/daemon.json"
    return sh(client, f'{setup} && {MERGE}; echo "exit=$?"; cat /etc/docker/daemon.json')[1]


def test_merge_unions_managed_settings_and_keeps_the_attendees(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    managed = {
        "registry-mirrors": ["http://10.0.0.5:5000"],
        "insecure-registries": ["10.0.0.5:5000"],
        "storage-driver": "overlay2",
    }
    attendee = '{"debug": true, "insecure-registries": ["mine:5000"], "storage-driver": "vfs"}'
    output = merged(docker_client, managed, attendee)
    assert "exit=0" in output
    result = json.loads(output.split("exit=0", 1)[1])
    assert result == {
        "debug": True,
        "insecure-registries": ["10.0.0.5:5000", "mine:5000"],
        "registry-mirrors": ["http://10.0.0.5:5000"],
        "storage-driver": "vfs",  # the attendee's choice wins
    }


def test_merge_refuses_invalid_json_and_leaves_it_alone(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    output = merged(docker_client, {"registry-mirrors": ["http://m:5000"]}, '{"debug": tru')
    assert "exit=1" in output
    assert "is not valid JSON" in output
    assert "sudo service docker restart" in output
    assert output.rstrip().endswith('{"debug": tru')


# A jq that fails: the merge must not need it on a fresh sandbox or an unchanged restart.
WITHOUT_JQ = (
    "mkdir -p /tmp/nojq && printf '#!/bin/sh\\nexit 99\\n' >/tmp/nojq/jq && chmod +x /tmp/nojq/jq"
)


def test_merge_on_a_fresh_sandbox_and_an_unchanged_restart_needs_no_jq(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    managed = {"registry-mirrors": ["http://10.0.0.5:5000"], "insecure-registries": []}
    script = (
        f"mkdir -p /etc/labdeck && echo '{json.dumps(managed)}' > /etc/labdeck/daemon.managed.json"
        f" && {WITHOUT_JQ} && PATH=/tmp/nojq:$PATH {MERGE} && echo first=ok"
        f" && PATH=/tmp/nojq:$PATH {MERGE} && echo second=ok"
        # an attendee's edit does need the merge: with the real jq it keeps both
        f""" && echo '{{"debug": true}}' >/etc/docker/daemon.json"""
        f" && PATH=/tmp/nojq:$PATH {MERGE}; echo without-jq=$?"
        f" && {MERGE} && cat /etc/docker/daemon.json"
    )
    code, output = sh(docker_client, script)
    assert code == 0, output
    assert "first=ok" in output and "second=ok" in output
    assert "without-jq=1" in output  # the edit was not skipped
    assert json.loads(output.split("without-jq=1", 1)[1]) == {
        "debug": True,
        "registry-mirrors": ["http://10.0.0.5:5000"],
    }


def test_learner_has_sudo_docker_and_a_friendly_prompt(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    code, output = sh(
        docker_client,
        "id; sudo -n true && echo sudo-ok; bash -ic 'echo \"${PS1@P}\"'",
        user="learner",
    )
    assert code == 0, output
    assert "uid=1000(learner)" in output and "(docker)" in output and "(sudo)" in output
    assert "sudo-ok" in output
    assert "learner@alice" in output
    assert "your own Docker engine" in output


def test_the_session_holder_and_the_check_agents_python_are_there(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    """The terminal attaches through labdeck-session; checks run through a python3 agent."""
    code, output = sh(
        docker_client,
        "command -v labdeck-session && python3 -c 'import json, subprocess, tty; print(\"py-ok\")'",
        user="learner",
    )
    assert code == 0, output
    assert "/usr/local/bin/labdeck-session" in output and "py-ok" in output


def test_engine_init_script_is_wrapped_and_tini_is_pid_1(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    code, output = sh(
        docker_client, "dpkg-divert --list /etc/init.d/docker; head -3 /etc/init.d/docker"
    )
    assert code == 0, output
    assert "/etc/init.d/docker.debian" in output
    assert "LabDeck's wrapper" in output
    config = docker_client.api.inspect_image(get_recipe("sandbox").tag)["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/bin/labdeck-init"]


def test_a_command_runs_alone_without_an_engine(
    docker_client: docker.DockerClient, first_build: list
) -> None:
    code, output = run_sandbox(docker_client, ["tmux", "-V"], shell=False)
    assert code == 0 and output.startswith("tmux "), output

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import httpx
import pytest

from app.sandboxes.docker import network
from app.sandboxes.docker.registry import WorkshopRegistry, split_reference
from tests.support.docker_lab import SEED, TEST_LABELS, Lab, free_port, instance_name

HELLO = SEED[0]


def test_official_images_live_under_library() -> None:
    assert split_reference("hello-world") == ("library/hello-world", "latest")
    assert split_reference("registry:2") == ("library/registry", "2")
    assert split_reference("me/app:1.0") == ("me/app", "1.0")


@pytest.fixture(scope="module")
def sandbox_network(engine: docker.DockerClient) -> Iterator[network.NetworkInfo]:
    instance = instance_name("reg")
    info = network.ensure_network(
        engine, instance, registry_port=free_port(), extra_labels=TEST_LABELS
    )
    yield info
    network.teardown_network(engine, instance, extra_labels=TEST_LABELS)


@pytest.fixture
def registry(
    engine: docker.DockerClient, sandbox_network: network.NetworkInfo
) -> Iterator[WorkshopRegistry]:
    instance = sandbox_network.name.removesuffix("-sandboxes")
    made = WorkshopRegistry(
        engine, instance, sandbox_network, sandbox_network.registry_port, extra_labels=TEST_LABELS
    )
    yield made
    made.remove(data=True)


def container_id(client: docker.DockerClient, name: str) -> str:
    return str(client.api.inspect_container(name)["Id"])


@pytest.mark.docker
def test_ensure_running_is_idempotent_and_publishes_on_gateway_and_loopback(
    engine: docker.DockerClient, registry: WorkshopRegistry, sandbox_network: network.NetworkInfo
) -> None:
    registry.ensure_running()
    first = container_id(engine, registry.name)
    registry.ensure_running()
    assert container_id(engine, registry.name) == first
    attrs = engine.api.inspect_container(registry.name)
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    bindings = {b["HostIp"] for b in attrs["HostConfig"]["PortBindings"]["5000/tcp"]}
    assert bindings == {"127.0.0.1", sandbox_network.gateway}
    assert registry.mirror_url() == f"http://{sandbox_network.gateway}:{registry.port}"
    assert httpx.get(f"{registry.local_url}/v2/", timeout=5).status_code == 200


@pytest.mark.docker
def test_stopped_registry_is_started_again(
    engine: docker.DockerClient, registry: WorkshopRegistry
) -> None:
    registry.ensure_running()
    engine.api.stop(registry.name, timeout=1)
    assert not registry.healthy()
    registry.ensure_running()
    assert registry.healthy()


@pytest.mark.docker
def test_seed_pushes_once_under_library_and_untags(
    engine: docker.DockerClient, registry: WorkshopRegistry
) -> None:
    registry.ensure_running()
    [first] = registry.seed([HELLO])
    assert first.pushed and first.reference == "library/hello-world:latest"
    local_id = engine.api.inspect_image(HELLO[0])["Id"]
    assert registry.config_digest("library/hello-world", "latest") == local_id
    started = time.monotonic()
    [again] = registry.seed([HELLO])
    assert not again.pushed and time.monotonic() - started < 1
    tags = engine.api.inspect_image(HELLO[0])["RepoTags"]
    assert not [tag for tag in tags if tag.startswith(f"127.0.0.1:{registry.port}/")]


@pytest.mark.docker
def test_online_mode_is_a_pull_through_cache_and_is_not_seeded(
    engine: docker.DockerClient, sandbox_network: network.NetworkInfo, lab: Lab
) -> None:
    # The shared lab's registry stands in for Docker Hub: this machine has no way out.
    upstream = lab.registry.mirror_url()
    instance = sandbox_network.name.removesuffix("-sandboxes")
    cache = WorkshopRegistry(
        engine,
        instance,
        sandbox_network,
        sandbox_network.registry_port,
        upstream,
        extra_labels=TEST_LABELS,
    )
    try:
        cache.ensure_running()
        env = engine.api.inspect_container(cache.name)["Config"]["Env"]
        assert f"REGISTRY_PROXY_REMOTEURL={upstream}" in env
        assert cache.seed([HELLO]) == []
        local_id = engine.api.inspect_image(HELLO[0])["Id"]
        assert cache.config_digest("library/hello-world", "latest") == local_id
    finally:
        cache.remove(data=True)

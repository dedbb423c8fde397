"""A *lab* on the real engine for the sandbox tests: one test instance's network, firewall
rules, workshop registry and Docker backend; everything carries ``io.labdeck.test=1`` and goes
away at the end, rules included. The fixtures that open them are in tests/sandboxes/conftest.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker

from app.ports import free_port
from app.sandboxes.base import Limits, SandboxSpec, SandboxState
from app.sandboxes.docker import network
from app.sandboxes.docker.backend import DockerBackend, DockerBackendConfig
from app.sandboxes.docker.network import NetworkInfo
from app.sandboxes.docker.registry import WorkshopRegistry
from app.sandboxes.docker.runtime import Profile
from tests.support.settings import REPO, TEST_LABELS

T = TypeVar("T")
SANDBOX_IMAGE = "labdeck/sandbox:latest"
NEEDED_IMAGES = (
    SANDBOX_IMAGE,
    "labdeck/workshop/registry:2",
    "labdeck/workshop/hello-world:latest",
    "labdeck/workshop/busybox:latest",
)
SEED = [
    ("labdeck/workshop/hello-world:latest", "hello-world:latest"),
    ("labdeck/workshop/busybox:latest", "busybox:latest"),
]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def instance_name(suffix: str) -> str:
    return f"test-{os.getpid()}-{suffix}"


def build_missing_images(client: docker.DockerClient) -> None:
    missing = [tag for tag in NEEDED_IMAGES if not client.images.list(name=tag)]
    if missing:
        subprocess.run([sys.executable, "-m", "app", "images", "build"], cwd=REPO, check=True)


@dataclass
class Lab:
    """One test instance: network + rules, registry, backend. ``spec()`` names its sandboxes."""

    instance: str
    client: docker.DockerClient
    network: NetworkInfo
    registry: WorkshopRegistry
    backend: DockerBackend
    made: list[str] = field(default_factory=list)

    def spec(
        self, suffix: str, limits: Limits | None = None, image: str = SANDBOX_IMAGE
    ) -> SandboxSpec:
        name = f"{self.instance}-sbx-{suffix}"
        self.made.append(name)
        return SandboxSpec(
            name=name, workshop="test", image=image, limits=limits or Limits(), labels=TEST_LABELS
        )

    async def ready_sandbox(self, suffix: str, limits: Limits | None = None) -> str:
        spec = self.spec(suffix, limits)
        states = [state async for state in self.backend.create(spec)]
        assert states[-1] is SandboxState.READY
        return spec.name

    def container_ip(self, name: str) -> str:
        attrs = self.client.api.inspect_container(name)
        return str(attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"])

    def close(self) -> None:
        async def remove_all() -> None:
            for name in self.made:
                await self.backend.remove(name)
            await self.backend.aclose()

        run(remove_all())
        self.registry.remove(data=True)
        network.teardown_network(self.client, self.instance, extra_labels=TEST_LABELS)


def open_lab(
    client: docker.DockerClient,
    profile: Profile,
    suffix: str,
    *,
    egress: network.Egress = "allow",
    seed: list[tuple[str, str]] | None = None,
) -> Lab:
    instance = instance_name(suffix)
    port = free_port("0.0.0.0")
    info = network.ensure_network(
        client, instance, registry_port=port, egress=egress, extra_labels=TEST_LABELS
    )
    registry = WorkshopRegistry(client, instance, info, port, extra_labels=TEST_LABELS)
    try:
        registry.ensure_running()
        registry.seed(SEED if seed is None else seed)
    except BaseException:
        registry.remove(data=True)
        network.teardown_network(client, instance, extra_labels=TEST_LABELS)
        raise
    config = DockerBackendConfig(
        instance=instance,
        runtime=profile,
        network=info.name,
        registry_mirror=registry.mirror_url(),
        extra_labels=TEST_LABELS,
    )
    return Lab(instance, client, info, registry, DockerBackend(config))

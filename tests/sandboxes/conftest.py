"""Real-engine fixtures for the sandbox tests (the lab itself: tests/support/docker_lab.py).
Sandboxes are costly (two cores here): modules share them."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from app.sandboxes.docker import network
from app.sandboxes.docker.runtime import Profile, detect_runtime
from tests.support.docker_lab import (
    SANDBOX_IMAGE,
    TEST_LABELS,
    Lab,
    build_missing_images,
    open_lab,
)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    from app.sandboxes.docker.engine import EngineUnavailable, docker_client

    try:
        client = docker_client(timeout=120)
    except EngineUnavailable as error:
        pytest.skip(str(error))
    build_missing_images(client)
    yield client
    network.sweep_orphan_rules(client, extra_labels=TEST_LABELS)
    client.close()


@pytest.fixture(scope="session")
def runtime_profile(
    engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Profile:
    data_dir = tmp_path_factory.mktemp("runtime")
    return detect_runtime(engine, SANDBOX_IMAGE, data_dir, labels=TEST_LABELS)


@pytest.fixture(scope="session")
def lab(engine: docker.DockerClient, runtime_profile: Profile) -> Iterator[Lab]:
    """The shared allow-egress lab; modules make their own sandboxes in it."""
    shared = open_lab(engine, runtime_profile, "lab")
    yield shared
    shared.close()

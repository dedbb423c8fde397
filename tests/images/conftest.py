"""A real engine and LabDeck's images, built once per test session (offline here); the helpers
the tests share are in tests/support/images.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest
from docker.errors import DockerException

from app.sandboxes.docker.images.builder import BuildResult, build_all
from app.sandboxes.docker.images.mode import Mode, detect_mode


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as error:
        pytest.fail(f"These tests need a Docker engine (./labdeck test starts one): {error}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def build_mode() -> Mode:
    return detect_mode()


@pytest.fixture(scope="session")
def first_build(docker_client: docker.DockerClient, build_mode: Mode) -> list[BuildResult]:
    """Builds what is missing or outdated; up-to-date images are reused."""
    started = time.monotonic()
    results = build_all(docker_client, mode=build_mode)
    print(f"\nfirst build ({build_mode}): {time.monotonic() - started:.1f}s")
    for result in results:
        size = docker_client.api.inspect_image(result.image_id)["Size"]
        state = "built" if result.built else "reused"
        print(f"  {result.tag:<40} {state:<7} {result.seconds:6.1f}s {size / 1e6:7.1f} MB")
    return results

"""Shared fixtures: settings on a temporary data dir, an app with a real SQLite file, a Docker sweep."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

REPO = Path(__file__).resolve().parent.parent
TEST_LABEL = "io.labdeck.test"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        content_dir=REPO / "content",
        instance=f"test-{os.getpid()}",
        instructor_token="test-instructor-token-0123456789",
        secret_key="test-secret-key-0123456789abcdef",
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The portal over FakeBackend; tests that need real sandboxes build their own."""
    from app.sandboxes.fake import FakeBackend

    app = create_app(settings)
    app.state.sandbox_backend = FakeBackend()
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _leftovers(client: object) -> list[str]:
    import docker

    assert isinstance(client, docker.DockerClient)
    found: list[str] = []
    filters = {"label": TEST_LABEL}
    for container in client.containers.list(all=True, filters=filters):
        found.append(f"container {container.name}")
        container.remove(force=True, v=True)
    for container in client.containers.list(all=True, filters={"label": "io.labdeck.instance"}):
        if container.labels.get("io.labdeck.instance", "").startswith("test-"):
            found.append(f"container {container.name}")
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters=filters) + _test_instance(client.volumes.list()):
        found.append(f"volume {volume.name}")
        volume.remove(force=True)
    for network in client.networks.list(filters=filters) + _test_instance(client.networks.list()):
        found.append(f"network {network.name}")
        network.remove()
    return found


def _test_instance(objects: list[Any]) -> list[Any]:
    """Volumes and networks that a test instance (``test-...``) made without the test label."""
    return [
        item
        for item in objects
        if (item.attrs.get("Labels") or {}).get("io.labdeck.instance", "").startswith("test-")
        and TEST_LABEL not in (item.attrs.get("Labels") or {})
    ]


@pytest.fixture(scope="session", autouse=True)
def sweep_docker_objects() -> Iterator[None]:
    """Remove what earlier runs left, and fail the run if this one leaks containers, volumes or networks."""
    from app.engine import EngineUnavailable, docker_client

    try:
        client = docker_client(timeout=30)
    except EngineUnavailable:
        yield
        return
    _leftovers(client)
    yield
    leaked = _leftovers(client)
    if leaked:
        pytest.fail("tests leaked Docker objects (now removed): " + ", ".join(leaked))

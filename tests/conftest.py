"""Shared fixtures: settings on a temporary data dir, an app with a real SQLite file, a Docker sweep."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

REPO = Path(__file__).resolve().parent.parent
TEST_LABEL = "io.labdeck.test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: if one ever leaks Playwright's loop, no asyncio test runs after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


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


_PID_IN_NAME = re.compile(r"(?:^|-)(\d{2,7})(?:-|$)")


def _other_live_session(labels: dict[str, str], name: str) -> bool:
    """True when the object names the pid of another pytest still running (developers run
    suites side by side; CI runs one): its objects are not ours to sweep."""
    for text in (labels.get("io.labdeck.instance", ""), name):
        match = _PID_IN_NAME.search(text)
        if match and int(match.group(1)) != os.getpid():
            try:
                cmdline = Path(f"/proc/{match.group(1)}/cmdline").read_bytes()
            except OSError:
                continue
            if b"pytest" in cmdline or b"app" in cmdline:
                return True
    return False


def _is_test_object(labels: dict[str, str]) -> bool:
    return TEST_LABEL in labels or labels.get("io.labdeck.instance", "").startswith("test-")


def _leftovers(client: object) -> list[str]:
    """Remove every test object not owned by another live session; say what was removed."""
    import docker

    assert isinstance(client, docker.DockerClient)
    found: list[str] = []
    for container in client.containers.list(all=True):
        if _is_test_object(container.labels) and not _other_live_session(
            container.labels, container.name
        ):
            found.append(f"container {container.name}")
            container.remove(force=True, v=True)
    for kind, objects in (("volume", client.volumes.list()), ("network", client.networks.list())):
        for item in objects:
            labels = item.attrs.get("Labels") or {}
            if _is_test_object(labels) and not _other_live_session(labels, item.name):
                found.append(f"{kind} {item.name}")
                if kind == "volume":
                    item.remove(force=True)
                else:
                    item.remove()
    return found


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

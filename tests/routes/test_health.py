from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_health_degraded_when_engine_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    with TestClient(create_app(settings)) as client:  # the Docker backend, not a fake
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["engine"].startswith("unreachable")
    assert body["db"] == "ok"


@pytest.mark.docker
def test_health_ok_with_real_engine_images_and_registry(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:  # the Docker backend: network, registry
        deadline = time.monotonic() + 120
        while (response := client.get("/healthz")).status_code != 200:
            assert time.monotonic() < deadline, response.json()
            time.sleep(0.5)
    body = response.json()
    assert body == {"status": "ok", "db": "ok", "engine": "ok", "images": "ok", "registry": "ok"}

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_health_degraded_when_engine_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["engine"] == "unreachable"
    assert body["db"] == "ok"


@pytest.mark.docker
def test_health_ok_with_real_engine_and_images(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.json() == {"status": "ok", "db": "ok", "engine": "ok", "images": "ok"}
    assert response.status_code == 200

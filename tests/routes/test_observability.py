"""What an operator watches: `/metrics`' histograms and gauges move as the portal works, every
response carries an `X-Request-ID`, and `LABDECK_LOG_FORMAT=json` logs one object per line."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.instructor import sandbox_health
from app.logging_setup import JsonFormatter, log_config, request_id
from app.sandboxes.base import BackendHealth
from app.sandboxes.fake import FakeBackend
from tests.support.portal import checked, join, portal, sandboxes


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def app(settings: Settings, fake: FakeBackend) -> FastAPI:
    app = portal(settings.model_copy(update={"spawn_workers": 1}))
    app.state.sandbox_backend = fake
    return app


@pytest.fixture
def client(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(sandbox_health, "FRESH_SECONDS", 0.0)  # each scrape asks the backend
    with TestClient(app) as test_client:
        yield test_client


def sample(client: TestClient, name_and_labels: str) -> float | None:
    """The value of one sample of `/metrics`, or None when it is not there."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def test_creation_hand_out_and_check_durations_are_histograms(client: TestClient) -> None:
    creations = 'labdeck_sandbox_creation_seconds_count{outcome="ready"}'
    hand_outs = 'labdeck_sandbox_hand_out_seconds_count{source="new"}'
    checks = 'labdeck_check_duration_seconds_count{result="passed"}'
    before = {name: sample(client, name) or 0 for name in (creations, hand_outs, checks)}

    attendee = join(client, "Ada")
    eventually(lambda: getattr(sandboxes(client).view(attendee), "state", "") == "ready")
    task = client.app.state.services.workshop.lessons[0].tasks[0].id  # type: ignore[attr-defined]
    assert client.portal.call(checked, client.app, attendee, task)  # type: ignore[union-attr]

    text = client.get("/metrics").text
    assert "# TYPE labdeck_sandbox_creation_seconds histogram" in text
    assert 'labdeck_sandbox_creation_seconds_bucket{outcome="ready",le="+Inf"}' in text
    for name in (creations, hand_outs, checks):
        assert sample(client, name) == before[name] + 1, name


def test_the_creation_queue_s_length_is_a_gauge(client: TestClient, fake: FakeBackend) -> None:
    fake.never_ready = True  # the one worker stays busy; the rest wait their turn
    for name in ("Ada", "Grace", "Linus"):
        join(client, name)
    eventually(lambda: sample(client, "labdeck_sandbox_creation_queue") == 2)
    assert sample(client, "labdeck_sandbox_creations_running") == 1


def test_open_websockets_are_counted_until_they_close(client: TestClient) -> None:
    join(client, "Ada")
    gauge = 'labdeck_websockets_open{kind="events"}'
    before = sample(client, gauge) or 0
    with client.websocket_connect("/ws/events"):
        assert sample(client, gauge) == before + 1
    eventually(lambda: sample(client, gauge) == before)


@pytest.mark.parametrize(
    ("registry", "expected"), [("ok", 1.0), ("failing: port 5055 refused", 0.0), ("none", None)]
)
def test_the_registry_s_health_is_a_gauge(
    client: TestClient, fake: FakeBackend, registry: str, expected: float | None
) -> None:
    async def health() -> BackendHealth:
        return BackendHealth(engine="ok", registry=registry)

    fake.health = health  # type: ignore[method-assign]
    assert sample(client, "labdeck_registry_up") == expected


def test_every_response_carries_a_request_id_and_keeps_a_proxy_s(client: TestClient) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    kept = client.get("/healthz", headers={"X-Request-ID": "proxy-42.a"})
    assert kept.headers["x-request-id"] == "proxy-42.a"
    odd = client.get("/healthz", headers={"X-Request-ID": "not ok; <script>"})
    assert odd.headers["x-request-id"] != "not ok; <script>"


def test_log_lines_during_a_request_carry_its_id(
    client: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    original = sandbox_health.current_health

    async def spying(service: object) -> BackendHealth:
        logging.getLogger("labdeck.test").info("asked for health")
        seen.append(request_id.get())
        return await original(service)  # type: ignore[arg-type]

    monkeypatch.setattr("app.routes.metrics.current_health", spying)
    with caplog.at_level(logging.INFO, logger="labdeck.test"):
        response = client.get("/metrics")
    assert seen == [response.headers["x-request-id"]]
    line = JsonFormatter().format(caplog.records[-1])
    assert json.loads(line)["message"] == "asked for health"


def test_json_format_is_one_object_per_line_with_the_request_id() -> None:
    record = logging.LogRecord(
        "labdeck", logging.WARNING, __file__, 1, "two\nlines %s", ("x",), None
    )
    token = request_id.set("abc123")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "two\nlines x" and entry["request_id"] == "abc123"
    assert entry["level"] == "warning" and entry["logger"] == "labdeck"


def test_an_access_log_line_in_json_names_the_request() -> None:
    args = ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz", 200)


def test_the_setting_chooses_the_formatter(settings: Settings) -> None:
    as_json = log_config(settings.model_copy(update={"log_format": "json"}))
    assert as_json["formatters"]["labdeck"] == {"()": "app.logging_setup.JsonFormatter"}
    assert "format" in log_config(settings)["formatters"]["labdeck"]

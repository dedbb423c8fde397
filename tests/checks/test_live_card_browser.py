"""In a real browser: each check's result appears in the task card as soon as it finishes,
before the whole run is over (the "done when" of issue 6)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.checks.service import CheckService
from app.config import Settings
from app.main import create_app
from app.sandboxes.fake import FakeBackend
from tests.checks.conftest import DEMO_CONTENT, FakeSandboxes, ShellBackend
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer, free_port

pytestmark = pytest.mark.browser


class DemoServer(LiveServer):
    """The portal on the demo workshop; its checks run in local folders, slowly on purpose."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium for this test alone: a session-wide Playwright would hold the main thread's event
    loop and break the async tests that pytest runs after this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def backend(tmp_path: Path) -> ShellBackend:
    backend = ShellBackend(tmp_path / "sandboxes")
    backend.delay = 0.7  # each check takes a moment, so the page can be seen in between
    return backend


@pytest.fixture
def demo_server(settings: Settings, backend: ShellBackend) -> Iterator[DemoServer]:
    app = create_app(settings.model_copy(update={"content_dir": DEMO_CONTENT, "warm_pool_size": 0}))
    app.state.sandbox_backend = FakeBackend()
    server = DemoServer(app)
    with server:
        app.state.checks = CheckService(
            FakeSandboxes(backend), app.state.events, app.state.db_engine
        )
        yield server


def test_each_check_appears_as_it_finishes(browser: Any, demo_server: DemoServer) -> None:
    page = browser.new_page()
    try:
        page.goto(demo_server.url + "/")
        page.fill("#name", "Live Tester")
        page.click("button[type=submit]")
        page.wait_for_url("**/lessons/basics")
        page.wait_for_timeout(300)  # the event stream connects
        page.locator("#task-make-file details.hint summary").click()
        page.click("#task-make-file .check-button")

        page.wait_for_selector('#check-make-file-0[data-status="failed"]', timeout=5000)
        statuses = page.locator("#checks-make-file li").evaluate_all(
            "items => items.map(item => item.dataset.status)"
        )
        assert statuses in (["failed"], ["failed", "running"]), statuses  # the rest still to come
        assert "There is no made.txt yet." in page.inner_text("#check-make-file-0")

        page.wait_for_selector('#check-make-file-2[data-status="passed"]', timeout=10000)
        page.wait_for_selector("#task-make-file.status-failed", timeout=5000)
        assert page.locator("#checks-make-file li").count() == 3
        assert page.locator("#task-make-file details.hint").get_attribute("open") is not None
    finally:
        page.close()

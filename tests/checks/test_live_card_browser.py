"""In a real browser: each check's result appears in the task card as soon as it finishes,
before the whole run is over (the "done when" of issue 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.checks.service import CheckService
from app.config import Settings
from tests.support.checks import DEMO_CONTENT, FakeSandboxes, ShellBackend
from tests.support.live_server import LiveServer
from tests.support.portal import portal

pytestmark = pytest.mark.browser


@pytest.fixture
def backend(tmp_path: Path) -> ShellBackend:
    backend = ShellBackend(tmp_path / "sandboxes")
    backend.delay = 0.7  # each check takes a moment, so the page can be seen in between
    return backend


@pytest.fixture
def demo_server(settings: Settings, backend: ShellBackend) -> Iterator[LiveServer]:
    """The portal on the demo workshop; its checks run in local folders, slowly on purpose."""
    app = portal(settings.model_copy(update={"content_dir": DEMO_CONTENT}))
    with LiveServer(app) as server:
        app.state.services.checks = CheckService(
            FakeSandboxes(backend), app.state.services.events, app.state.services.db
        )
        yield server


def test_each_check_appears_as_it_finishes(browser: Any, demo_server: LiveServer) -> None:
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

from __future__ import annotations

from typing import Any

import pytest

from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def test_home_page_loads_and_joining_opens_the_first_lesson(
    browser: Any, live_server: LiveServer
) -> None:
    page = browser.new_page()
    try:
        page.goto(live_server.url + "/")
        assert "Docker" in page.title()
        page.fill("#name", "Smoke <b>Tester</b>")
        page.click("button[type=submit]")
        page.wait_for_url("**/lessons/*")
        assert page.locator("article.lesson > h1").first.inner_text()
        assert page.locator(".who").inner_text() == "Smoke <b>Tester</b>"
        assert page.locator(".task-card").count() >= 1
    finally:
        page.close()

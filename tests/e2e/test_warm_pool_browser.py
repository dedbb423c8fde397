"""The warm pool's size set on the dashboard survives a restart (issue 14, item 10)."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from tests.support.browser import LAPTOP, ClassroomBackend, portal, sign_in
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser
SIZE = "#dashboard-pool-size"


def test_the_warm_pool_size_is_kept_across_a_restart(browser: Any, settings: Settings) -> None:
    context = browser.new_context(viewport=LAPTOP)
    try:
        page = context.new_page()
        with LiveServer(portal(settings, ClassroomBackend())) as server:
            sign_in(page, server.url)
            assert page.input_value(SIZE) == "0"
            page.fill(SIZE, "3")
            page.click(".pool-panel button[type=submit]")
            page.wait_for_selector("#flash:has-text('keeps 3 sandbox(es) ready')")
        with LiveServer(portal(settings, ClassroomBackend())) as restarted:
            assert restarted.app.state.services.sandboxes.pool.size == 3
            page.goto(restarted.url + "/instructor")  # still signed in: same secret
            assert page.input_value(SIZE) == "3"
    finally:
        context.close()

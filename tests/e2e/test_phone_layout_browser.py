"""A phone (390 x 844, issue 14, item 2): the header fits on one line with "Raise hand" in
view, nothing scrolls sideways, and the terminal is one tap away; Run shows it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import PHONE, join, page_width_overflow, wait_for_terminal_text
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return dict(found)


def test_a_phone_gets_a_layout_that_fits(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/")
        assert page_width_overflow(page) == 0
        join(page, live_server.url, "Phone User with a long name")
        assert box(page, ".topbar")["height"] < 60  # one line
        hand = box(page, "#hand button")
        assert hand["x"] >= 0 and hand["x"] + hand["width"] <= PHONE["width"]
        assert page.locator("#hand button").inner_text().strip() == "Raise hand"
        assert page_width_overflow(page) == 0
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        assert page_width_overflow(page) == 0

        # The switch stays at the bottom of the screen; the terminal is one tap away.
        switch = box(page, ".view-switch")
        assert switch["y"] + switch["height"] <= PHONE["height"] + 1
        assert page.locator("#workbench").is_hidden()
        page.click(".view-switch [data-view=terminal]")
        assert page.locator("#lesson").is_hidden()
        bench = box(page, "#workbench")
        assert bench["y"] < PHONE["height"] / 2 and bench["height"] > PHONE["height"] / 2
        page.locator(".terminal-status").wait_for(state="hidden")
        cols = page.evaluate("window.labdeckTerminalSession.term.cols")
        assert 30 <= cols <= 60  # fitted to the phone, not 80 columns cut off
        assert page_width_overflow(page) == 0

        # Back to the lesson; a Run button brings the terminal with the command typed.
        page.click(".view-switch [data-view=lesson]")
        run = page.locator(".code-block button.run").first
        run.scroll_into_view_if_needed()
        run.click()
        assert page.locator("#workbench").is_visible()
        assert (
            page.locator(".view-switch [data-view=terminal]").get_attribute("aria-pressed")
            == "true"
        )
        wait_for_terminal_text(page, "docker")
    finally:
        context.close()

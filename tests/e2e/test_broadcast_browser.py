"""Broadcasts reach the attendee where they look (issue 14, item 4): a toast that stays until
dismissed and a line above the terminal; no empty yellow strip when there is none."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import LAPTOP, join, sign_in
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def in_viewport(page: Any, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(selector) => { const r = document.querySelector(selector).getBoundingClientRect();
               return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight; }""",
            selector,
        )
    )


def test_a_scrolled_attendee_sees_the_broadcast_until_they_dismiss_it(
    browser: Any, live_server: LiveServer
) -> None:
    attendee = browser.new_context(viewport=LAPTOP)
    instructor = browser.new_context(viewport=LAPTOP)
    try:
        lesson = attendee.new_page()
        join(lesson, live_server.url, "Reader")
        assert lesson.locator("#broadcast").is_hidden()  # nothing sent: no strip at all
        lesson.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        dashboard = instructor.new_page()
        sign_in(dashboard, live_server.url)
        dashboard.fill("#broadcast-message", "Break until 11:00 <b>sharp</b>")
        dashboard.click(".broadcast-panel button[type=submit]")

        lesson.wait_for_selector("#broadcast .broadcast-text")
        assert in_viewport(lesson, "#broadcast")  # fixed on screen, however far down
        assert lesson.locator("#broadcast .broadcast-text").inner_text() == (
            "Break until 11:00 <b>sharp</b>"
        )
        line = lesson.locator("#workbench-broadcast")
        assert line.is_visible()
        assert line.inner_text() == "From the instructor: Break until 11:00 <b>sharp</b>"
        lesson.wait_for_timeout(1000)
        assert lesson.locator("#broadcast").is_visible()  # stays until dismissed

        lesson.click(".broadcast-dismiss")
        assert lesson.locator("#broadcast").is_hidden()
        assert line.is_hidden()
        lesson.reload()
        assert lesson.locator("#broadcast").is_hidden()  # dismissed stays dismissed
    finally:
        attendee.close()
        instructor.close()

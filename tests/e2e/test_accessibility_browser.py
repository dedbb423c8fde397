"""Accessibility (issue 14, item 8): axe-core finds no serious or critical violation on the join
page, a lesson page and the dashboard; the terminal can be left from the keyboard; every Check
button says which task; a skip link; the raised hand drawn without an emoji font; a favicon."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import (
    AXE_SCRIPT,
    LAPTOP,
    join,
    serious_accessibility_violations,
    sign_in,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def test_axe_finds_nothing_serious_on_the_join_lesson_and_dashboard_pages(
    browser: Any, live_server: LiveServer
) -> None:
    attendee = browser.new_context(viewport=LAPTOP)
    instructor = browser.new_context(viewport=LAPTOP)
    try:
        page = attendee.new_page()
        page.goto(live_server.url + "/")
        assert serious_accessibility_violations(page) == []
        join(page, live_server.url, "Axe Tester")
        page.locator(".terminal-status").wait_for(state="hidden")
        page.click("#hand button")
        page.wait_for_selector("#hand button[aria-pressed=true]")
        assert serious_accessibility_violations(page) == []
        dashboard = instructor.new_page()
        sign_in(dashboard, live_server.url)
        dashboard.wait_for_selector("#sandbox-health li")
        assert serious_accessibility_violations(dashboard) == []
    finally:
        attendee.close()
        instructor.close()


def test_the_starting_badge_is_readable(browser: Any, live_server: LiveServer) -> None:
    page = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Badge Reader")
        page.locator(".terminal-status").wait_for(state="hidden")  # the terminal says "ready"
        page.evaluate(
            """() => { const b = document.getElementById("sandbox-state");
                       b.dataset.state = "starting"; b.textContent = "starting"; }"""
        )
        page.add_script_tag(path=str(AXE_SCRIPT))
        found = page.evaluate(
            "axe.run('#sandbox-state', {runOnly: ['color-contrast']}).then(r => r.violations.length)"
        )
        assert found == 0
    finally:
        page.close()


def test_keyboard_users_can_leave_the_terminal_and_skip_to_the_content(
    browser: Any, live_server: LiveServer
) -> None:
    page = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Keyboard User")
        page.locator(".terminal-status").wait_for(state="hidden")
        page.click("#terminal")
        assert page.evaluate("document.activeElement.closest('#terminal') !== null")
        page.keyboard.press("Tab")  # the shell's completion: focus stays
        assert page.evaluate("document.activeElement.closest('#terminal') !== null")
        assert "F6" in page.locator("#terminal-keys").inner_text()
        page.keyboard.press("F6")
        assert page.evaluate("document.activeElement.id") == "lesson"
        # The skip link is the first stop and moves past the header.
        page.goto(page.url)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    finally:
        page.close()


def test_buttons_say_what_they_do_and_need_no_emoji_font(
    browser: Any, live_server: LiveServer
) -> None:
    page = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Screen Reader")
        names = page.locator(".check-button").evaluate_all(
            "buttons => buttons.map(b => b.textContent.trim())"
        )
        assert len(names) >= 2 and len(set(names)) == len(names)
        assert names[0] == "Check “Run hello-world”"
        assert page.get_by_role("button", name="Check “Run hello-world”").count() == 1
        hand = page.locator("#hand button")
        assert hand.locator("svg.hand-icon").count() == 1
        assert "✋" not in hand.inner_text()
        icon = page.locator("link[rel=icon]").get_attribute("href")
        assert icon and page.request.get(live_server.url + icon).ok
    finally:
        page.close()

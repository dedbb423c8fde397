"""The dashboard's row menu (issue 14, item 3): it opens above the grid, not clipped behind the
next row, every item can be clicked, and the keyboard reaches every item."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import LAPTOP, attendee_id, join, sign_in
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser

NAMES = ["Ada", "Grace", "Linus"]


def join_everyone(browser: Any, url: str) -> list[Any]:
    """One browser context (cookie jar) per attendee; their lesson pages stay open."""
    pages = []
    for name in NAMES:
        page = browser.new_context(viewport=LAPTOP).new_page()
        join(page, url, name)
        pages.append(page)
    return pages


def open_menu(dashboard: Any, row: Any) -> Any:
    row.locator(".row-menu").click()
    menu = dashboard.locator(".row-actions")
    menu.wait_for()
    return menu


def test_every_item_of_the_row_menu_can_be_clicked(browser: Any, live_server: LiveServer) -> None:
    attendees = join_everyone(browser, live_server.url)  # rows under the first one's menu
    instructor = browser.new_context(viewport=LAPTOP)
    try:
        attendees[0].click("#hand button")
        dashboard = instructor.new_page()
        sign_in(dashboard, live_server.url)
        first = attendee_id(live_server.app, "Ada")
        row = dashboard.locator(f"#attendee-{first}")
        dashboard.wait_for_selector(f"#attendee-{first}.hand-raised")

        # Links open the shadow terminal in a new tab. Playwright's click fails when another
        # element (the next row) would receive it.
        for label, mode in (("Watch terminal", "read"), ("Type in terminal", "write")):
            menu = open_menu(dashboard, row)
            with instructor.expect_page() as opened:
                menu.get_by_role("menuitem", name=label).click(timeout=3000)
            assert opened.value.url.endswith(f"/instructor/attendees/{first}/terminal?mode={mode}")
            opened.value.close()
        menu = open_menu(dashboard, row)
        with instructor.expect_page() as opened:
            menu.get_by_role("menuitem", name="Open ports").click(timeout=3000)
        opened.value.wait_for_selector("#sandbox-ports")
        assert opened.value.url.endswith(f"/instructor/attendees/{first}/ports")
        opened.value.close()

        dashboard.once("dialog", lambda dialog: dialog.accept())
        open_menu(dashboard, row).get_by_role("menuitem", name="Reset sandbox").click(timeout=3000)
        dashboard.wait_for_selector("#flash:has-text('Resetting the sandbox of Ada')")
        dashboard.wait_for_selector(f'#attendee-{first} .sandbox-state[data-state="ready"]')
        open_menu(dashboard, row).get_by_role("menuitem", name="Stop sandbox").click(timeout=3000)
        dashboard.wait_for_selector("#flash:has-text('Stopped the sandbox of Ada')")
        open_menu(dashboard, row).get_by_role("menuitem", name="Clear hand").click(timeout=3000)
        dashboard.wait_for_selector("#flash:has-text('Cleared the hand of Ada')")
        assert dashboard.locator(".row-actions").count() == 0  # an action closes the menu
    finally:
        for page in attendees:
            page.context.close()
        instructor.close()


def test_the_keyboard_reaches_every_item(browser: Any, live_server: LiveServer) -> None:
    attendees = join_everyone(browser, live_server.url)
    instructor = browser.new_context(viewport=LAPTOP)
    try:
        dashboard = instructor.new_page()
        sign_in(dashboard, live_server.url)
        button = dashboard.locator(f"#attendee-{attendee_id(live_server.app, 'Ada')} .row-menu")
        button.focus()
        dashboard.keyboard.press("Enter")
        assert button.get_attribute("aria-expanded") == "true"
        focused = []
        for _ in range(5):
            focused.append(dashboard.evaluate("document.activeElement.textContent.trim()"))
            dashboard.keyboard.press("ArrowDown")
        assert focused == [
            "Watch terminal",
            "Type in terminal",
            "Open ports",
            "Reset sandbox",
            "Stop sandbox",
        ]
        assert dashboard.evaluate("document.activeElement.textContent.trim()") == "Watch terminal"
        dashboard.keyboard.press("Escape")
        assert dashboard.locator(".row-actions").count() == 0
        assert dashboard.evaluate("document.activeElement.classList.contains('row-menu')")
        assert button.get_attribute("aria-expanded") == "false"
    finally:
        for page in attendees:
            page.context.close()
        instructor.close()

"""The attendee's journey at 1280 and 390 px and the instructor's actions, in Debian's Chromium,
saving the screenshots in docs/screenshots/ that the README shows (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import (
    LAPTOP,
    PHONE,
    ClassroomBackend,
    attendee_id,
    join,
    page_width_overflow,
    screenshot,
    serious_accessibility_violations,
    sign_in,
    wait_for_terminal_text,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser
TASK = "#task-run-hello-world"
SESSION = """
Welcome to your LabDeck sandbox!

This machine is yours alone, with your own Docker engine:
every image, container, network and volume you create here
stays here. Try: docker run hello-world

learner@labdeck-sbx-ada:~$ docker run hello-world

Hello from Docker!
This message shows that your installation appears to be
working correctly.

learner@labdeck-sbx-ada:~$ docker ps -a --format '{{.Names}}'
great_elbakyan
learner@labdeck-sbx-ada:~$ """


def test_the_attendee_and_the_instructor_through_a_class(
    browser: Any, live_server: LiveServer, backend: ClassroomBackend
) -> None:
    laptop = browser.new_context(viewport=LAPTOP)
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    instructor = browser.new_context(viewport=LAPTOP)
    try:
        # Joining.
        page = laptop.new_page()
        page.goto(live_server.url + "/")
        screenshot(page, "join")
        join(page, live_server.url, "Ada Lovelace")
        page.locator(".terminal-status").wait_for(state="hidden")
        live_server.call(backend.show, SESSION)
        wait_for_terminal_text(page, "great_elbakyan")
        screenshot(page, "lesson-with-terminal")

        # A failed check, then a passed one, each with its messages.
        backend.failing = {"hello-world"}
        card = page.locator(TASK)
        card.locator(".check-button").click()
        page.wait_for_selector(f"{TASK} .check.failed")
        card.scroll_into_view_if_needed()
        screenshot(page, "check-failed")
        backend.failing = set()
        card.locator(".check-button").click()
        page.wait_for_selector(f"{TASK}.status-passed")
        page.locator(TASK).scroll_into_view_if_needed()
        screenshot(page, "check-passed")
        page.click("#hand button")
        page.wait_for_selector("#hand button[aria-pressed=true]")

        # The instructor: a raised hand on the dashboard, then the shadow terminal.
        dashboard = instructor.new_page()
        sign_in(dashboard, live_server.url)
        number = attendee_id(live_server.app, "Ada Lovelace")
        dashboard.wait_for_selector(f'#hands li[data-attendee="{number}"]')
        dashboard.wait_for_selector("#sandbox-health li")
        assert serious_accessibility_violations(dashboard) == []
        screenshot(dashboard, "dashboard-hand-raised")
        dashboard.goto(f"{live_server.url}/instructor/attendees/{number}/terminal?mode=read")
        dashboard.wait_for_selector("#terminal[data-followed]")
        dashboard.locator(".terminal-status").wait_for(state="hidden")
        live_server.call(backend.show, SESSION)  # a fake sandbox replays no history
        wait_for_terminal_text(dashboard, "great_elbakyan")
        screenshot(dashboard, "shadow-terminal")

        # A phone: the lesson, then the terminal one tap away, nothing sideways.
        small = phone.new_page()
        join(small, live_server.url, "Grace Hopper")
        assert page_width_overflow(small) == 0
        screenshot(small, "phone-lesson")
        small.click(".view-switch [data-view=terminal]")
        small.locator(".terminal-status").wait_for(state="hidden")
        live_server.call(backend.show, "learner@labdeck-sbx-grace:~$ ")
        wait_for_terminal_text(small, "grace")
        screenshot(small, "phone-terminal")
    finally:
        laptop.close()
        phone.close()
        instructor.close()

"""Check results survive a reload (issue 14, item 6): the last result of each task, failure
messages included, is on the lesson page again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import LAPTOP, ClassroomBackend, join
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser
TASK = "#task-run-hello-world"


def test_the_last_check_result_is_shown_after_a_reload(
    browser: Any, live_server: LiveServer, backend: ClassroomBackend
) -> None:
    page = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Reloader")
        backend.failing = {"hello-world"}
        page.click(f"{TASK} .check-button")
        page.wait_for_selector(f"{TASK} .check.failed")
        message = page.locator(f"{TASK} .check.failed .check-message").first.inner_text()
        assert "not in your engine yet" in message

        page.reload()
        page.wait_for_selector(f"{TASK} .check.failed")
        assert page.locator(f"{TASK} .check.failed .check-message").first.inner_text() == message
        assert page.locator(f"{TASK} .task-status").inner_text() == "Not yet"
        assert "Your last check" in page.locator(f"{TASK} .task-checked-at").inner_text()
        # The output of the failed check is there too, behind its toggle.
        assert "No such image" in (page.locator(f"{TASK} .check-output").first.text_content() or "")

        backend.failing = set()
        page.click(f"{TASK} .check-button")
        page.wait_for_selector(f"{TASK}.status-passed")
        page.reload()
        assert page.locator(f"{TASK} .check.passed").count() == 2
        assert page.locator(f"{TASK} .check.failed").count() == 0
    finally:
        page.close()


def test_a_check_pressed_while_a_command_runs_says_so(
    browser: Any, live_server: LiveServer, backend: ClassroomBackend
) -> None:
    """The sandbox's prompt marks (OSC 133) tell the page a command still runs (a docker build):
    results of that moment may contradict each other, and the card says to check again."""
    page = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Impatient")
        page.locator(".terminal-status").wait_for(state="hidden")
        live_server.call(backend.show, "\x1b]133;A\x07$ docker build -t web .\n\x1b]133;C\x07")
        page.wait_for_function("window.labdeckTerminal.commandRunningFor() !== null")
        page.click(f"{TASK} .check-button")
        notice = page.locator("#notice-run-hello-world")
        notice.wait_for(state="visible")
        assert "still running in your terminal" in notice.inner_text()

        live_server.call(backend.show, "Successfully built\n\x1b]133;A\x07$ ")
        page.wait_for_function("window.labdeckTerminal.commandRunningFor() === null")
        page.click(f"{TASK} .check-button")
        # The first check may have passed already: wait for this one's result to replace it.
        notice.wait_for(state="hidden", timeout=10_000)
        assert page.locator(f"{TASK}.status-passed").count() == 1
    finally:
        page.close()

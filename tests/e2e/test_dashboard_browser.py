"""Two browsers: the instructor's dashboard updates live when the attendee passes a task, raises
a hand, or reads a broadcast. Debian's Chromium through Playwright; a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import Settings
from tests.support.browser import check_task, portal
from tests.support.live_server import LiveServer
from tests.support.settings import INSTRUCTOR_TOKEN as TOKEN

pytestmark = pytest.mark.browser

NAME = "Ada <b>Lovelace</b>"


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """The portal (sandboxes over FakeBackend); ``server.call`` runs the checks on its loop."""
    with LiveServer(portal(settings)) as running:
        yield running


def test_dashboard_updates_live_as_the_attendee_works(browser: Any, server: LiveServer) -> None:
    teacher_context, attendee_context = browser.new_context(), browser.new_context()
    try:
        dashboard, lesson = teacher_context.new_page(), attendee_context.new_page()
        script_errors: list[str] = []
        for page in (dashboard, lesson):
            page.on("pageerror", lambda error: script_errors.append(str(error)))
        # The instructor signs in; the dashboard opens its live connection.
        dashboard.goto(server.url + "/instructor")
        dashboard.fill("#token", TOKEN)
        dashboard.click("button[type=submit]")
        dashboard.wait_for_selector("#live[data-state=live]")
        assert dashboard.locator("#grid-body tr").count() == 0

        # An attendee joins: their row appears without a reload.
        lesson.goto(server.url + "/")
        lesson.fill("#name", NAME)
        lesson.click("button[type=submit]")
        lesson.wait_for_url("**/lessons/*")
        row = dashboard.locator("#grid-body tr.attendee")
        row.wait_for()
        assert row.locator(".name").inner_text() == NAME  # shown as text, not markup
        attendee_id = int(row.get_attribute("data-attendee") or 0)

        # The attendee passes a task through the real checks code path.
        cell = row.locator('td[data-task="run-hello-world"]')
        assert cell.get_attribute("class") == "cell"  # not tried
        started = time.perf_counter()
        assert server.call(check_task, server.app, attendee_id, "run-hello-world")
        dashboard.wait_for_selector(
            f'#attendee-{attendee_id} td.passed[data-task="run-hello-world"]',
            timeout=2000,
        )
        assert time.perf_counter() - started < 2.0
        figure = dashboard.locator('#figures td[data-task="run-hello-world"] .share')
        assert figure.inner_text() == "100%"

        # The row's menu acts on the attendee's sandbox; the row follows the sandbox's state.
        dashboard.click(f"#attendee-{attendee_id} .row-menu")
        dashboard.click(".row-actions button:has-text('Stop sandbox')")
        dashboard.wait_for_selector(f'#attendee-{attendee_id} .sandbox-state[data-state="stopped"]')
        assert "Stopped the sandbox of" in dashboard.locator("#flash").inner_text()

        # A raised hand shows on the dashboard; clearing it resets the attendee's button.
        lesson.click("#hand button")
        dashboard.wait_for_selector(f'#hands li[data-attendee="{attendee_id}"]')
        assert dashboard.locator("#summary").inner_text().count("1") >= 1
        dashboard.click(f'#hands li[data-attendee="{attendee_id}"] button')
        dashboard.wait_for_selector(f'#hands li[data-attendee="{attendee_id}"]', state="detached")
        lesson.wait_for_selector("#hand button[aria-pressed=false]")

        # Page scripts that POST with fetch() carry the CSRF token (static/js/events.js).
        status = lesson.evaluate("fetch('/hand/lower', {method: 'POST'}).then(r => r.status)")
        assert status == 200

        # A broadcast reaches the attendee's page as text.
        dashboard.fill("#broadcast-message", "Break <i>now</i>")
        dashboard.click(".broadcast-panel button[type=submit]")
        lesson.wait_for_selector("#broadcast .broadcast-text")
        assert lesson.locator("#broadcast .broadcast-text").inner_text() == "Break <i>now</i>"

        # Filtering hides rows in the page, no request needed.
        dashboard.fill("#filter-text", "nobody")
        assert dashboard.locator(f"#attendee-{attendee_id}").is_hidden()
        dashboard.fill("#filter-text", "ada")
        assert dashboard.locator(f"#attendee-{attendee_id}").is_visible()
        assert script_errors == []
    finally:
        teacher_context.close()
        attendee_context.close()

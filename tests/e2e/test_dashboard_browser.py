"""Two browsers: the instructor's dashboard updates live when the attendee passes a task, raises
a hand, or reads a broadcast. Debian's Chromium through Playwright; a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from app.config import Settings
from tests.e2e.conftest import free_port
from tests.instructor.support import TOKEN, checked, portal

pytestmark = pytest.mark.browser

NAME = "Ada <b>Lovelace</b>"


class Portal:
    """The portal app (sandboxes over FakeBackend) under uvicorn in a thread. ``call`` runs a
    coroutine on the server's own event loop, where the event hub and the services live."""

    def __init__(self, settings: Settings) -> None:
        self.app = portal(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve()

        asyncio.run(serve())

    def call(self, work: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(work(*args), self.loop).result(timeout=30)

    def __enter__(self) -> Portal:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the portal did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def server(settings: Settings) -> Iterator[Portal]:
    with Portal(settings) as running:
        yield running


def test_dashboard_updates_live_as_the_attendee_works(browser: Any, server: Portal) -> None:
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
        assert server.call(checked, server.app, attendee_id, "run-hello-world")
        dashboard.wait_for_selector(
            f'#attendee-{attendee_id} td.passed[data-task="run-hello-world"]',
            timeout=2000,
        )
        assert time.perf_counter() - started < 2.0
        figure = dashboard.locator('#figures td[data-task="run-hello-world"] .share')
        assert figure.inner_text() == "100%"

        # The row's menu acts on the attendee's sandbox; the row follows the sandbox's state.
        dashboard.click(f"#attendee-{attendee_id} .row-menu")
        dashboard.click(f"#attendee-{attendee_id} .menu button:has-text('Stop sandbox')")
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

"""A workshop registry that stops answering is said (issue 14, item 9): `/healthz` reports it,
the dashboard's Sandboxes panel names it, and the attendee's terminal has a notice."""

from __future__ import annotations

from typing import Any

import pytest

from app.instructor import sandbox_health
from tests.support.browser import LAPTOP, ClassroomBackend, join, sign_in
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser
DOWN = "not answering: connection refused on 127.0.0.1:5055"


def test_the_dashboard_and_the_attendee_are_told_when_the_registry_is_down(
    browser: Any, live_server: LiveServer, backend: ClassroomBackend, monkeypatch: Any
) -> None:
    monkeypatch.setattr(sandbox_health, "FRESH_SECONDS", 0.0)  # ask the backend every time
    attendee = browser.new_context(viewport=LAPTOP)
    instructor = browser.new_context(viewport=LAPTOP)
    try:
        dashboard = instructor.new_page()
        sign_in(dashboard, live_server.url)
        dashboard.wait_for_selector("#sandbox-health.ok [data-part=registry]")
        assert "registry: ok" in dashboard.locator("#sandbox-health").inner_text()
        lesson = attendee.new_page()
        join(lesson, live_server.url, "Puller")
        lesson.wait_for_selector("#registry-notice[hx-trigger='every 60s']", state="attached")
        assert lesson.locator("#registry-notice").is_hidden()

        backend.registry = DOWN
        health = lesson.request.get(live_server.url + "/healthz")
        assert health.status == 503
        assert health.json()["registry"] == DOWN

        dashboard.reload()
        panel = dashboard.locator("#sandbox-health:not(.ok)")
        panel.wait_for()
        assert DOWN in panel.inner_text()
        assert "Attendees cannot pull images" in panel.locator(".registry-problem").inner_text()
        lesson.reload()
        notice = lesson.locator("#registry-notice")
        notice.wait_for(state="visible")
        assert "registry is not answering" in notice.inner_text()
    finally:
        attendee.close()
        instructor.close()

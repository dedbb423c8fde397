"""The instructor's shadow terminal (issue 14, item 7): the attendee's size rules. The
instructor's view draws the attendee's grid, scaled to fit, and follows when it changes; the
attendee's shell is never resized to the instructor's screen."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import (
    LAPTOP,
    ClassroomBackend,
    attendee_id,
    join,
    sign_in,
    wait_for_terminal_text,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser
SIZE = "(t => [t.cols, t.rows])(window.labdeckTerminalSession.term)"


@pytest.mark.parametrize("mode", ["read", "write"])
def test_the_shadow_terminal_keeps_the_attendees_size(
    browser: Any, live_server: LiveServer, backend: ClassroomBackend, mode: str
) -> None:
    attendee = browser.new_context(viewport={"width": 1000, "height": 700})
    instructor = browser.new_context(viewport=LAPTOP)  # a bigger screen than the attendee's
    try:
        lesson = attendee.new_page()
        join(lesson, live_server.url, "Watched")
        lesson.locator(".terminal-status").wait_for(state="hidden")
        lesson.click("#terminal")
        lesson.keyboard.type("echo the_attendee_typed_this")
        wait_for_terminal_text(lesson, "the_attendee_typed_this")
        own = lesson.evaluate(SIZE)

        shadow = instructor.new_page()
        sign_in(shadow, live_server.url)
        number = attendee_id(live_server.app, "Watched")
        shadow.goto(f"{live_server.url}/instructor/attendees/{number}/terminal?mode={mode}")
        shadow.wait_for_selector(f"#terminal[data-followed='{own[0]}x{own[1]}']")
        assert shadow.evaluate(SIZE) == own
        assert backend.ttys[0].size == tuple(own)  # the attendee's attach: never the instructor's

        lesson.set_viewport_size({"width": 1200, "height": 760})  # the attendee resizes
        lesson.wait_for_function(f"JSON.stringify({SIZE}) !== JSON.stringify({own})")
        resized = lesson.evaluate(SIZE)
        shadow.wait_for_selector(f"#terminal[data-followed='{resized[0]}x{resized[1]}']")
        assert shadow.evaluate(SIZE) == resized
        assert all(tty.size in (None, tuple(resized)) for tty in backend.ttys if not tty.closed)
        # The view fits the instructor's page: nothing of the grid is cut off.
        fits = shadow.evaluate(
            """() => { const box = document.getElementById("terminal").getBoundingClientRect();
                       const grid = document.querySelector("#terminal .xterm-screen").getBoundingClientRect();
                       return grid.right <= box.right + 1 && grid.bottom <= box.bottom + 1; }"""
        )
        assert fits
    finally:
        attendee.close()
        instructor.close()

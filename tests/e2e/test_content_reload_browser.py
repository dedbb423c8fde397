"""An author edits a lesson while its page is open (issue 15, item 4): a reload of the page shows
the new text; a broken edit shows a banner with the file and line, and the last good text, on
the lesson page and the instructor's dashboard, which drops it live once the file is fixed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from tests.support.browser import LAPTOP, ClassroomBackend, join, portal, sign_in
from tests.support.content import (
    FIRST_LESSON,
    FIRST_LESSON_TEXT,
    break_front_matter,
    copy_docker_basics,
    edit,
)
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser
RELOAD_SECONDS = 10  # the portal looks once a second; a load of docker-basics takes ~0.3 s


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_docker_basics(tmp_path / "content")


@pytest.fixture
def live_server(
    settings: Settings, backend: ClassroomBackend, folder: Path
) -> Iterator[LiveServer]:
    """The portal over a copy of docker-basics, reloading it as LABDECK_CONTENT_RELOAD says."""
    app = portal(settings, backend, content_dir=folder.parent, content_reload=True)
    with LiveServer(app) as server:
        yield server


def reload_until(page: Any, seen: Callable[[], bool]) -> None:
    """Reload the page, as an author does after saving, until ``seen()``."""
    deadline = time.monotonic() + RELOAD_SECONDS
    while True:
        page.reload()
        if seen():
            return
        assert time.monotonic() < deadline, "the page did not change after the edit"
        time.sleep(0.3)


def test_an_edited_lesson_shows_on_reload_and_a_broken_one_says_where(
    browser: Any, live_server: LiveServer, folder: Path
) -> None:
    lesson = folder / FIRST_LESSON
    page = browser.new_page(viewport=LAPTOP)
    dashboard = browser.new_page(viewport=LAPTOP)
    try:
        join(page, live_server.url, "Author")
        text = page.locator("article.lesson")
        assert FIRST_LESSON_TEXT in text.inner_text()
        assert page.locator(".content-problems").count() == 0

        edit(lesson, FIRST_LESSON_TEXT, "Docker does two things, edited live.")
        reload_until(page, lambda: "edited live" in text.inner_text())

        good = lesson.read_text()
        line = break_front_matter(lesson, "<i>colour</i>")
        banner = page.locator(".content-problems")
        reload_until(page, lambda: banner.count() == 1)
        assert banner.is_visible()
        where = banner.locator(".where").first.inner_text()
        assert where == f"docker-basics/{FIRST_LESSON}:{line}"
        assert "<i>colour</i>: unknown key" in banner.inner_text()  # shown as text, not markup
        assert banner.locator("i").count() == 0
        assert "edited live" in text.inner_text()  # the last version that loaded

        # The instructor sees it too, and an open dashboard drops it once the file is fixed.
        sign_in(dashboard, live_server.url)
        assert dashboard.locator(".content-problems .where").first.inner_text() == where
        lesson.write_text(good)
        dashboard.wait_for_selector(".content-problems", state="detached", timeout=10_000)
        assert dashboard.locator("#grid .task-head").count() > 0  # the grid is whole
        page.reload()
        assert banner.count() == 0
    finally:
        page.close()
        dashboard.close()

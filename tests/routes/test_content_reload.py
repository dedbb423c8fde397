"""An author edits the served workshop while the portal runs: the pages, /api/me, the dashboard,
its live feed and the export follow, and broken content shows where it is broken."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.lessons.reload import LiveWorkshop
from tests.support.content import (
    FIRST_LESSON,
    FIRST_LESSON_TEXT,
    REMOVABLE_TASK,
    break_front_matter,
    copy_docker_basics,
    edit,
    remove_task,
)
from tests.support.portal import Person, join, portal, run_check, sign_in

FIRST_PAGE = "/lessons/first-container"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_docker_basics(tmp_path / "content")


def app_over(settings: Settings, folder: Path, reload: bool) -> FastAPI:
    return portal(
        settings.model_copy(update={"content_dir": folder.parent, "content_reload": reload})
    )


@pytest.fixture
def client(settings: Settings, folder: Path) -> Iterator[TestClient]:
    """The portal over the copy, reloading only when a test says so (``refresh``)."""
    with TestClient(app_over(settings, folder, reload=False)) as client:
        yield client


@pytest.fixture
def attendee(client: TestClient) -> Person:
    person = Person(client)
    join(person, "Ada")
    return person


@pytest.fixture
def instructor(client: TestClient) -> Person:
    person = Person(client)
    sign_in(person)
    return person


def refresh(client: TestClient) -> None:
    """What the portal does once a second with LABDECK_CONTENT_RELOAD on, on its own loop."""
    content: LiveWorkshop = client.app.state.services.content  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(content.refresh)


def next_message(ws: Any, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The next dashboard message ``wanted`` (sandbox progress comes and goes meanwhile)."""
    for _ in range(50):
        message: dict[str, Any] = json.loads(ws.receive_text())
        if wanted(message):
            return message
    raise AssertionError("the dashboard never got the message")


def test_an_edit_shows_on_the_next_page_load(
    client: TestClient, attendee: Person, folder: Path
) -> None:
    assert FIRST_LESSON_TEXT in attendee.get(FIRST_PAGE).text
    edit(folder / FIRST_LESSON, FIRST_LESSON_TEXT, "Docker does <em>two</em> useful things.")
    refresh(client)
    page = attendee.get(FIRST_PAGE).text
    assert "Docker does <em>two</em> useful things." in page and FIRST_LESSON_TEXT not in page


def test_broken_content_keeps_the_pages_and_shows_file_and_line(
    client: TestClient, attendee: Person, instructor: Person, folder: Path
) -> None:
    line = break_front_matter(folder / FIRST_LESSON, "<script>alert(1)</script>")
    refresh(client)
    where = f"docker-basics/{FIRST_LESSON}:{line}"
    for page in (attendee.get(FIRST_PAGE), instructor.get("/instructor")):
        assert page.status_code == 200
        assert 'id="content-problems-title"' in page.text and where in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;: unknown key" in page.text
        assert "<script>alert(1)" not in page.text
    assert FIRST_LESSON_TEXT in attendee.get(FIRST_PAGE).text  # the last good lesson
    assert "content-problems-title" not in client.get("/").text  # not for passers-by


def test_the_banner_goes_once_the_content_loads_again(
    client: TestClient, attendee: Person, instructor: Person, folder: Path
) -> None:
    lesson = folder / FIRST_LESSON
    good = lesson.read_text()
    break_front_matter(lesson, "colour")
    refresh(client)
    assert "content-problems-title" in attendee.get(FIRST_PAGE).text
    lesson.write_text(good.replace(FIRST_LESSON_TEXT, "Docker does two things, fixed."))
    refresh(client)
    for page in (attendee.get(FIRST_PAGE), instructor.get("/instructor")):
        assert "content-problems-title" not in page.text
    assert "Docker does two things, fixed." in attendee.get(FIRST_PAGE).text


def test_a_removed_task_breaks_no_page_export_or_api(
    client: TestClient, attendee: Person, instructor: Person, folder: Path
) -> None:
    ada = join(attendee.clone(), "Bea")  # a second attendee, with progress on the task
    assert run_check(client, ada, REMOVABLE_TASK)
    remove_task(folder / FIRST_LESSON, REMOVABLE_TASK)
    refresh(client)
    me = attendee.get("/api/me")
    assert me.status_code == 200 and REMOVABLE_TASK not in me.json()["tasks"]
    assert "run-hello-world" in me.json()["tasks"]
    page = attendee.get(FIRST_PAGE)
    assert page.status_code == 200 and f'id="task-{REMOVABLE_TASK}"' not in page.text
    dashboard = instructor.get("/instructor")
    assert dashboard.status_code == 200 and f'data-task="{REMOVABLE_TASK}"' not in dashboard.text
    assert instructor.get("/api/class").status_code == 200
    export = instructor.get("/instructor/export.csv")
    assert export.status_code == 200 and REMOVABLE_TASK not in export.text
    assert "Bea,run-hello-world" in export.text
    check = attendee.post(f"/api/tasks/{REMOVABLE_TASK}/check")
    assert check.status_code == 404 and "no task" in check.json()["error"]


def test_open_dashboards_redraw_after_a_reload_and_update_with_the_new_tasks(
    client: TestClient, instructor: Person, folder: Path
) -> None:
    ada = join(instructor.clone(), "Ada")
    with instructor.websocket_connect("/ws/instructor") as ws:
        remove_task(folder / FIRST_LESSON, REMOVABLE_TASK)
        refresh(client)
        assert next_message(ws, lambda message: message["type"] == "resync")
        assert run_check(client, ada, "run-hello-world")
        update = next_message(ws, lambda message: message.get("cause", {}).get("type") == "task")
    assert 'data-task="run-hello-world"' in update["row"]
    assert f'data-task="{REMOVABLE_TASK}"' not in update["row"]


def test_new_sandboxes_get_the_reloaded_sandbox_block(client: TestClient, folder: Path) -> None:
    edit(folder / "workshop.yaml", "  memory: 1g", "  memory: 768m")
    refresh(client)
    sandboxes = client.app.state.services.sandboxes  # type: ignore[attr-defined]
    assert sandboxes.config.limits.memory == "768m"


def test_the_portal_reloads_by_itself_when_the_setting_is_on(
    settings: Settings, folder: Path
) -> None:
    with TestClient(app_over(settings, folder, reload=True)) as client:
        join(client, "Ada")
        edit(folder / "workshop.yaml", "title: Docker basics, hands on", "title: Docker, live")
        deadline = time.monotonic() + 10
        while client.get("/api/workshop").json()["title"] != "Docker, live":
            assert time.monotonic() < deadline, "the edit was not served within 10 s"
            time.sleep(0.1)


def test_reload_is_off_in_production_unless_asked_for(settings: Settings) -> None:
    strong = {"instructor_token": "x" * 20, "secret_key": "y" * 20}
    production = settings.model_copy(update={"env": "production", **strong})
    assert settings.reloads_content and not production.reloads_content
    assert production.model_copy(update={"content_reload": True}).reloads_content
    assert not settings.model_copy(update={"content_reload": False}).reloads_content

"""The check routes, over a tiny demo workshop whose "sandboxes" are local folders (no Docker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.checks import store
from app.checks.service import CheckService
from app.config import Settings
from app.csrf import headers_for
from app.instructor import locks
from app.main import create_app
from app.sandboxes.fake import FakeBackend
from tests.support.checks import DEMO_CONTENT, MAKE_FILE_FIRST_RUN, FakeSandboxes, ShellBackend
from tests.support.portal import join

ROUTES = [
    "/api/tasks/make-file/check",
    "/tasks/make-file/check",
    "/tasks/make-file/watch",
    "/tasks/make-file/solution-shown",
    "/lessons/basics/setup",
]


@pytest.fixture
def demo_app(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"content_dir": DEMO_CONTENT, "warm_pool_size": 0}))
    app.state.sandbox_backend = FakeBackend()  # a sandbox service, if started, needs no engine
    return app


@pytest.fixture
def backend(tmp_path: Path) -> ShellBackend:
    return ShellBackend(tmp_path / "sandboxes")


@pytest.fixture
def demo(demo_app: FastAPI, backend: ShellBackend) -> Iterator[TestClient]:
    with TestClient(demo_app) as client:
        sandboxes = FakeSandboxes(backend)
        # The lifespan closes whatever service app.state.services.checks holds when it ends.
        demo_app.state.services.checks = CheckService(
            sandboxes, demo_app.state.services.events, demo_app.state.services.db
        )
        yield client


def csrf(client: TestClient, **more: str) -> dict[str, str]:
    """The headers an htmx request from a LabDeck page carries (see app/csrf.py)."""
    app: FastAPI = client.app  # type: ignore[assignment]
    secret = app.state.settings.cookie_secret()
    return {**headers_for(secret, dict(client.cookies.items())), **more}


HTMX = {"HX-Request": "true"}


def attendee_home(client: TestClient, backend: ShellBackend) -> Path:
    return backend.home(f"sbx-{me(client)}")


def me(client: TestClient) -> int:
    app: FastAPI = client.app  # type: ignore[assignment]
    cookies = app.state.services.cookies
    found = cookies.load(client.cookies.get("labdeck_session"))
    assert found is not None
    return int(found[0])


@pytest.mark.parametrize("path", ROUTES)
def test_every_check_route_needs_an_attendee(demo: TestClient, path: str) -> None:
    demo.get("/healthz")  # any page hands out the CSRF cookie
    response = demo.post(path, headers=csrf(demo))
    assert response.status_code == 401


def test_page_routes_refuse_requests_without_the_csrf_token(demo: TestClient) -> None:
    join(demo, "Ada")
    assert demo.post("/tasks/make-file/check").status_code == 403
    assert demo.post("/api/tasks/make-file/check").status_code == 200  # scripts: no token


def test_unknown_tasks_are_404_json_for_scripts(demo: TestClient) -> None:
    join(demo, "Ada")
    response = demo.post("/api/tasks/no-such-task/check")
    assert response.status_code == 404
    assert response.json() == {
        "error": "There is no task 'no-such-task' in this workshop.",
        "status": 404,
    }
    assert demo.post("/tasks/..%2Fx/check", headers=csrf(demo)).status_code == 404
    assert demo.post("/lessons/nope/setup", headers=csrf(demo)).status_code == 404


def test_the_json_result_follows_the_contract(demo: TestClient, backend: ShellBackend) -> None:
    join(demo, "Ada")
    before = demo.post("/api/tasks/make-file/check")
    assert before.status_code == 200
    body = before.json()
    assert body["task_id"] == "make-file" and body["passed"] is False
    assert [(c["name"], c["passed"]) for c in body["checks"]] == [
        ("made.txt exists", False),
        ("It says hello", False),
        ("The lesson setup ran first", True),
    ]
    assert body["checks"][0]["message"] == "There is no `made.txt` yet."
    (attendee_home(demo, backend) / "made.txt").write_text("hello\n")
    after = demo.post("/api/tasks/make-file/check").json()
    assert after["passed"] is True and all(c["passed"] for c in after["checks"])
    assert demo.get("/api/me").json()["tasks"]["make-file"] == "passed"


def test_a_locked_lessons_tasks_are_not_checked(
    demo: TestClient, demo_app: FastAPI, backend: ShellBackend
) -> None:
    join(demo, "Ada")
    workshop = demo_app.state.services.workshop
    with Session(demo_app.state.services.db.engine) as session:
        locks.set_locked(session, workshop, "basics", True)
    refused = demo.post("/api/tasks/make-file/check")
    assert refused.status_code == 403
    assert "has not opened the lesson" in refused.json()["error"]
    for path in ("/tasks/make-file/check", "/tasks/make-file/watch", "/lessons/basics/setup"):
        assert demo.post(path, headers=csrf(demo, **HTMX)).status_code == 403
    assert backend.commands == [], "nothing ran in the sandbox"
    assert demo.get("/api/me").json()["tasks"]["make-file"] == "not_tried"
    with Session(demo_app.state.services.db.engine) as session:
        locks.set_locked(session, workshop, "basics", False)
    assert demo.post("/api/tasks/make-file/check").status_code == 200


def test_htmx_gets_the_task_card_with_each_check(demo: TestClient) -> None:
    join(demo, "Ada")
    response = demo.post("/tasks/make-file/check", headers=csrf(demo, **HTMX))
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith("{#") is False and "<html" not in html
    assert 'id="task-make-file"' in html and "status-failed" in html
    for index in range(3):
        assert f'id="check-make-file-{index}"' in html
    assert "There is no <code>made.txt</code> yet." in html


def test_the_event_stream_shows_each_check_as_it_finishes(demo: TestClient) -> None:
    join(demo, "Ada")
    with demo.websocket_connect("/ws/events") as events:
        demo.post("/tasks/make-file/check", headers=csrf(demo, **HTMX))
        received = [events.receive_json()]
        while received[-1]["type"] != "task":  # the sandbox's own progress comes too
            received.append(events.receive_json())
    checks = [(e["check_index"], e["status"]) for e in received if e["type"] == "check"]
    assert checks == MAKE_FILE_FIRST_RUN
    assert received[-1]["type"] == "task" and received[-1]["passed"] is False


def test_showing_the_solution_is_recorded(demo: TestClient, demo_app: FastAPI) -> None:
    join(demo, "Ada")
    assert demo.post("/tasks/make-file/solution-shown", headers=csrf(demo)).status_code == 204
    with Session(demo_app.state.services.db.engine) as session:
        progress = store.progress_of(session, me(demo), "make-file")
    assert progress is not None and progress.solution_shown and progress.attempts == 0


def test_watch_mode_is_off_by_default_and_toggled_by_the_card(
    demo: TestClient, demo_app: FastAPI
) -> None:
    join(demo, "Ada")
    watches = demo_app.state.services.checks.watches
    assert not watches.is_watching(me(demo), "make-file")
    assert (
        demo.post("/tasks/make-file/watch", data={"watch": "on"}, headers=csrf(demo)).status_code
        == 204
    )
    assert watches.is_watching(me(demo), "make-file")
    card = demo.post("/tasks/make-file/check", headers=csrf(demo, **HTMX)).text
    assert 'value="on" hx-post="/tasks/make-file/watch"' in card and " checked>" in card
    assert (
        demo.post("/tasks/make-file/watch", headers=csrf(demo)).status_code == 204
    )  # an unchecked box sends nothing
    assert not watches.is_watching(me(demo), "make-file")


def test_opening_a_lesson_runs_its_setup_once(demo: TestClient, backend: ShellBackend) -> None:
    join(demo, "Ada")
    page = demo.get("/lessons/basics")
    assert "/static/js/checks.js" in page.text
    for _ in range(2):
        assert demo.post("/lessons/basics/setup", headers=csrf(demo)).json() == {
            "lesson": "basics",
            "ready": True,
            "failed": False,
            "message": "",
        }
    assert (attendee_home(demo, backend) / "setup-count").read_text() == "run\n"


def test_an_unavailable_sandbox_shows_a_notice_in_the_card(
    demo: TestClient, demo_app: FastAPI
) -> None:
    join(demo, "Ada")
    demo_app.state.services.checks.sandboxes.unavailable = (
        "Your sandbox is starting again; try in a few seconds."
    )
    card = demo.post("/tasks/make-file/check", headers=csrf(demo, **HTMX))
    assert card.status_code == 200 and "Your sandbox is starting again" in card.text
    body = demo.post("/api/tasks/make-file/check").json()
    assert body["status"] == "unavailable" and body["passed"] is False

"""The portal over FakeBackend, for route and instructor tests: the app, people sharing one
client, sign-in, joining, CSRF headers, seeded progress, small workshops written to disk (the
real loader reads them), and the fixtures of a tiny workshop with its instructor signed in
(import them by name where they are used, as tests/instructor/conftest.py does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.cookiejar import Cookie
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.config import Settings
from app.csrf import headers_for
from app.main import create_app
from app.models import Attendee, TaskProgress
from app.sandboxes.fake import FakeBackend
from app.sandboxes.service import SandboxService
from tests.support.settings import INSTRUCTOR_TOKEN

TOKEN = INSTRUCTOR_TOKEN
TINY_LESSONS = [
    ("First steps", [("one", "Task one"), ("two", "Task two")]),
    ("More", [("three", "Task three")]),
]


def portal(settings: Settings) -> FastAPI:
    """The real app (create_app) with sandboxes over FakeBackend and no warm pool."""
    app = create_app(settings.model_copy(update={"warm_pool_size": 0}))
    app.state.sandbox_backend = FakeBackend()
    return app


async def checked(app: Any, attendee_id: int, task_id: str) -> bool:
    """Check a task through the real checks code path (CheckService: run the checks in the
    sandbox, store the attempt, publish the result). FakeBackend's commands succeed unless told
    otherwise. Call it on the app's event loop."""
    services = app.state.services
    found = services.workshop.task(task_id)
    assert found is not None
    run = await services.checks.check(attendee_id, *found)
    return bool(run.passed)


def sandboxes(client: Client) -> SandboxService:
    """The app's sandbox service (over FakeBackend)."""
    service: SandboxService = client.app.state.services.sandboxes
    return service


class Person:
    """One browser's cookies over a shared TestClient: everyone in a test talks to the app through
    one client, hence one event loop, so events published for one reach another's websocket
    safely (separate TestClients would each run the lifespan on a loop of their own)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._jar: list[Cookie] = []

    @property
    def cookies(self) -> dict[str, str]:
        return {cookie.name: cookie.value or "" for cookie in self._jar}

    @property
    def app(self) -> Any:
        return self.client.app

    def clone(self) -> Person:
        """The same browser, for a request whose cookie changes must not stick (e.g. a join)."""
        twin = Person(self.client)
        twin._jar = list(self._jar)
        return twin

    @property
    def portal(self) -> Any:
        return self.client.portal

    @contextmanager
    def acting(self) -> Iterator[None]:
        jar = self.client.cookies.jar
        others = list(jar)
        jar.clear()
        for cookie in self._jar:
            jar.set_cookie(cookie)
        try:
            yield
        finally:
            self._jar = list(jar)
            jar.clear()
            for cookie in others:
                jar.set_cookie(cookie)

    def get(self, url: str, **options: Any) -> Any:
        with self.acting():
            return self.client.get(url, **options)

    def post(self, url: str, **options: Any) -> Any:
        with self.acting():
            return self.client.post(url, **options)

    @contextmanager
    def websocket_connect(self, url: str, **options: Any) -> Iterator[Any]:
        with self.acting():
            session = self.client.websocket_connect(url, **options)
            websocket = session.__enter__()
        try:
            yield websocket
        finally:
            session.__exit__(None, None, None)


Client = TestClient | Person


def csrf(client: Client) -> dict[str, str]:
    """The header a page's htmx or fetch() sends; visits a page first for the CSRF cookie."""
    if "labdeck_csrf" not in client.cookies:
        client.get("/static/css/labdeck.css")
    app: Any = client.app
    return headers_for(app.state.settings.cookie_secret(), dict(client.cookies.items()))


def sign_in(client: Client) -> None:
    response = client.post(
        "/instructor/login", data={"token": TOKEN}, headers=csrf(client), follow_redirects=False
    )
    assert response.status_code == 303, response.text


def join(client: Client, name: str) -> int:
    response = client.post("/join", data={"name": name}, follow_redirects=False)
    assert response.status_code == 303, response.text
    app: Any = client.app
    found = app.state.services.cookies.load(client.cookies.get("labdeck_session"))
    assert found is not None
    return int(found[0])


def record(
    app: FastAPI,
    attendee_id: int,
    task_id: str,
    *,
    attempts: int,
    passed_after: timedelta | None = None,
    failed_check: str | None = None,
    solution_shown: bool = False,
) -> None:
    """A progress row as the checks leave it; ``passed_after`` counts from joining."""
    with Session(app.state.services.db.engine) as session:
        attendee = session.get(Attendee, attendee_id)
        assert attendee is not None
        joined: datetime = attendee.joined_at
        session.merge(
            TaskProgress(
                attendee_id=attendee_id,
                task_id=task_id,
                attempts=attempts,
                first_passed_at=joined + passed_after if passed_after is not None else None,
                last_failed_check=failed_check,
                solution_shown=solution_shown,
            )
        )
        session.commit()


def attendee_named(app: FastAPI, name: str) -> Attendee:
    with Session(app.state.services.db.engine) as session:
        return session.exec(select(Attendee).where(Attendee.name == name)).one()


def write_workshop(
    root: Path, slug: str, title: str, lessons: list[tuple[str, list[tuple[str, str]]]]
) -> Path:
    """A workshop folder under ``root``: ``lessons`` is [(lesson title, [(task id, task title)])].
    Every check runs ``true``. Returns ``root`` (a content dir)."""
    folder = root / slug
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"title": title, "description": f"{title}, for tests."}
    (folder / "workshop.yaml").write_text(json.dumps(meta))  # JSON is YAML
    for number, (lesson_title, tasks) in enumerate(lessons, start=1):
        blocks = [_task_block(task_id, task_title) for task_id, task_title in tasks]
        text = f"---\ntitle: {json.dumps(lesson_title)}\nminutes: 5\n---\n\n# Lesson {number}\n\n"
        (folder / f"{number:02d}-lesson-{number}.md").write_text(text + "\n".join(blocks))
    return root


def _task_block(task_id: str, title: str) -> str:
    task = {
        "id": task_id,
        "title": title,
        "instructions": "Do it.",
        "checks": [{"name": "It is done", "run": "true", "message": "Not done yet."}],
    }
    return f"````task\n{json.dumps(task)}\n````\n"


def run_check(client: Client, attendee_id: int, task_id: str) -> bool:
    assert client.portal is not None
    return bool(client.portal.call(checked, client.app, attendee_id, task_id))


# -- fixtures: the tiny workshop, one client, the instructor signed in --------------------------


@pytest.fixture
def tiny_settings(settings: Settings, tmp_path: Path) -> Settings:
    """A three-task workshop, small enough to spell out exact expectations."""
    content = write_workshop(tmp_path / "content", "tiny", "Tiny workshop", TINY_LESSONS)
    return settings.model_copy(update={"content_dir": content})


@pytest.fixture
def tiny_app(tiny_settings: Settings) -> FastAPI:
    return portal(tiny_settings)


@pytest.fixture
def client(tiny_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(tiny_app) as client:
        yield client


@pytest.fixture
def instructor(client: TestClient) -> Person:
    person = Person(client)
    sign_in(person)
    return person

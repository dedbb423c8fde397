"""The instructor's routes: sign-in, dashboard, actions, raised hands, broadcasts, lesson locks,
and escaping of whatever attendees and content authors type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, col, select

from app.config import Settings
from app.instructor.auth import INSTRUCTOR_COOKIE
from app.models import Sandbox
from tests.support.portal import (
    TOKEN,
    Person,
    client,
    csrf,
    instructor,
    join,
    portal,
    run_check,
    sandboxes,
    sign_in,
    tiny_app,
    tiny_settings,
    write_workshop,
)

__all__ = ["client", "instructor", "tiny_app", "tiny_settings"]  # the tiny workshop's fixtures

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def attendee(client: TestClient) -> Person:
    person = Person(client)
    join(person, "Ada")
    return person


def action(client: Person, path: str, **form: Any) -> Any:
    return client.post(path, data=form, headers={**csrf(client), "HX-Request": "true"})


# -- sign-in -----------------------------------------------------------------------------------


def test_dashboard_asks_for_the_token_first(tiny_app: FastAPI) -> None:
    with TestClient(tiny_app) as client:
        page = client.get("/instructor")
        assert page.status_code == 401
        assert 'name="token"' in page.text and 'name="csrf_token"' in page.text
        wrong = client.post("/instructor/login", data={"token": "nope"}, headers=csrf(client))
        assert wrong.status_code == 403 and "not the instructor token" in wrong.text
        assert INSTRUCTOR_COOKIE not in client.cookies


def test_sign_in_sets_a_signed_strict_cookie_not_the_token(tiny_app: FastAPI) -> None:
    with TestClient(tiny_app) as client:
        response = client.post(
            "/instructor/login", data={"token": TOKEN}, headers=csrf(client), follow_redirects=False
        )
        cookie = response.headers["set-cookie"]
        assert response.status_code == 303 and response.headers["location"] == "/instructor"
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert TOKEN not in cookie
        assert client.get("/instructor").status_code == 200


def test_forged_or_stale_cookies_sign_nobody_in(tiny_app: FastAPI, settings: Settings) -> None:
    with TestClient(tiny_app) as client:
        sign_in(client)
        marker = client.cookies[INSTRUCTOR_COOKIE]
        for forged in (marker[:-3] + "xyz", TOKEN):  # the raw token is no valid cookie either
            client.cookies.delete(INSTRUCTOR_COOKIE)
            client.cookies.set(INSTRUCTOR_COOKIE, forged)
            assert client.get("/api/class").status_code == 401
    rotated = settings.model_copy(
        update={"instructor_token": SecretStr("another-token-0123456789")}
    )
    with TestClient(portal(rotated)) as other:
        other.cookies.set(INSTRUCTOR_COOKIE, marker)
        assert other.get("/api/class").status_code == 401  # a new token signs every browser out


def test_api_class_takes_a_bearer_token(tiny_app: FastAPI) -> None:
    with TestClient(tiny_app) as client:
        assert client.get("/api/class").status_code == 401
        bad = client.get("/api/class", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 403 and bad.json()["status"] == 403
        good = client.get("/api/class", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and good.json()["workshop"] == "tiny"


def test_sign_out_clears_the_cookie(instructor: Person) -> None:
    response = instructor.post(
        "/instructor/logout", headers=csrf(instructor), follow_redirects=False
    )
    assert response.status_code == 303
    assert instructor.get("/instructor").status_code == 401


def test_sign_in_attempts_are_rate_limited(tiny_app: FastAPI) -> None:
    with TestClient(tiny_app) as client:
        headers = csrf(client)
        codes = [
            client.post("/instructor/login", data={"token": "x"}, headers=headers).status_code
            for _ in range(12)
        ]
        assert codes[:10] == [403] * 10 and codes[-1] == 429


# -- the dashboard -----------------------------------------------------------------------------


def test_dashboard_shows_the_grid_figures_and_controls(
    instructor: Person, attendee: Person
) -> None:
    page = instructor.get("/instructor").text
    assert 'id="grid"' in page and 'id="figures"' in page and 'id="hands"' in page
    assert page.count('class="attendee') == 1 and "Ada" in page
    assert "/static/js/dashboard.js" in page
    grid_only = instructor.get("/instructor", headers={"HX-Request": "true"}).text
    # The grid block: the content problems' notice (empty here), then the table.
    assert grid_only.lstrip().startswith('<div id="content-problems">') and "<html" not in grid_only
    assert '<table id="grid"' in grid_only and "content-problems-title" not in grid_only


def test_terminal_viewer_points_at_the_shadow_socket(
    tiny_app: FastAPI, instructor: Person, attendee: Person
) -> None:
    ada = join(attendee, "Ada (phone)")
    page = instructor.get(f"/instructor/attendees/{ada}/terminal?mode=write")
    assert page.status_code == 200
    assert f'data-socket="/ws/instructor/terminal/{ada}?mode=write"' in page.text
    assert instructor.get(f"/instructor/attendees/{ada}/terminal?mode=root").status_code == 422
    assert instructor.get("/instructor/attendees/9999/terminal").status_code == 404


# -- raised hands ------------------------------------------------------------------------------


def test_raised_hand_flags_the_attendee_until_the_instructor_clears_it(
    tiny_app: FastAPI, instructor: Person, attendee: Person
) -> None:
    ada = join(attendee, "Ada")  # a second join: this client is now "Ada (2)"
    attendee.get("/lessons/lesson-1")
    run_check(attendee, ada, "one")
    lesson = attendee.get("/lessons/lesson-1").text
    assert 'action="/hand"' in lesson and "Raise hand" in lesson
    raised = attendee.post("/hand", headers={**csrf(attendee), "HX-Request": "true"})
    assert raised.status_code == 200 and "Lower hand" in raised.text
    hands = instructor.get("/instructor").text.split('id="hands"')[1].split("</section>")[0]
    assert "Ada (2)" in hands and "Task two" in hands  # the task they are on
    with attendee.websocket_connect("/ws/events") as events:
        cleared = action(instructor, f"/instructor/attendees/{ada}/hand/clear")
        assert cleared.status_code == 200 and "Cleared the hand of Ada (2)" in cleared.text
        assert events.receive_json() == {
            "type": "hand",
            "raised": False,
            "topic": f"attendee:{ada}",
        }
    assert "Raise hand" in attendee.get("/hand").text


def test_attendee_can_lower_their_own_hand_without_javascript(attendee: Person) -> None:
    headers = {**csrf(attendee), "Referer": "http://testserver/lessons/lesson-2"}
    response = attendee.post("/hand", headers=headers, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/lessons/lesson-2"
    assert "Lower hand" in attendee.get("/hand").text
    away = {**csrf(attendee), "Referer": "http://testserver//evil.example/x"}
    response = attendee.post("/hand/lower", headers=away, follow_redirects=False)
    assert response.headers["location"] == "/evil.example/x"  # stays on this site
    assert "Raise hand" in attendee.get("/hand").text


# -- broadcasts --------------------------------------------------------------------------------


def next_event(events: Any, kind: str) -> dict[str, Any]:
    """The next event of ``kind`` (the sandbox's own progress events come too: the join set it
    going)."""
    for _ in range(50):
        event: dict[str, Any] = events.receive_json()
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind} event among the next 50")


def test_broadcast_reaches_attendee_pages_live_and_on_the_next_page(
    instructor: Person, attendee: Person
) -> None:
    with attendee.websocket_connect("/ws/events") as events:
        sent = action(instructor, "/instructor/broadcast", message="Break until 11:00")
        assert sent.status_code == 200 and "Sent to every attendee page" in sent.text
        event = next_event(events, "broadcast")
    assert event["message"] == "Break until 11:00"
    assert "Break until 11:00" in event["html"]
    assert "Break until 11:00" in attendee.get("/lessons/lesson-1").text
    assert action(instructor, "/instructor/broadcast", message="   ").status_code == 422


# -- lesson locks ------------------------------------------------------------------------------


def test_locked_lesson_answers_a_friendly_403_until_unlocked(
    instructor: Person, attendee: Person
) -> None:
    with attendee.websocket_connect("/ws/events") as events:
        assert action(instructor, "/instructor/lessons/lesson-2/lock").status_code == 200
        assert next_event(events, "lessons")["locked"] == ["lesson-2"]
        page = attendee.get("/lessons/lesson-2")
        assert page.status_code == 403 and "is not open yet" in page.text
        assert 'data-locked-lesson="lesson-2"' in page.text and "Traceback" not in page.text
        assert attendee.get("/lessons/lesson-1").status_code == 200
        assert action(instructor, "/instructor/lessons/lesson-2/unlock").status_code == 200
        assert next_event(events, "lessons")["locked"] == []
    assert attendee.get("/lessons/lesson-2").status_code == 200
    assert action(instructor, "/instructor/lessons/nope/lock").status_code == 404


# -- sandbox actions ---------------------------------------------------------------------------


def sandbox_state(app: FastAPI, attendee_id: int) -> str | None:
    with Session(app.state.services.db.engine) as session:
        query = select(Sandbox).where(Sandbox.attendee_id == attendee_id).order_by(col(Sandbox.id))
        rows = session.exec(query).all()
        return rows[-1].state if rows else None


def wait_ready(client: Person, attendee_id: int) -> str:
    assert client.portal is not None
    return str(client.portal.call(sandboxes(client).ready_sandbox, attendee_id, 10))


def test_reset_and_stop_act_on_the_attendees_sandbox(tiny_app: FastAPI, instructor: Person) -> None:
    ada = join(Person(instructor.client), "Ada")
    first = wait_ready(instructor, ada)
    assert action(instructor, f"/instructor/attendees/{ada}/stop").status_code == 200
    assert sandbox_state(tiny_app, ada) == "stopped"
    reset = action(instructor, f"/instructor/attendees/{ada}/reset")
    assert reset.status_code == 200 and "Resetting the sandbox of Ada" in reset.text
    assert wait_ready(instructor, ada) != first
    assert action(instructor, "/instructor/attendees/9999/reset").status_code == 404


def test_warm_pool_size_and_end_of_workshop(tiny_app: FastAPI, instructor: Person) -> None:
    service = sandboxes(instructor)
    assert action(instructor, "/instructor/warm-pool", size=3).status_code == 200
    assert service.pool.size == 3
    assert action(instructor, "/instructor/warm-pool", size=-1).status_code == 422
    ada_browser = Person(instructor.client)
    ada = join(ada_browser, "Ada")
    wait_ready(instructor, ada)
    run_check(ada_browser, ada, "one")
    assert action(instructor, "/instructor/end").status_code == 422  # needs the confirmation
    ended = action(instructor, "/instructor/end", confirm="end")
    assert ended.status_code == 200 and "progress kept" in ended.text
    assert service.pool.size == 0 and service.backend.sandboxes == {}  # type: ignore[attr-defined]
    assert ada_browser.get("/api/me").json()["tasks"]["one"] == "passed"


def test_plain_forms_return_to_the_dashboard(instructor: Person) -> None:
    response = instructor.post(
        "/instructor/broadcast",
        data={"message": "hi", **_field(instructor)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/instructor"


def _field(client: Person) -> dict[str, str]:
    return {"csrf_token": csrf(client)["X-CSRF-Token"]}


# -- escaping ----------------------------------------------------------------------------------


def test_script_in_names_messages_and_content_comes_out_escaped(
    settings: Settings, tmp_path: Path
) -> None:
    lessons = [(PAYLOAD, [("evil", PAYLOAD)])]
    content = write_workshop(tmp_path / "evil-content", "evil", PAYLOAD, lessons)
    app = portal(settings.model_copy(update={"content_dir": content}))
    with TestClient(app) as client:
        instructor, attendee = Person(client), Person(client)
        sign_in(instructor)
        evil = join(attendee, PAYLOAD)
        attendee.post("/hand", headers=csrf(attendee))
        run_check(attendee, evil, "evil")
        with (
            attendee.websocket_connect("/ws/events") as events,
            instructor.websocket_connect("/ws/instructor") as dashboard,
        ):
            action(instructor, "/instructor/broadcast", message=PAYLOAD)
            broadcast = events.receive_json()
            action(instructor, f"/instructor/attendees/{evil}/hand/clear")
            update = json.loads(dashboard.receive_text())
        pages = [
            instructor.get("/instructor").text,
            instructor.get(f"/instructor/attendees/{evil}/terminal").text,
            attendee.get("/lessons/lesson-1").text,
            attendee.get("/hand").text,
            broadcast["html"],
            *[value for value in update.values() if isinstance(value, str)],
        ]
        for html in pages:
            assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]
        assert broadcast["message"] == PAYLOAD  # JSON carries the text; the page sets it as text


def test_names_with_quotes_stay_inside_their_attributes(instructor: Person) -> None:
    join(Person(instructor.client), '" onmouseover="alert(1)')
    page = instructor.get("/instructor").text
    assert 'onmouseover="alert(1)' not in page
    assert 'data-name="&#34; onmouseover=&#34;alert(1)"' in page


# -- the sandboxes' isolation ----------------------------------------------------------------


def test_the_dashboard_states_how_sandboxes_are_isolated(instructor: Person) -> None:
    panel = instructor.get("/instructor/health", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert "Isolation: fake backend" in panel.text and "Unsafe sandboxes" not in panel.text


def test_an_unsafe_profile_is_stated_with_its_risk(
    instructor: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.sandboxes.base import BackendHealth
    from app.sandboxes.docker.runtime import ISOLATION, risk_of
    from app.sandboxes.fake import FakeBackend

    async def unsafe(self: FakeBackend) -> BackendHealth:
        return BackendHealth(engine="ok", isolation=ISOLATION["caps"], risk=risk_of("caps"))

    monkeypatch.setattr(FakeBackend, "health", unsafe)
    panel = instructor.get("/instructor/health", headers={"HX-Request": "true"})
    assert "caps profile: sandboxes are NOT isolated" in panel.text
    assert 'role="alert"><strong>Unsafe sandboxes:</strong>' in panel.text
    assert "become root on the host" in panel.text

"""CSRF: state-changing HTML and htmx routes need the page's token; /api/* and POST /join do not."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.csrf import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, is_exempt
from tests.instructor.support import Person, csrf, join, portal, sign_in


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = portal(settings)

    @app.post("/api/ping")
    async def ping() -> dict[str, bool]:  # stands for the JSON routes scripts use
        return {"pong": True}

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def attendee(client: TestClient) -> Person:
    person = Person(client)
    join(person, "Ada")
    return person


def page_token(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match, "every page carries its token"
    return match.group(1)


def test_pages_set_the_cookie_and_carry_the_token_for_htmx(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.get("/")
        cookie = response.headers["set-cookie"]
        assert (
            cookie.startswith(f"{CSRF_COOKIE}=")
            and "HttpOnly" in cookie
            and "SameSite=Lax" in cookie
        )
        token = page_token(response.text)
        assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in response.text
        assert client.get("/").text.count(token) >= 2  # the same token on the next page


def test_state_change_without_the_token_is_refused(attendee: Person) -> None:
    response = attendee.post("/hand")
    assert response.status_code == 403
    assert "Reload the page" in response.text and "Traceback" not in response.text
    assert "Raise hand" in attendee.get("/hand").text  # nothing changed


@pytest.mark.parametrize("how", ["header", "urlencoded", "multipart"])
def test_the_token_works_as_header_or_form_field(attendee: Person, how: str) -> None:
    token = csrf(attendee)[CSRF_HEADER]
    if how == "header":
        response = attendee.post("/hand", headers={CSRF_HEADER: token}, follow_redirects=False)
    elif how == "urlencoded":
        response = attendee.post("/hand", data={CSRF_FIELD: token}, follow_redirects=False)
    else:
        response = attendee.post("/hand", files={CSRF_FIELD: (None, token)}, follow_redirects=False)
    assert response.status_code == 303
    assert "Lower hand" in attendee.get("/hand").text


def test_a_wrong_or_foreign_token_is_refused(app: FastAPI, attendee: Person) -> None:
    assert attendee.post("/hand", headers={CSRF_HEADER: "0" * 64}).status_code == 403
    other = Person(attendee.client)
    join(other, "Bob")
    foreign = csrf(other)
    assert attendee.post("/hand", headers=foreign).status_code == 403
    assert attendee.post("/hand", data={CSRF_FIELD: foreign[CSRF_HEADER]}).status_code == 403


def test_the_token_changes_when_someone_signs_in(app: FastAPI) -> None:
    with TestClient(app) as client:
        before = csrf(client)
        sign_in(client)
        refused = client.post("/instructor/broadcast", data={"message": "hi"}, headers=before)
        assert refused.status_code == 403
        accepted = client.post(
            "/instructor/broadcast", data={"message": "hi"}, headers=csrf(client)
        )
        assert accepted.status_code == 200  # fetch() follows the redirect to the dashboard


def test_without_the_cookie_nothing_is_accepted(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert client.post("/instructor/logout", headers={CSRF_HEADER: "x"}).status_code == 403


def test_form_fields_still_reach_the_route_after_the_check(app: FastAPI) -> None:
    with TestClient(app) as instructor:
        sign_in(instructor)
        field = {CSRF_FIELD: csrf(instructor)[CSRF_HEADER]}
        response = instructor.post(
            "/instructor/broadcast",
            data={"message": "Form body replayed", **field},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert app.state.services.broadcasts.latest().text == "Form body replayed"


def test_oversized_form_without_header_is_refused(attendee: Person) -> None:
    big = {"filler": "x" * (1024 * 1024 + 10), CSRF_FIELD: csrf(attendee)[CSRF_HEADER]}
    assert attendee.post("/hand", data=big).status_code == 403


def test_api_routes_and_join_need_no_token(app: FastAPI, attendee: Person) -> None:
    assert attendee.post("/api/ping").json() == {"pong": True}
    newcomer = Person(attendee.client)
    assert newcomer.post("/join", data={"name": "Cy"}, follow_redirects=False).status_code == 303


def test_exempt_rules() -> None:
    assert is_exempt("GET", "/hand") and is_exempt("HEAD", "/instructor")
    assert is_exempt("POST", "/api/tasks/x/check") and is_exempt("POST", "/join")
    assert not is_exempt("POST", "/hand") and not is_exempt("POST", "/join/extra")
    assert not is_exempt("DELETE", "/instructor") and not is_exempt("POST", "/apix")

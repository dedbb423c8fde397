"""CSRF: state-changing HTML and htmx routes need the page's token; /api/* and POST /join do not."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.csrf import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, is_exempt
from tests.support.portal import Person, csrf, join, portal, sign_in
from tests.support.websockets import receive_within


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


# -- the origin, exactly (issue 13) -------------------------------------------------------------

OURS = "http://testserver"  # TestClient's Host: with no public URL, the origin pages have
SAME_HOST_OTHER_PORT = "http://testserver:8081"  # "same site" to a browser, another origin


def tasks_tried(person: Person) -> set[str]:
    return {
        task
        for task, status in person.get("/api/me").json()["tasks"].items()
        if status != "not_tried"
    }


def test_a_page_on_another_port_cannot_run_the_victims_checks(attendee: Person) -> None:
    """SameSite=Lax sends the cookie from http://host:8081 to http://host:8000: the origin
    decides. /api/* needs no CSRF token, so only the origin check stands in the way."""
    attack = {"Origin": SAME_HOST_OTHER_PORT, "Sec-Fetch-Site": "same-site"}
    refused = attendee.post("/api/tasks/run-hello-world/check", headers=attack)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("This request came from another page")
    assert tasks_tried(attendee) == set()
    same_origin = {"Origin": OURS, "Sec-Fetch-Site": "same-origin"}
    assert attendee.post("/api/tasks/run-hello-world/check", headers=same_origin).status_code == 200
    assert tasks_tried(attendee) == {"run-hello-world"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": SAME_HOST_OTHER_PORT},
        {"Origin": "https://testserver"},  # another scheme
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "null"},  # sandboxed frames, redirects across sites
        {"Origin": OURS, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=["port", "scheme", "host", "null", "fetch-cross-site", "fetch-same-site"],
)
def test_state_changes_from_any_other_origin_are_refused_even_with_the_token(
    attendee: Person, headers: dict[str, str]
) -> None:
    response = attendee.post("/hand", headers={**csrf(attendee), **headers})
    assert response.status_code == 403 and "came from another page" in response.text
    assert "Raise hand" in attendee.get("/hand").text  # nothing changed


def test_scripts_without_origin_and_our_own_pages_pass(attendee: Person) -> None:
    assert attendee.post("/api/ping").json() == {"pong": True}
    own = {"Origin": OURS, "Sec-Fetch-Site": "same-origin", **csrf(attendee)}
    assert attendee.post("/hand", headers=own, follow_redirects=False).status_code == 303


def test_the_public_url_fixes_the_origin_when_it_is_set(settings: Settings) -> None:
    app = portal(settings.model_copy(update={"public_url": "https://labdeck.example.org"}))
    # Served over https (the cookies are Secure then), behind a proxy that keeps an inner Host.
    with TestClient(app, base_url="https://portal.internal:8000") as client:
        person = Person(client)
        join(person, "Ada")
        for foreign in (
            "http://labdeck.example.org",
            "https://labdeck.example.org:8443",
            "https://portal.internal:8000",  # the Host: the public URL wins when it is set
        ):
            refused = person.post("/hand", headers={**csrf(person), "Origin": foreign})
            assert refused.status_code == 403, foreign
        ours = {**csrf(person), "Origin": "https://labdeck.example.org:443"}
        assert person.post("/hand", headers=ours, follow_redirects=False).status_code == 303


def post_routes(app: FastAPI) -> list[str]:
    """Every POST path of the app (from its schema), parameters filled with things that exist."""
    paths = sorted(
        path for path, operations in app.openapi()["paths"].items() if "post" in operations
    )
    assert len(paths) >= 15, paths  # the schema lists them all: this test cannot go empty
    filled = {
        "{task_id}": "run-hello-world",
        "{slug}": "first-container",
        "{change}": "lock",
        "{attendee_id}": "1",
        "{key}": "not-a-key",
    }
    for placeholder, value in filled.items():
        paths = [path.replace(placeholder, value) for path in paths]
    return paths


MALFORMED_MULTIPART = [
    ("multipart/form-data", b"no boundary at all"),
    ("multipart/form-data; boundary=xyz", b"not multipart"),
    (
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n",
    ),
    (
        "multipart/form-data; boundary=xyz",
        b'--xyz\r\nContent-Disposition: form-data; name="a\r\n\r\n\xff\xfe',
    ),
]


@pytest.mark.parametrize("content_type,body", MALFORMED_MULTIPART)
def test_a_malformed_multipart_body_is_never_a_500(
    app: FastAPI, attendee: Person, content_type: str, body: bytes
) -> None:
    instructor = Person(attendee.client)
    sign_in(instructor)
    for person in (attendee, instructor):
        for path in post_routes(app):
            response = person.post(path, content=body, headers={"Content-Type": content_type})
            assert response.status_code < 500, (path, response.status_code, response.text[:300])
            assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("origin", "code"),
    [(SAME_HOST_OTHER_PORT, 4403), ("https://testserver", 4403), ("null", 4403), (OURS, None)],
)
def test_websockets_take_only_our_exact_origin(
    attendee: Person, origin: str, code: int | None
) -> None:
    with attendee.websocket_connect("/ws/events", headers={"Origin": origin}) as websocket:
        message = receive_within(websocket, 0.3)
    closed = message["code"] if message and message["type"] == "websocket.close" else None
    assert closed == code

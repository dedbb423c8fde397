"""The authorization matrix: anonymous, an attendee, another attendee, a wrong token and the
instructor, over EVERY route and websocket of the app. A route without an entry here fails
`test_every_route_is_in_the_matrix`: decide who may use it, then add it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from tests.support.portal import TOKEN, Person, csrf, join, portal, sandboxes, sign_in
from tests.support.settings import REPO
from tests.support.websockets import receive_within

ANYONE, ATTENDEE, INSTRUCTOR = "anyone", "attendee", "instructor"
GRANT_HOLDER = "grant-holder"  # the credential is a signed grant in the URL, not a cookie
ROLES = ("anonymous", "ada", "bob", "wrong-token", "instructor")
ALLOWED: dict[str, set[str]] = {
    ANYONE: set(ROLES),
    ATTENDEE: {"ada", "bob"},  # each acts on themselves: no route takes another attendee's id
    INSTRUCTOR: {"instructor"},
    GRANT_HOLDER: set(),  # the URL below carries a forged grant: nobody gets in with it
}
# The port preview passes every method on; port 1: nothing listens, so "allowed" is a 502.
PREVIEW_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
FORGED_GRANT = "/instructor-preview/eyJhIjoxfQ.forged.grant/1/"
REFUSED_HTTP = {401, 403}
REFUSED_WS = {4401, 4403, 401, 403}


@dataclass(frozen=True)
class Entry:
    who: str
    url: str  # "{ada}" stands for the first attendee's id
    data: dict[str, Any] = field(default_factory=dict)


MATRIX: dict[tuple[str, str], Entry] = {
    ("GET", "/openapi.json"): Entry(ANYONE, "/openapi.json"),
    ("GET", "/static"): Entry(ANYONE, "/static/css/labdeck.css"),
    ("GET", "/healthz"): Entry(ANYONE, "/healthz"),
    ("GET", "/metrics"): Entry(ANYONE, "/metrics"),
    ("GET", "/"): Entry(ANYONE, "/"),
    ("POST", "/join"): Entry(ANYONE, "/join", {"name": "Matrix"}),
    ("GET", "/resume/{key}"): Entry(ANYONE, "/resume/not-a-key"),
    ("POST", "/resume/{key}"): Entry(ANYONE, "/resume/not-a-key"),
    ("GET", "/assets/pygments.css"): Entry(ANYONE, "/assets/pygments.css"),
    ("GET", "/workshop/assets/{path:path}"): Entry(ATTENDEE, "/workshop/assets/none.png"),
    ("GET", "/lessons"): Entry(ATTENDEE, "/lessons"),
    ("GET", "/lessons/{slug}"): Entry(ATTENDEE, "/lessons/first-container"),
    ("GET", "/api/workshop"): Entry(ATTENDEE, "/api/workshop"),
    ("GET", "/api/me"): Entry(ATTENDEE, "/api/me"),
    ("GET", "/sandbox/health"): Entry(ATTENDEE, "/sandbox/health"),
    ("POST", "/api/tasks/{task_id}/check"): Entry(ATTENDEE, "/api/tasks/run-hello-world/check"),
    ("POST", "/tasks/{task_id}/check"): Entry(ATTENDEE, "/tasks/run-hello-world/check"),
    ("POST", "/tasks/{task_id}/watch"): Entry(ATTENDEE, "/tasks/run-hello-world/watch"),
    ("POST", "/tasks/{task_id}/solution-shown"): Entry(
        ATTENDEE, "/tasks/run-hello-world/solution-shown"
    ),
    ("POST", "/lessons/{slug}/setup"): Entry(ATTENDEE, "/lessons/first-container/setup"),
    ("GET", "/hand"): Entry(ATTENDEE, "/hand"),
    ("POST", "/hand"): Entry(ATTENDEE, "/hand"),
    ("POST", "/hand/lower"): Entry(ATTENDEE, "/hand/lower"),
    ("WS", "/ws/events"): Entry(ATTENDEE, "/ws/events"),
    ("WS", "/ws/terminal"): Entry(ATTENDEE, "/ws/terminal"),
    ("GET", "/instructor"): Entry(INSTRUCTOR, "/instructor"),
    ("POST", "/instructor/login"): Entry(ANYONE, "/instructor/login", {"token": TOKEN}),
    ("POST", "/instructor/logout"): Entry(ANYONE, "/instructor/logout"),
    ("GET", "/api/class"): Entry(INSTRUCTOR, "/api/class"),
    ("GET", "/instructor/export.csv"): Entry(INSTRUCTOR, "/instructor/export.csv"),
    ("GET", "/instructor/health"): Entry(INSTRUCTOR, "/instructor/health"),
    ("GET", "/instructor/export.json"): Entry(INSTRUCTOR, "/instructor/export.json"),
    ("GET", "/instructor/attendees/{attendee_id}/terminal"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/terminal"
    ),
    ("POST", "/instructor/attendees/{attendee_id}/reset"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/reset"
    ),
    ("POST", "/instructor/attendees/{attendee_id}/stop"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/stop"
    ),
    ("POST", "/instructor/attendees/{attendee_id}/hand/clear"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/hand/clear"
    ),
    ("POST", "/instructor/broadcast"): Entry(
        INSTRUCTOR, "/instructor/broadcast", {"message": "hi"}
    ),
    ("POST", "/instructor/warm-pool"): Entry(INSTRUCTOR, "/instructor/warm-pool", {"size": "0"}),
    ("POST", "/instructor/lessons/{slug}/{change}"): Entry(
        INSTRUCTOR, "/instructor/lessons/registries/lock"
    ),
    ("POST", "/instructor/end"): Entry(INSTRUCTOR, "/instructor/end", {"confirm": "end"}),
    ("GET", "/sandbox/ports"): Entry(ATTENDEE, "/sandbox/ports"),
    ("GET", "/preview/{port}"): Entry(ATTENDEE, "/preview/1"),
    **{
        (method, "/preview/{port}/{path:path}"): Entry(ATTENDEE, "/preview/1/x")
        for method in PREVIEW_METHODS
    },
    ("WS", "/preview/{port}/{path:path}"): Entry(ATTENDEE, "/preview/1/ws"),
    ("GET", "/instructor/attendees/{attendee_id}/ports"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/ports"
    ),
    ("GET", "/instructor/attendees/{attendee_id}/preview/{port}"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/preview/1"
    ),
    ("GET", "/instructor/attendees/{attendee_id}/preview/{port}/"): Entry(
        INSTRUCTOR, "/instructor/attendees/{ada}/preview/1/"
    ),
    **{
        (method, "/instructor-preview/{grant}/{port}/{path:path}"): Entry(
            GRANT_HOLDER, FORGED_GRANT + "x"
        )
        for method in PREVIEW_METHODS
    },
    ("WS", "/instructor-preview/{grant}/{port}/{path:path}"): Entry(
        GRANT_HOLDER, FORGED_GRANT + "ws"
    ),
    ("WS", "/ws/instructor"): Entry(INSTRUCTOR, "/ws/instructor"),
    ("WS", "/ws/instructor/terminal/{attendee_id}"): Entry(
        INSTRUCTOR, "/ws/instructor/terminal/{ada}?mode=read"
    ),
}


def app_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method or "WS", path) of every route, inside included routers and mounts too."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            inner_prefix = prefix + getattr(route.include_context, "prefix", "")  # type: ignore[attr-defined]
            yield from app_routes(included.routes, inner_prefix)
        elif isinstance(route, Mount):
            yield "GET", prefix + route.path
        elif isinstance(route, WebSocketRoute) or "WebSocket" in type(route).__name__:
            yield "WS", prefix + route.path  # type: ignore[attr-defined]
        else:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    yield method, prefix + route.path  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("authz") / "data",
        content_dir=REPO / "content",
        instance=f"test-{os.getpid()}",
        instructor_token=TOKEN,
        secret_key="test-secret-key-0123456789abcdef",
    )
    app = portal(settings)
    # The wrong-token role guesses on every instructor route; the limit itself is tested in
    # tests/routes/test_instructor_limits.py.
    app.state.limiters.wrong_tokens.limit = 10_000
    return app


@pytest.fixture(scope="module")
def people(app: FastAPI) -> Iterator[dict[str, Any]]:
    with TestClient(app) as client:
        people = {role: Person(client) for role in ROLES}
        ids = {"ada": join(people["ada"], "Ada"), "bob": join(people["bob"], "Bob")}
        sign_in(people["instructor"])
        client.portal.call(sandboxes(client).ensure_for, ids["ada"])  # type: ignore[union-attr]
        yield {"people": people, "ids": ids}


def headers_of(role: str, person: Person) -> dict[str, str]:
    # Every state change carries a valid CSRF token: what is tested here is who may, not how.
    headers = csrf(person)
    if role == "wrong-token":
        headers["Authorization"] = "Bearer not-the-token"
    return headers


def websocket_close_code(person: Person, url: str, headers: dict[str, str]) -> int | None:
    """The close code (or HTTP denial) within half a second; None when the socket stays open."""
    try:
        with person.websocket_connect(url, headers=headers) as websocket:
            message = receive_within(websocket, 0.5)
    except WebSocketDisconnect as closed:
        return closed.code
    except WebSocketDenialResponse as denied:
        return denied.status_code
    return (
        int(message.get("code", 1000)) if message and message["type"] == "websocket.close" else None
    )


def test_every_route_is_in_the_matrix(app: FastAPI, people: dict[str, Any]) -> None:
    missing = sorted(set(app_routes(app.routes)) - set(MATRIX))
    assert not missing, f"routes without an authorization entry in {__file__}: {missing}"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda key: " ".join(key))
def test_who_may_use_the_route(
    app: FastAPI, people: dict[str, Any], route: tuple[str, str]
) -> None:
    if route not in set(app_routes(app.routes)):
        pytest.skip("this app does not mount the route")
    method, _ = route
    entry = MATRIX[route]
    url = entry.url.replace("{ada}", str(people["ids"]["ada"]))
    outcomes = {}
    for role in ROLES:
        person = people["people"][role].clone()  # a join or sign-out must not stick
        headers = headers_of(role, person)
        if method == "WS":
            code = websocket_close_code(person, url, headers)
            outcomes[role] = ("refused" if code in REFUSED_WS else "allowed", code)
        else:
            with person.acting():
                answer = person.client.request(
                    method, url, data=entry.data or None, headers=headers, follow_redirects=False
                )
            refused = answer.status_code in REFUSED_HTTP
            outcomes[role] = ("refused" if refused else "allowed", answer.status_code)
    expected = {role: "allowed" if role in ALLOWED[entry.who] else "refused" for role in ROLES}
    assert {role: verdict for role, (verdict, _) in outcomes.items()} == expected, outcomes

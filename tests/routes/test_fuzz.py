"""Every route, fuzzed as a hostile attendee would (issue 13): schemathesis draws requests from
the app's OpenAPI schema (the docs pages are off, the schema is still ``app.openapi()``), valid
and invalid ones, form bodies sent urlencoded and as multipart; hypothesis draws websocket
frames. Anonymous, an attendee and the instructor each send them, with a valid CSRF token, so
the requests reach the routes. None may answer 500 or break the server."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from app.main import create_app
from tests.support.portal import Person, csrf, join, portal, sign_in
from tests.support.websockets import receive_within

PERSONAS = ("anonymous", "attendee", "instructor")
FUZZ = hypothesis_settings(
    max_examples=12,
    deadline=None,
    database=None,  # the suite must not depend on what earlier runs found
    suppress_health_check=list(HealthCheck),  # the app is slow next to the generator
)
BOUNDARY = "labdeck-fuzz"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    from tests.support.database import migrated_database
    from tests.support.settings import settings_for

    found: Settings = settings_for(tmp_path_factory.mktemp("fuzz") / "data", "test-fuzz")
    migrated_database(found.database_path)
    app = portal(found)
    # Guesses and joins are counted per address, and the fuzz makes many: every request
    # should reach its route rather than the limit (tested in their own modules).
    app.state.limiters.wrong_tokens.limit = 10**9
    app.state.limiters.joins.limit = 10**9
    return app


@pytest.fixture(scope="module")
def people(app: FastAPI) -> Iterator[dict[str, Person]]:
    # Server errors come back as responses (500) rather than exceptions: the test counts them.
    with TestClient(app, raise_server_exceptions=False) as client:
        people = {persona: Person(client) for persona in PERSONAS}
        join(people["attendee"], "Fuzzy")
        sign_in(people["instructor"])
        yield people


def schema_cases() -> list[tuple[str, GenerationMode]]:
    """``(METHOD /path, mode)`` for every operation in the schema, known at collection (the
    schema needs only the routes, not a running app). Invalid requests only where there is
    something to get wrong: parameters or a body."""
    from tests.support.settings import settings_for

    idle = create_app(
        settings_for(Path(tempfile.gettempdir()) / "labdeck-fuzz-schema", "test-fuzz")
    )
    cases = []
    for path, operations in idle.openapi()["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            cases.append((route, GenerationMode.POSITIVE))
            if can_be_wrong(operation):
                cases.append((route, GenerationMode.NEGATIVE))
    assert len(cases) >= 40, cases  # never silently empty
    return cases


def can_be_wrong(operation: dict[str, Any]) -> bool:
    """A body, or a parameter that not every string satisfies (a number, a choice, a limit)."""
    parameters = [parameter["schema"] for parameter in operation.get("parameters", [])]
    return "requestBody" in operation or any(
        schema.get("type") != "string" or set(schema) - {"type", "title"} for schema in parameters
    )


def operation_of(app: FastAPI, route: str) -> Any:
    schema = schemathesis.openapi.from_dict(app.openapi())
    method, path = route.split(" ", 1)
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == method and operation.path == path:
            return operation
    raise AssertionError(f"{route} is not in the schema")


def flat_pairs(data: Any) -> list[tuple[str, str]]:
    """A drawn form body as the (name, value) pairs a browser would send."""
    if not isinstance(data, dict):
        return [("", json.dumps(data))]
    pairs = []
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((str(name), item if isinstance(item, str) else json.dumps(item)))
    return pairs


def multipart(pairs: list[tuple[str, str]]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in pairs
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode("utf-8", "surrogatepass")


def request_of(case: Any, as_multipart: bool, declared: str = BOUNDARY) -> dict[str, Any]:
    """The drawn case as TestClient.request arguments (surrogates and all, sent as bytes)."""
    sent = case.as_transport_kwargs(base_url="http://testserver")
    headers = {k: v for k, v in sent["headers"].items() if k.lower() != "content-type"}
    url = sent["url"]
    if sent.get("params"):
        url += "?" + urlencode(sent["params"], doseq=True, errors="surrogatepass")
    request: dict[str, Any] = {"method": sent["method"], "url": url, "headers": headers}
    if "data" in sent:
        pairs = flat_pairs(sent["data"])
        if as_multipart:
            # ``declared``: the boundary the header names, not always the one the body uses
            headers["Content-Type"] = "multipart/form-data" + (
                f"; boundary={declared}" if declared else ""
            )
            request["content"] = multipart(pairs)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            request["content"] = urlencode(pairs, errors="surrogatepass").encode()
    elif "json" in sent:
        headers["Content-Type"] = "application/json"
        request["content"] = json.dumps(sent["json"]).encode("utf-8", "surrogatepass")
    return request


def send(people: dict[str, Person], persona: str, request: dict[str, Any], token: bool) -> Any:
    """As ``persona``; with ``token`` the CSRF header goes along (without it, the CSRF check
    reads the body for the form field, which is where a malformed body used to break it)."""
    person = people[persona].clone()  # a sign-out or join must not stick
    if token:
        request["headers"].update(csrf(person))
    with person.acting():
        return person.client.request(**request, follow_redirects=False)


@pytest.mark.parametrize(
    ("route", "mode"), schema_cases(), ids=lambda value: getattr(value, "value", value)
)
def test_no_route_answers_500_to_anything(
    app: FastAPI, people: dict[str, Person], route: str, mode: GenerationMode
) -> None:
    answered: set[int] = set()

    @FUZZ
    @given(
        case=operation_of(app, route).as_strategy(generation_mode=mode),
        persona=st.sampled_from(PERSONAS),
        as_multipart=st.booleans(),
        token=st.booleans(),
        cut=st.none() | st.integers(min_value=0, max_value=300),
        declared=st.sampled_from([BOUNDARY, BOUNDARY, "", "another"]),
    )
    def fuzz(
        case: Any, persona: str, as_multipart: bool, token: bool, cut: int | None, declared: str
    ) -> None:
        request = request_of(case, as_multipart, declared)
        if cut is not None and "content" in request:  # a body that stops short
            request["content"] = request["content"][:cut]
        response = send(people, persona, request, token)
        answered.add(response.status_code)
        assert response.status_code != 500, (persona, request, response.text[:500])
        assert "Traceback (most recent call last)" not in response.text

    fuzz()
    assert answered  # it did send requests


WEBSOCKETS = [
    "/ws/events",
    "/ws/terminal",
    "/ws/instructor",
    "/ws/instructor/terminal/{attendee}?mode=write",
]
FRAMES = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        st.dictionaries(
            st.sampled_from(["type", "cols", "rows", "data", "mode"]),
            st.one_of(st.integers(), st.text(max_size=20), st.none(), st.floats()),
        ).map(json.dumps),
        st.sampled_from(
            [
                '{"type": "resize", "cols": 1000000, "rows": -1}',
                '{"type": "resize", "cols": 1e308, "rows": "x"}',
                '{"type": "resize"}',
                '{"type": "pause"}',
                '{"type": "resume"}',
                "[]",
                "null",
            ]
        ),
    ),
    max_size=6,
)


@pytest.mark.parametrize("path", WEBSOCKETS)
def test_no_websocket_breaks_on_any_frames(
    app: FastAPI, people: dict[str, Person], path: str
) -> None:
    attendee_id = app.state.services.cookies.load(people["attendee"].cookies["labdeck_session"])[0]
    url = path.replace("{attendee}", str(attendee_id))

    @FUZZ
    @given(
        persona=st.sampled_from(PERSONAS),
        frames=FRAMES,
        query=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
        origin=st.sampled_from([None, "http://testserver", "http://testserver:1", "null"]),
    )
    def fuzz(persona: str, frames: list[Any], query: dict[str, str], origin: str | None) -> None:
        person = people[persona].clone()
        headers = {"Origin": origin} if origin else {}
        separator = "&" if "?" in url else "?"
        full = url + (separator + urlencode(query, errors="surrogatepass") if query else "")
        try:
            with person.websocket_connect(full, headers=headers) as websocket:
                for frame in frames:
                    if isinstance(frame, bytes):
                        websocket.send_bytes(frame)
                    else:
                        websocket.send_text(frame)
                receive_within(websocket, 0.05)
        except WebSocketDisconnect:
            pass  # a refusal or a close: what a hostile client should get

    fuzz()
    assert people["attendee"].get("/api/me").status_code == 200  # and the portal still serves

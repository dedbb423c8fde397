"""The instructor's routes against guessing and forged ids (issue 13): wrong Bearer tokens count
against the address on every instructor route and websocket, as on the sign-in form, and an id
beyond SQLite's integers finds nobody instead of breaking the route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.instructor.auth import INSTRUCTOR_COOKIE, signed_marker
from app.services import WRONG_TOKENS_PER_ADDRESS_PER_MINUTE
from tests.support.portal import (
    TOKEN,
    Person,
    client,
    csrf,
    instructor,
    join,
    tiny_app,
    tiny_settings,
)
from tests.support.websockets import receive_within

__all__ = ["client", "instructor", "tiny_app", "tiny_settings"]  # the tiny workshop's fixtures

READING_ROUTES = ["/api/class", "/instructor/export.csv", "/instructor/export.json"]
WRONG = {"Authorization": "Bearer not-the-token"}
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


def websocket_close_code(client: TestClient, headers: dict[str, str]) -> int | None:
    """The code /ws/instructor closes with at once, or None when it stays open."""
    with client.websocket_connect("/ws/instructor", headers=headers) as websocket:
        message = receive_within(websocket, 0.5)
    if message is None or message["type"] != "websocket.close":
        return None
    return int(message.get("code", 1000))


def signed_in_browser(client: TestClient) -> Person:
    """The dashboard's browser, signed in without the form (whose tries would count too)."""
    browser = Person(client)
    with browser.acting():
        client.cookies.set(INSTRUCTOR_COOKIE, signed_marker(client.app.state.settings))  # type: ignore[attr-defined]
    return browser


def test_guessing_the_token_over_http_is_cut_off_even_for_the_right_one(
    client: TestClient,
) -> None:
    dashboard = signed_in_browser(client)
    answers = [
        client.get(READING_ROUTES[attempt % 3], headers=WRONG).status_code
        for attempt in range(WRONG_TOKENS_PER_ADDRESS_PER_MINUTE)
    ]
    assert answers == [403] * WRONG_TOKENS_PER_ADDRESS_PER_MINUTE
    for route in READING_ROUTES:
        blocked = client.get(route, headers=RIGHT)
        assert blocked.status_code == 429 and "wait a minute" in blocked.text
    assert websocket_close_code(client, RIGHT) == 4429
    login = client.post("/instructor/login", data={"token": TOKEN}, headers=csrf(client))
    assert login.status_code == 429  # the sign-in form shares the count
    # The signed-in browser's cookie is no guess: the dashboard stays usable meanwhile.
    assert dashboard.get("/api/class").status_code == 200


def test_guessing_over_the_dashboard_websocket_counts_too(client: TestClient) -> None:
    codes = {
        websocket_close_code(client, WRONG) for _ in range(WRONG_TOKENS_PER_ADDRESS_PER_MINUTE)
    }
    assert codes == {4403}
    assert client.get("/api/class", headers=RIGHT).status_code == 429


def test_the_right_token_is_never_counted(client: TestClient) -> None:
    for _ in range(WRONG_TOKENS_PER_ADDRESS_PER_MINUTE + 5):
        assert client.get("/api/class", headers=RIGHT).status_code == 200
    assert websocket_close_code(client, RIGHT) is None


HUGE_IDS = [2**63, 2**64 + 1, -(2**63) - 1, 10**30]


@pytest.mark.parametrize("attendee_id", HUGE_IDS)
def test_ids_too_large_for_sqlite_find_nobody(instructor: Person, attendee_id: int) -> None:
    join(Person(instructor.client), "Ada")
    for action in ("reset", "stop", "hand/clear"):
        response = instructor.post(
            f"/instructor/attendees/{attendee_id}/{action}", headers=csrf(instructor)
        )
        assert response.status_code == 404, (action, response.text[:300])
        assert "There is no such attendee" in response.text
    page = instructor.get(f"/instructor/attendees/{attendee_id}/terminal")
    assert page.status_code == 404

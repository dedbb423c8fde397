from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.cookies import COOKIE_NAME
from app.ratelimit import RateLimiter
from app.services import WRONG_CODES_PER_ADDRESS_PER_MINUTE


def join(client: TestClient, name: str) -> str:
    response = client.post("/join", data={"name": name}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_join_sets_a_signed_httponly_cookie_and_redirects_to_first_lesson(
    client: TestClient,
) -> None:
    response = client.post("/join", data={"name": "Ada"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/lessons/first-container"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/api/me").json()["name"] == "Ada"


def test_names_are_unique_per_workshop(app: object) -> None:
    with TestClient(app) as first, TestClient(app) as second:  # type: ignore[arg-type]
        join(first, "Grace")
        join(second, "Grace")
        assert first.get("/api/me").json()["name"] == "Grace"
        assert second.get("/api/me").json()["name"] == "Grace (2)"


def test_empty_name_is_refused_with_a_sentence(client: TestClient) -> None:
    response = client.post("/join", data={"name": "   "})
    assert response.status_code == 422
    assert "Please type a name" in response.text


def test_long_names_are_cut_and_markup_is_escaped(client: TestClient) -> None:
    join(client, "<script>alert(1)</script>" + "x" * 100)
    me = client.get("/api/me").json()
    assert len(me["name"]) == 40
    page = client.get("/lessons").text
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)" in page


def test_forged_cookie_is_not_an_attendee(client: TestClient) -> None:
    join(client, "Ada")
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, "eyJpZCI6MX0.forged")
    assert client.get("/api/me").status_code == 401


def test_resume_link_restores_identity_on_another_device(app: object) -> None:
    with TestClient(app) as laptop, TestClient(app) as phone:  # type: ignore[arg-type]
        join(laptop, "Linus")
        resume_url = laptop.get("/api/me").json()["resume_url"]
        assert phone.get("/api/me").status_code == 401
        phone.get(resume_url)
        assert phone.get("/api/me").json()["name"] == "Linus"


def test_wrong_resume_key_leads_home(client: TestClient) -> None:
    response = client.get("/resume/not-a-key", follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/me").status_code == 401


def test_a_whole_class_may_join_from_one_address(client: TestClient) -> None:
    """Venue Wi-Fi behind NAT: fifty attendees, one address, none refused."""
    statuses = {
        client.post("/join", data={"name": f"n{i}"}, follow_redirects=False).status_code
        for i in range(50)
    }
    assert statuses == {303}


def test_a_flood_of_joins_from_one_address_is_cut_off(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    app.state.limiters.joins.limit = 5  # the real limit is 200 a minute
    statuses = [
        client.post("/join", data={"name": f"n{i}"}, follow_redirects=False).status_code
        for i in range(7)
    ]
    assert statuses == [303] * 5 + [429] * 2


def with_join_code(client: TestClient, code: str) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    workshop = app.state.services.workshop
    meta = workshop.meta.model_copy(update={"join_code": code})
    app.state.services.workshop = workshop.model_copy(update={"meta": meta})


def test_a_wrong_join_code_is_refused_with_a_sentence(client: TestClient) -> None:
    with_join_code(client, "Whale-42")
    refused = client.post("/join", data={"name": "Ada", "code": "whale-41"})
    assert refused.status_code == 403
    assert "join code is not right" in refused.text
    assert client.get("/api/me").status_code == 401
    accepted = client.post(
        "/join", data={"name": "Ada", "code": " whale-42 "}, follow_redirects=False
    )
    assert accepted.status_code == 303


def test_guessing_the_join_code_is_cut_off_even_for_the_right_code(client: TestClient) -> None:
    with_join_code(client, "whale-42")
    wrong = [
        client.post("/join", data={"name": "Eve", "code": f"guess-{i}"}).status_code
        for i in range(WRONG_CODES_PER_ADDRESS_PER_MINUTE)
    ]
    assert wrong == [403] * WRONG_CODES_PER_ADDRESS_PER_MINUTE
    blocked = client.post("/join", data={"name": "Eve", "code": "whale-42"})
    assert blocked.status_code == 429 and "wait a minute" in blocked.text

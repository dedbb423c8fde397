from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.cookies import COOKIE_NAME
from app.services import WRONG_CODES_PER_ADDRESS_PER_MINUTE
from tests.support.portal import Person, csrf, join


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
    # The sandbox's share of the join, for developer tools and `bench class`.
    timing = response.headers["server-timing"]
    assert timing.startswith("hand-out;dur=") and float(timing.split("=")[1]) >= 0


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


def test_wrong_resume_key_says_so_on_a_page(client: TestClient) -> None:
    response = client.get("/resume/not-a-key", follow_redirects=False)
    assert response.status_code == 404
    assert "This resume link is not valid" in response.text
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


# -- login CSRF (issue 13) ----------------------------------------------------------------------


def signed_in_as(client: TestClient | Person) -> str | None:
    me = client.get("/api/me")
    return str(me.json()["name"]) if me.status_code == 200 else None


def test_a_cross_site_form_cannot_sign_a_browser_in(client: TestClient) -> None:
    """An auto-submitting form on another site would put the victim in the attacker's session."""
    join(client, "Victim")
    for attack in (
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver:8081", "Sec-Fetch-Site": "same-site"},  # another port
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = client.post("/join", data={"name": "Attacker"}, headers=attack)
        assert refused.status_code == 403 and "came from another page" in refused.text
        assert COOKIE_NAME not in refused.headers.get("set-cookie", "")
        assert signed_in_as(client) == "Victim"
    own_page = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    accepted = client.post("/join", data={"name": "Ada"}, headers=own_page, follow_redirects=False)
    assert accepted.status_code == 303 and signed_in_as(client) == "Ada"


def test_a_resume_link_asks_before_it_replaces_a_live_session(client: TestClient) -> None:
    attacker, victim = Person(client), Person(client)
    join(attacker, "Mallory")
    link = attacker.get("/api/me").json()["resume_url"]
    join(victim, "Victim")
    page = victim.get(link, follow_redirects=False)
    assert page.status_code == 200 and "Switch to Mallory?" in page.text
    assert "signed in as <strong>Victim</strong>" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert COOKIE_NAME not in page.headers.get("set-cookie", "")
    assert signed_in_as(victim) == "Victim"
    # The button is a form of LabDeck's own: without its token, or from elsewhere, nothing.
    assert victim.post(link).status_code == 403
    foreign = {"Origin": "https://evil.example", **csrf(victim)}
    assert victim.post(link, headers=foreign).status_code == 403
    assert signed_in_as(victim) == "Victim"
    confirmed = victim.post(link, headers=csrf(victim), follow_redirects=False)
    assert confirmed.status_code == 303 and signed_in_as(victim) == "Mallory"


def test_a_resume_link_of_the_same_attendee_or_a_new_browser_needs_no_question(
    client: TestClient,
) -> None:
    laptop, phone = Person(client), Person(client)
    join(laptop, "Linus")
    link = laptop.get("/api/me").json()["resume_url"]
    assert laptop.get(link, follow_redirects=False).status_code == 303
    assert phone.get(link, follow_redirects=False).status_code == 303
    assert signed_in_as(phone) == "Linus"


# -- names that pass for others (issue 13) ------------------------------------------------------

INVISIBLE_NAMES = [
    "\u200b\u200b\u200b",  # zero-width spaces
    "\u200d\u200c\u2060\ufeff",  # joiners, word joiner, BOM
    "\u3164",  # Hangul filler: a letter that shows nothing
    "\u2800\u2800",  # braille blank
    "\u202e\u2066",  # bidi controls
    "\ufe0f\U000e0041",  # a variation selector and a tag character
]


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
def test_names_with_nothing_visible_are_refused(client: TestClient, name: str) -> None:
    response = client.post("/join", data={"name": name})
    assert response.status_code == 422 and "Please type a name" in response.text
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    "twin", ["alice\u200b", "a\u200blice", "\uff41lice", "alice\u00ad"], ids=repr
)
def test_invisible_and_compatibility_characters_cannot_hide_a_twin(
    client: TestClient, twin: str
) -> None:
    """Normalised to exactly "alice": the same name, told apart on the dashboard."""
    alice, impostor = Person(client), Person(client)
    join(alice, "alice")
    join(impostor, twin)
    assert signed_in_as(impostor) == "alice (2)"


def test_bidi_controls_cannot_reverse_a_name(client: TestClient) -> None:
    join(client, "bob\u202eecila")
    assert signed_in_as(client) == "bobecila"


@pytest.mark.parametrize(
    "lookalike",
    ["Alice", "ALICE", "AIice", "\u0430lice", "al\u0456ce", "\u0391LICE"],
    ids=["case", "upper", "capital-i", "cyrillic-a", "cyrillic-i", "greek-capitals"],
)
def test_a_name_that_looks_like_another_attendees_is_refused(
    client: TestClient, lookalike: str
) -> None:
    alice, impostor = Person(client), Person(client)
    join(alice, "alice")
    response = impostor.post("/join", data={"name": lookalike})
    assert response.status_code == 422
    assert "already goes by a name that looks like" in response.text
    assert signed_in_as(impostor) is None


def test_different_names_are_not_taken_for_lookalikes(client: TestClient) -> None:
    first, second = Person(client), Person(client)
    join(first, "Eli")
    join(second, "Ell")
    assert signed_in_as(second) == "Ell"

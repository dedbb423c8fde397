"""The port preview over FakeBackend: its sandboxes answer at 127.0.0.1, where a small app of
the test's own (tests/support/preview.py) plays the server the attendee started."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from app.cookies import COOKIE_NAME
from app.preview import http as preview_http
from app.preview.headers import INSTRUCTOR_CSP
from app.sandboxes.fake import FakeBackend
from tests.support.live_portal import Portal
from tests.support.live_portal import docker_portal as open_docker_portal
from tests.support.live_server import LiveServer
from tests.support.portal import Person, join, portal, sandboxes, sign_in
from tests.support.preview import sandbox_app
from tests.support.settings import INSTRUCTOR_TOKEN


@pytest.fixture(scope="module")
def served_port() -> Iterator[int]:
    with LiveServer(sandbox_app()) as server:  # type: ignore[arg-type]
        yield server.port


@pytest.fixture
def people(settings: Settings) -> Iterator[dict[str, Any]]:
    """Ada (whose sandbox runs the app), Bob (whose sandbox runs nothing), Carol (whose sandbox
    is gone), the instructor and someone anonymous, sharing one client."""
    app = portal(settings)
    with TestClient(app) as client:
        found: dict[str, Any] = {name: Person(client) for name in ("ada", "bob", "carol", "anon")}
        ids = {name: join(found[name], name.title()) for name in ("ada", "bob", "carol")}
        for name in ("ada", "bob", "carol"):
            sandbox = client.portal.call(sandboxes(client).ready_sandbox, ids[name])  # type: ignore[union-attr]
            found[f"{name}_sandbox"] = sandbox
        backend: FakeBackend = app.state.sandbox_backend
        backend.addresses[found["bob_sandbox"]] = "127.0.0.2"  # nothing listens there
        backend.crash(found["carol_sandbox"])
        found["instructor"] = Person(client)
        sign_in(found["instructor"])
        yield {**found, "ids": ids, "backend": backend}


def test_the_owner_gets_the_app_in_their_sandbox(people: dict[str, Any], served_port: int) -> None:
    answer = people["ada"].get(f"/preview/{served_port}/hello?x=1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["hello"] == "from the sandbox"
    assert answer.json()["path"] == "/hello"
    assert answer.json()["x-forwarded-prefix"] == f"/preview/{served_port}"


def test_another_attendee_reaches_only_their_own_sandbox(
    people: dict[str, Any], served_port: int
) -> None:
    people["backend"].calls.clear()
    answer = people["bob"].get(f"/preview/{served_port}/hello")
    assert answer.status_code == 502
    assert "Nothing is listening" in answer.text and "from the sandbox" not in answer.text
    assert "Traceback" not in answer.text
    assert ("address", people["bob_sandbox"]) in people["backend"].calls
    assert ("address", people["ada_sandbox"]) not in people["backend"].calls


def test_without_a_running_sandbox_or_a_session_there_is_nothing_to_preview(
    people: dict[str, Any], served_port: int
) -> None:
    stopped = people["carol"].get(f"/preview/{served_port}/hello")
    assert stopped.status_code == 503 and "not running" in stopped.text
    assert stopped.headers["cache-control"] == "no-store"
    assert people["anon"].get(f"/preview/{served_port}/hello").status_code == 401


@pytest.mark.parametrize("port", ["0", "65536", "abc", "08080", "-1", "1e3", "\uff18\uff10"])
def test_a_port_must_be_a_plain_number_from_1_to_65535(people: dict[str, Any], port: str) -> None:
    assert people["ada"].get(f"/preview/{port}/").status_code == 404


def test_the_bare_port_redirects_to_its_folder(people: dict[str, Any]) -> None:
    answer = people["ada"].get("/preview/8080", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/preview/8080/"


def test_the_instructor_opens_an_attendee_s_preview_through_a_grant(
    people: dict[str, Any], served_port: int
) -> None:
    entry = f"/instructor/attendees/{people['ids']['ada']}/preview/{served_port}"
    answer = people["instructor"].get(entry, follow_redirects=False)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/instructor-preview/") and location.endswith(f"/{served_port}/")
    page = people["anon"].get(location + "hello")  # the grant is the credential, not a cookie
    assert page.status_code == 200 and page.json()["hello"] == "from the sandbox"
    assert page.headers["content-security-policy"] == INSTRUCTOR_CSP
    assert people["bob"].get(entry, follow_redirects=False).status_code == 401
    forged = location.replace("/instructor-preview/", "/instructor-preview/x")
    assert people["bob"].get(forged + "hello").status_code == 403


@pytest.mark.parametrize(
    ("where", "location"),
    [
        ("login", "/preview/{port}/login"),
        ("absolute", "/preview/{port}/inside?x=1"),
        ("other-port", "/preview/9000/x"),
        ("away", "https://example.org/"),
        ("relative", "next"),
    ],
)
def test_redirects_into_the_sandbox_stay_under_the_preview(
    people: dict[str, Any], served_port: int, where: str, location: str
) -> None:
    answer = people["ada"].get(f"/preview/{served_port}/go/{where}", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == location.format(port=served_port)


def test_the_portal_s_cookies_never_reach_the_app(people: dict[str, Any], served_port: int) -> None:
    ada = people["ada"]
    assert "labdeck_session" in ada.cookies
    answer = ada.get(f"/preview/{served_port}/hello", headers={"Cookie": _cookies(ada, app="1")})
    assert answer.json()["cookie"] == "app=1"


def test_the_app_s_cookies_are_scoped_to_the_preview(
    people: dict[str, Any], served_port: int
) -> None:
    answer = people["ada"].get(f"/preview/{served_port}/cookies")
    set_cookies = answer.headers.get_list("set-cookie")
    prefix = f"/preview/{served_port}"
    assert set_cookies == [f"sid=abc; Path={prefix}/; HttpOnly", f"theme=dark; Path={prefix}/"]
    assert "clear-site-data" not in answer.headers


def test_uploads_stream_to_the_app_without_a_csrf_token_up_to_the_limit(
    people: dict[str, Any], served_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/preview/{served_port}/upload"
    answer = people["ada"].post(url, content=b"x" * 300_000)
    assert answer.status_code == 200 and answer.json() == {"received": 300_000}
    monkeypatch.setattr(preview_http, "MAX_REQUEST_BODY", 1000)
    assert people["ada"].post(url, content=b"x" * 1001).status_code == 413


def test_an_absolute_path_that_escaped_the_prefix_is_brought_back_by_its_referer(
    people: dict[str, Any], served_port: int
) -> None:
    page = f"http://testserver/preview/{served_port}/page"
    ada = people["ada"]
    escaped = ada.get("/static/app.css?v=2", headers={"Referer": page}, follow_redirects=False)
    assert escaped.status_code == 307
    assert escaped.headers["location"] == f"/preview/{served_port}/static/app.css?v=2"
    assert ada.get("/static/app.css", follow_redirects=False).status_code == 404
    foreign = {"Referer": f"http://elsewhere/preview/{served_port}/page"}
    assert ada.get("/static/app.css", headers=foreign).status_code == 404


def test_websockets_reach_the_owner_s_app_only(people: dict[str, Any], served_port: int) -> None:
    url = f"/preview/{served_port}/ws"
    with people["ada"].websocket_connect(url, subprotocols=["chat"]) as socket:
        assert socket.accepted_subprotocol == "chat"
        socket.send_text("hi")
        assert socket.receive_text() == "echo: hi"
    assert _close_code(people["bob"], url) == 4502  # Bob's own sandbox: nothing listens
    assert _close_code(people["anon"], url) == 4401


def test_the_terminal_panel_lists_published_ports_with_open_links(
    people: dict[str, Any],
) -> None:
    listing = (
        "web\tnginx:alpine\t0.0.0.0:8080->80/tcp, :::8080->80/tcp\n--sockets--\n"
        "  sl  local_address rem_address   st\n"
        "   0: 0B00007F:8D49 00000000:0000 0A\n"
        "   1: 00000000:1F40 00000000:0000 0A\n"
    )
    people["backend"].exec_handler = lambda name, command, user: listing
    fragment = people["ada"].get("/sandbox/ports", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert 'href="/preview/8080/"' in fragment.text and 'href="/preview/8000/"' in fragment.text
    assert "Open port 8080 in a new tab" in fragment.text
    assert "36169" not in fragment.text  # loopback only: the preview cannot reach it
    assert "not running yet" in people["carol"].get("/sandbox/ports").text


def test_the_instructor_lists_an_attendee_s_ports_with_links_to_their_preview(
    people: dict[str, Any],
) -> None:
    listing = "web\tnginx:alpine\t0.0.0.0:8080->80/tcp\n--sockets--\n"
    people["backend"].exec_handler = lambda name, command, user: listing
    ada = people["ids"]["ada"]
    page = people["instructor"].get(f"/instructor/attendees/{ada}/ports")
    assert page.status_code == 200 and "Open ports of" in page.text and "Ada" in page.text
    assert f'href="/instructor/attendees/{ada}/preview/8080/"' in page.text
    assert 'href="/preview/8080/"' not in page.text  # the instructor has no sandbox of their own
    fragment = people["instructor"].get(
        f"/instructor/attendees/{ada}/ports", headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith("<section") and "<html" not in fragment.text
    opened = people["instructor"].get(
        f"/instructor/attendees/{ada}/preview/8080/", follow_redirects=False
    )
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("/instructor-preview/")
    assert people["instructor"].get("/instructor/attendees/999999/ports").status_code == 404
    assert people["ada"].get(f"/instructor/attendees/{ada}/ports").status_code in (401, 403)


def _cookies(person: Person, **extra: str) -> str:
    pairs = {**person.cookies, **extra}
    return "; ".join(f"{name}={value}" for name, value in pairs.items())


def _close_code(person: Person, url: str) -> int | None:
    try:
        with person.websocket_connect(url) as socket:
            socket.receive_text()
    except WebSocketDisconnect as closed:
        return closed.code
    return None


# -- on the real engine --------------------------------------------------------------------

SERVE = (
    "mkdir -p ~/site && echo 'served from the sandbox of {name}' > ~/site/marker.txt && cd ~/site"
    " && (setsid nohup python3 -m http.server 8080 >/dev/null 2>&1 </dev/null &)"
    " && for _ in $(seq 50); do curl -sf localhost:8080/marker.txt && break; sleep 0.1; done"
)


@pytest.fixture(scope="module")
def docker_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with open_docker_portal(tmp_path_factory.mktemp("preview") / "data") as served:
        yield served


@pytest.mark.docker
def test_a_server_in_a_real_sandbox_opens_for_its_owner_and_the_instructor_only(
    docker_portal: Portal,
) -> None:
    ada, bob = docker_portal.join("Ada"), docker_portal.join("Bob")
    services = docker_portal.app.state.services
    ada_id, bob_id = docker_portal.attendee_id(ada), docker_portal.attendee_id(bob)
    ada_sandbox = docker_portal.call(services.sandboxes.ready_sandbox, ada_id, 120)
    docker_portal.call(services.sandboxes.ready_sandbox, bob_id, 120)
    started = docker_portal.call(
        services.sandboxes.backend.exec, ada_sandbox, SERVE.format(name="Ada")
    )
    assert "served from the sandbox of Ada" in started.output, started.output

    url = docker_portal.url + "/preview/8080/marker.txt"
    owner = httpx.get(url, cookies={COOKIE_NAME: ada})
    assert owner.status_code == 200 and owner.text == "served from the sandbox of Ada\n"
    other = httpx.get(url, cookies={COOKIE_NAME: bob})
    assert other.status_code == 502 and "Ada" not in other.text
    assert httpx.get(url).status_code == 401

    entry = f"{docker_portal.url}/instructor/attendees/{ada_id}/preview/8080"
    granted = httpx.get(entry, headers={"Authorization": f"Bearer {INSTRUCTOR_TOKEN}"})
    grant_url = docker_portal.url + granted.headers["location"] + "marker.txt"
    assert granted.status_code == 303
    assert httpx.get(grant_url).text == "served from the sandbox of Ada\n"

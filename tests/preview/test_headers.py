from __future__ import annotations

from app.preview.headers import moved_location, scoped_cookie, to_the_app, without_portal_cookies
from app.preview.target import Target, parse_port

TARGET = Target(host="10.214.22.2", port=8080, base="/preview")


def test_the_portal_s_cookies_are_taken_out_of_the_cookie_header() -> None:
    header = "labdeck_session=s; app=1; labdeck_csrf=c; labdeck_instructor=i; theme=dark"
    assert without_portal_cookies(header) == "app=1; theme=dark"
    assert without_portal_cookies("labdeck_session=s") == ""


def test_the_app_gets_no_portal_credentials_and_learns_its_prefix() -> None:
    given = [
        ("Host", "portal:8000"),
        ("Cookie", "labdeck_session=s"),
        ("X-CSRF-Token", "t"),
        ("Authorization", "Bearer instructor-token"),
        ("Connection", "keep-alive"),
        ("Accept", "text/html"),
    ]
    sent = dict(to_the_app(given, client="1.2.3.4", scheme="http", prefix="/p/1", keep_auth=False))
    assert sent == {
        "Accept": "text/html",
        "X-Forwarded-For": "1.2.3.4",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "portal:8000",
        "X-Forwarded-Prefix": "/p/1",
    }


def test_redirects_move_under_the_prefix_only_when_they_point_into_the_sandbox() -> None:
    assert moved_location("/login", TARGET, "portal") == "/preview/8080/login"
    assert moved_location("/preview/8080/x", TARGET, "portal") == "/preview/8080/x"
    assert moved_location("http://10.214.22.2:8080/a?b=1#c", TARGET, "portal") == (
        "/preview/8080/a?b=1#c"
    )
    assert moved_location("http://localhost:3000/", TARGET, "portal") == "/preview/3000/"
    assert moved_location("http://portal/done", TARGET, "portal") == "/preview/8080/done"
    assert moved_location("https://example.org/x", TARGET, "portal") == "https://example.org/x"
    assert moved_location("../up", TARGET, "portal") == "../up"


def test_app_cookies_are_scoped_to_the_prefix_and_may_not_pose_as_the_portal_s() -> None:
    assert scoped_cookie("a=1; Path=/admin; Domain=.x.org; Secure", "/preview/8080") == (
        "a=1; Path=/preview/8080/admin; Secure"
    )
    assert scoped_cookie("a=1", "/preview/8080") == "a=1; Path=/preview/8080/"
    assert scoped_cookie("labdeck_session=evil; Path=/", "/preview/8080") is None


def test_ports_are_plain_numbers_in_range() -> None:
    assert [parse_port(text) for text in ("1", "8080", "65535")] == [1, 8080, 65535]
    assert {parse_port(text) for text in ("0", "65536", "0080", "+80", " 80", "٨٠", "")} == {None}

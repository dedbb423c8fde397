"""Instructor sign-in: the token as a Bearer header for scripts, a signed cookie for the browser.

The cookie never holds the token itself, only a signed marker that names a fingerprint of the
token, so changing ``LABDECK_INSTRUCTOR_TOKEN`` signs every browser out.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Mapping

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from app.config import Settings

INSTRUCTOR_COOKIE = "labdeck_instructor"
INSTRUCTOR_COOKIE_MAX_AGE = 12 * 3600


class Verdict(enum.Enum):
    SIGNED_IN = "signed-in"
    MISSING = "missing"  # no credentials at all: 401
    WRONG = "wrong"  # a token or cookie that does not check out: 403


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.cookie_secret(), salt="labdeck-instructor")


def token_matches(settings: Settings, token: str) -> bool:
    return secrets.compare_digest(token.encode(), settings.instructor_secret().encode())


def signed_marker(settings: Settings) -> str:
    """The cookie value for a signed-in instructor browser."""
    return str(
        _serializer(settings).dumps(
            {"role": "instructor", "fp": _fingerprint(settings.instructor_secret())}
        )
    )


def remember_browser(response: Response, settings: Settings) -> None:
    """Sign this browser in: a strict, script-proof cookie, sent over https only when served so."""
    response.set_cookie(
        INSTRUCTOR_COOKIE,
        signed_marker(settings),
        max_age=INSTRUCTOR_COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=(settings.public_url or "").startswith("https://"),
    )


def forget_browser(response: Response) -> None:
    response.delete_cookie(INSTRUCTOR_COOKIE, httponly=True, samesite="strict")


def marker_valid(settings: Settings, value: str) -> bool:
    try:
        data = _serializer(settings).loads(value, max_age=INSTRUCTOR_COOKIE_MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return False
    expected = _fingerprint(settings.instructor_secret())
    return (
        isinstance(data, dict) and data.get("role") == "instructor" and data.get("fp") == expected
    )


def bearer_token(headers: Mapping[str, str]) -> str | None:
    header = headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def verdict(settings: Settings, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Verdict:
    """Who is asking: works the same for HTTP requests and websocket handshakes."""
    token = bearer_token(headers)
    if token is not None:
        return Verdict.SIGNED_IN if token and token_matches(settings, token) else Verdict.WRONG
    marker = cookies.get(INSTRUCTOR_COOKIE)
    if not marker:
        return Verdict.MISSING
    # A stale cookie (token rotated, expired) means "sign in again", not "forbidden".
    return Verdict.SIGNED_IN if marker_valid(settings, marker) else Verdict.MISSING

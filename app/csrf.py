"""CSRF protection for the HTML and htmx routes that change state.

Every browser gets a random ``labdeck_csrf`` cookie. The token a page carries is an HMAC of that
cookie bound to the browser's session cookies, so it changes when someone signs in, and a site
that can plant a cookie still cannot compute it. htmx sends the token in the ``X-CSRF-Token``
header (``hx-headers`` on ``<body>`` in base.html); plain forms send the ``csrf_token`` field.

No token is asked of ``/api/*`` (scripts with a Bearer token or a cookie) and ``POST /join``
(no session exists yet). But every state-changing request, those included, must come from
LabDeck's own origin when it names one: a browser sends ``Origin`` (and ``Sec-Fetch-Site``), and
SameSite=Lax lets the cookie ride along from a page on the same host but another port, which is
"same site" to the browser (issue 13). The origin must match exactly: scheme, host and port of
``LABDECK_PUBLIC_URL``, or of the request's own Host when that is unset. Scripts send neither
header and pass.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from fastapi import FastAPI, Request
from markupsafe import Markup, escape
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.cookies import COOKIE_NAME
from app.errors import error_response
from app.instructor.auth import INSTRUCTOR_COOKIE
from app.templating import templates

CSRF_COOKIE = "labdeck_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SCOPE_KEY = "labdeck.csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM_BYTES = 1024 * 1024
COOKIE_MAX_AGE = 14 * 24 * 3600
REFUSAL = (
    "This page has expired or the request did not come from LabDeck. Reload the page and try again."
)
# Sec-Fetch-Site values that name another origin: "same-site" is another port or subdomain.
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{self.host}" + ("" if self.port == default else f":{self.port}")


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as an Origin (default port filled in); None when it is not one
    (``null``, a path, a bad port)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return Origin(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme])


def expected_origin(scope: Scope, public_url: str | None) -> Origin | None:
    """The origin this portal's own pages have: the public URL's, else the request's Host."""
    if public_url:
        return parse_origin(public_url)
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme"))
    host = Headers(scope=scope).get("host", "")
    return parse_origin(f"{scheme}://{host}") if host else None


def foreign_origin(scope: Scope, public_url: str | None) -> str | None:
    """What a browser says this request came from when that is not this portal; None when it
    is this portal, or when nothing says (scripts send neither ``Origin`` nor ``Sec-Fetch-Site``)."""
    headers = Headers(scope=scope)
    fetch_site = headers.get("sec-fetch-site", "").lower()
    origin = headers.get("origin")
    if fetch_site in FOREIGN_FETCH_SITES:
        return (origin or f"a {fetch_site} page")[:200]
    if origin is None:
        return None
    given = parse_origin(origin)
    if given is not None and given == expected_origin(scope, public_url):
        return None
    return origin[:200] or "an unnamed page"


def origin_refusal(foreign: str, scope: Scope, public_url: str | None) -> str:
    ours = expected_origin(scope, public_url)
    where = f"LabDeck at {ours}" if ours else "LabDeck's own address"
    return (
        f"This request came from another page ({foreign}), not from {where}, so it was refused. "
        f"Open {where} and try again from there."
    )


def token_for(secret: str, cookies: Mapping[str, str]) -> str | None:
    """The token that goes with these cookies; None when the browser has no CSRF cookie yet."""
    seed = cookies.get(CSRF_COOKIE)
    if not seed:
        return None
    binding = "\n".join((seed, cookies.get(COOKIE_NAME, ""), cookies.get(INSTRUCTOR_COOKIE, "")))
    key = hashlib.sha256(b"labdeck-csrf\n" + secret.encode()).digest()
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def headers_for(secret: str, cookies: Mapping[str, str]) -> dict[str, str]:
    """Headers that pass the check (for tests and scripts that drive the HTML routes)."""
    return {CSRF_HEADER: token_for(secret, cookies) or ""}


# The port preview passes the app's own forms on: they carry no LabDeck token (the origin
# check above still applies to them).
PREVIEW_PATHS = ("/preview/", "/instructor-preview/")


def is_exempt(method: str, path: str) -> bool:
    return (
        method in SAFE_METHODS
        or path.startswith(("/api/", *PREVIEW_PATHS))
        or (method == "POST" and path == "/join")
    )


def csrf_token(request: Request) -> str:
    """For templates: the token of the page being rendered."""
    return str(request.scope.get(SCOPE_KEY) or "")


def csrf_field(request: Request) -> Markup:
    """For templates: the hidden field a plain ``<form method="post">`` needs."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(csrf_token(request))
    )


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _form_token(scope: Scope, body: bytes) -> str:
    """The token a form body carries; "" when it has none or cannot be read at all."""
    try:
        return await _parse_form_token(scope, body)
    except (HTTPException, MultiPartException, ValueError):
        return ""  # a malformed body is refused like a missing token, never a 500


async def _parse_form_token(scope: Scope, body: bytes) -> str:
    content_type = Headers(scope=scope).get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return fields.get(CSRF_FIELD, "")
    if content_type.startswith("multipart/form-data"):
        async with Request(scope, _replay(body)).form() as form:
            value = form.get(CSRF_FIELD)
            return value if isinstance(value, str) else ""
    return ""


class CSRFMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it may read a form body, so it replays it afterwards."""

    def __init__(
        self,
        app: ASGIApp,
        secret: str,
        secure_cookie: bool = False,
        public_url: str | None = None,
    ) -> None:
        self.app = app
        self.secret = secret
        self.secure_cookie = secure_cookie
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookies = dict(request.cookies)
        new_seed = None if cookies.get(CSRF_COOKIE) else secrets.token_urlsafe(32)
        if new_seed:
            cookies[CSRF_COOKIE] = new_seed
        expected = token_for(self.secret, cookies) or ""
        scope[SCOPE_KEY] = expected
        send = self._setting_cookie(send, new_seed) if new_seed else send
        if scope["method"] not in SAFE_METHODS:
            foreign = foreign_origin(scope, self.public_url)
            if foreign is not None:
                refusal = origin_refusal(foreign, scope, self.public_url)
                await self._refuse(scope, receive, send, refusal)
                return
        if not is_exempt(scope["method"], scope["path"]):
            checked = None if new_seed else await self._verified(scope, receive, expected)
            if checked is None:
                await self._refuse(scope, receive, send, REFUSAL)
                return
            receive = checked
        await self.app(scope, receive, send)

    async def _verified(self, scope: Scope, receive: Receive, expected: str) -> Receive | None:
        """The receive channel to go on with when the token is right, None when it is not."""
        header = Headers(scope=scope).get(CSRF_HEADER, "")
        if header:
            return receive if hmac.compare_digest(header.encode(), expected.encode()) else None
        body = await _read_body(receive, MAX_FORM_BYTES)
        if body is None:
            return None
        given = await _form_token(scope, body)
        return (
            _replay(body)
            if given and hmac.compare_digest(given.encode(), expected.encode())
            else None
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        response = error_response(Request(scope, receive), 403, detail)
        await response(scope, receive, send)

    def _setting_cookie(self, send: Send, seed: str) -> Send:
        attributes = f"Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax"
        cookie = f"{CSRF_COOKIE}={seed}; {attributes}" + ("; Secure" if self.secure_cookie else "")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return send_with_cookie


def install_csrf(app: FastAPI, settings: Settings) -> None:
    templates.env.globals["csrf_token"] = csrf_token
    templates.env.globals["csrf_field"] = csrf_field
    secure = (settings.public_url or "").startswith("https://")
    app.add_middleware(
        CSRFMiddleware,
        secret=settings.cookie_secret(),
        secure_cookie=secure,
        public_url=settings.public_url,
    )

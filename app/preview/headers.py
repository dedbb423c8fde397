"""What crosses the proxy. Towards the app: the request's headers without hop-by-hop ones and
without the portal's own cookies and tokens. Back to the browser: the app's headers, with
redirects that point into the sandbox moved under the preview prefix, cookies scoped to that
prefix, and headers that would change the portal itself (HSTS, Clear-Site-Data) dropped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import SplitResult, urlsplit

from app.preview.target import Target

# The portal's cookies all start so (labdeck_session, labdeck_instructor, labdeck_csrf): they
# never reach the app, and the app may not set one (it would shadow the portal's own).
PORTAL_COOKIE_PREFIX = "labdeck_"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_TO_THE_APP = frozenset({"host", "x-csrf-token", "content-length"}) | HOP_BY_HOP
# Headers by which an app could change how the browser treats the whole portal.
NOT_TO_THE_BROWSER = (
    frozenset({"strict-transport-security", "clear-site-data", "service-worker-allowed", "alt-svc"})
    | HOP_BY_HOP
)
SANDBOX_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1"})
# The instructor's view: an opaque origin (no same-origin access to the portal), see grants.py.
INSTRUCTOR_CSP = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"

Header = tuple[str, str]


def without_portal_cookies(cookie_header: str) -> str:
    """A ``Cookie`` header without the portal's cookies ("" when nothing is left)."""
    kept = [
        pair.strip()
        for pair in cookie_header.split(";")
        if pair.strip() and not pair.strip().startswith(PORTAL_COOKIE_PREFIX)
    ]
    return "; ".join(kept)


def to_the_app(
    headers: Iterable[Header], *, client: str, scheme: str, prefix: str, keep_auth: bool
) -> list[Header]:
    """Request headers for the app, plus ``X-Forwarded-*`` (``X-Forwarded-Prefix`` lets an
    app that honours it write links that stay under the preview)."""
    kept: list[Header] = []
    forwarded_host = ""
    for name, value in headers:
        lower = name.lower()
        if lower == "host":
            forwarded_host = value
        if lower in NOT_TO_THE_APP or (lower == "authorization" and not keep_auth):
            continue
        if lower == "cookie":
            value = without_portal_cookies(value)
            if not value:
                continue
        kept.append((name, value))
    kept += [
        ("X-Forwarded-For", client),
        ("X-Forwarded-Proto", scheme),
        ("X-Forwarded-Host", forwarded_host),
        ("X-Forwarded-Prefix", prefix),
    ]
    return kept


def to_the_browser(
    headers: Iterable[Header], target: Target, portal_host: str, *, instructor: bool
) -> list[Header]:
    """The app's response headers as the browser gets them."""
    kept: list[Header] = []
    for name, value in headers:
        lower = name.lower()
        if lower in NOT_TO_THE_BROWSER:
            continue
        if lower == "location":
            value = moved_location(value, target, portal_host)
        elif lower == "set-cookie":
            scoped = scoped_cookie(value, target.prefix)
            if scoped is None:
                continue
            value = scoped
        kept.append((name, value))
    if instructor:
        kept.append(("Content-Security-Policy", INSTRUCTOR_CSP))
    return kept


def moved_location(location: str, target: Target, portal_host: str) -> str:
    """A redirect into the sandbox (``/login``, ``http://localhost:8080/x``, the sandbox's own
    address) under the preview prefix; a relative or foreign one as it is."""
    parts = urlsplit(location)
    rest = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    rest += f"#{parts.fragment}" if parts.fragment else ""
    if not parts.netloc:
        if not location.startswith("/") or _under_preview(parts.path, target):
            return location
        return target.prefix + rest
    host, port = parts.hostname or "", _port_of(parts)
    if host in SANDBOX_HOSTS or host == target.host:
        return target.prefix_of(port or target.port) + rest
    if parts.netloc == portal_host and not _under_preview(parts.path, target):
        return target.prefix + rest
    return location


def _under_preview(path: str, target: Target) -> bool:
    return path == target.base or path.startswith(target.base + "/")


def _port_of(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def scoped_cookie(set_cookie: str, prefix: str) -> str | None:
    """The app's cookie with its ``Path`` under ``prefix`` and no ``Domain``; None for a cookie
    named like the portal's."""
    name_value, *attributes = set_cookie.split(";")
    if name_value.strip().startswith(PORTAL_COOKIE_PREFIX):
        return None
    path = "/"
    kept: list[str] = [name_value.strip()]
    for attribute in attributes:
        key, _, value = attribute.strip().partition("=")
        if key.lower() == "path":
            path = value.strip() if value.strip().startswith("/") else "/"
        elif key.lower() != "domain" and key:
            kept.append(attribute.strip())
    kept.insert(1, f"Path={prefix}{path}")
    return "; ".join(kept)


def header_pairs(raw: Sequence[tuple[bytes, bytes]]) -> list[Header]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]

"""The instructor's preview links: a signed grant in the path, not a cookie.

An attendee's app must not run with the instructor's rights. The instructor's preview is served
with ``Content-Security-Policy: sandbox`` (an opaque origin: its scripts cannot read the portal's
pages or act as the instructor), and a browser sends no cookies at all for what such a page
loads (measured with Chromium, issue 15), so the right to see one attendee's ports travels in
the URL: ``/instructor-preview/<grant>/<port>/...``. A grant names one attendee, is signed with
the portal's secret and expires with the instructor's sign-in.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.config import Settings
from app.instructor.auth import INSTRUCTOR_COOKIE_MAX_AGE

GRANT_MAX_AGE = INSTRUCTOR_COOKIE_MAX_AGE


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.cookie_secret(), salt="labdeck-preview-grant")


def grant_for(settings: Settings, workshop: str, attendee_id: int) -> str:
    return str(_serializer(settings).dumps({"w": workshop, "a": attendee_id}))


def attendee_of(settings: Settings, workshop: str, grant: str) -> int | None:
    """The attendee a grant names, when it is ours, of this workshop and not expired."""
    try:
        found = _serializer(settings).loads(grant, max_age=GRANT_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(found, dict) or found.get("w") != workshop:
        return None
    attendee = found.get("a")
    return attendee if isinstance(attendee, int) else None

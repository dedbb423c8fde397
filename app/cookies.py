"""The attendee's session cookie: signed, carrying their id and resume key."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from app.models import Attendee

COOKIE_NAME = "labdeck_session"


@dataclass(frozen=True)
class SessionCookies:
    """Signs the session cookie: it carries the attendee's id and resume key, checked on each request."""

    secret: str

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.secret, salt="labdeck-session")

    def dump(self, attendee: Attendee) -> str:
        return str(self._serializer().dumps({"id": attendee.id, "key": attendee.resume_key}))

    def load(self, value: str | None) -> tuple[int, str] | None:
        if not value:
            return None
        try:
            data = self._serializer().loads(value)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            return None
        return data["id"], str(data.get("key", ""))

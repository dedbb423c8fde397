"""Joining a workshop: unique display names, resume keys, and signed session cookies."""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from collections import defaultdict, deque
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel import Session, select

from app.models import Attendee, utcnow

COOKIE_NAME = "labdeck_session"
NAME_MAX = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class JoinRefused(ValueError):
    """The join cannot go ahead; the message is shown to the person joining."""


def clean_name(raw: str) -> str:
    """A display name: normalized, no control characters, trimmed to NAME_MAX."""
    name = unicodedata.normalize("NFKC", raw)
    name = " ".join(_CONTROL.sub(" ", name).split())[:NAME_MAX].strip()
    if not name:
        raise JoinRefused("Please type a name: the instructor sees it on the dashboard.")
    return name


def unique_name(session: Session, workshop: str, name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)`` ... when someone in the workshop already has it."""
    taken = set(session.exec(select(Attendee.name).where(Attendee.workshop == workshop)).all())
    if name not in taken:
        return name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: NAME_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def check_join_code(expected: str | None, given: str | None) -> None:
    if expected and not secrets.compare_digest(
        expected.strip().lower(), (given or "").strip().lower()
    ):
        raise JoinRefused(
            "That join code is not right. Ask the instructor for the code on the screen."
        )


def create_attendee(session: Session, workshop: str, raw_name: str) -> Attendee:
    attendee = Attendee(
        workshop=workshop,
        name=unique_name(session, workshop, clean_name(raw_name)),
        resume_key=secrets.token_urlsafe(24),
    )
    session.add(attendee)
    session.commit()
    session.refresh(attendee)
    return attendee


def attendee_by_resume_key(session: Session, workshop: str, key: str) -> Attendee | None:
    attendee = session.exec(select(Attendee).where(Attendee.resume_key == key)).first()
    return attendee if attendee is not None and attendee.workshop == workshop else None


def touch(session: Session, attendee: Attendee, lesson: str | None = None) -> None:
    attendee.last_seen_at = utcnow()
    if lesson is not None:
        attendee.current_lesson = lesson
    session.add(attendee)
    session.commit()


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


# A whole class may join from one address (venue Wi-Fi behind NAT, a proxy): joins per address
# are limited only against floods, while guessing the join code is limited tightly.
JOINS_PER_ADDRESS_PER_MINUTE = 200
WRONG_CODES_PER_ADDRESS_PER_MINUTE = 10


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (e.g. joins per address)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (and not counted) when it is over the limit."""
        if self.exhausted(key):
            return False
        self._events[key].append(time.monotonic())
        return True

    def exhausted(self, key: str) -> bool:
        """Whether ``key`` used up its events in the window, without counting one."""
        now = time.monotonic()
        events = self._events[key]
        while events and now - events[0] > self.window:
            events.popleft()
        return len(events) >= self.limit

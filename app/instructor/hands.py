"""Raised hands: an attendee asks for help; the flag stays on the dashboard until it is cleared."""

from __future__ import annotations

from sqlmodel import Session

from app.events import INSTRUCTOR_TOPIC, EventHub, attendee_topic
from app.models import Attendee, utcnow


def set_hand(session: Session, attendee: Attendee, raised: bool) -> bool:
    """Raise or lower ``attendee``'s hand; True when that changed anything."""
    if (attendee.hand_raised_at is not None) == raised:
        return False
    attendee.hand_raised_at = utcnow() if raised else None
    session.add(attendee)
    session.commit()
    return True


def change_hand(session: Session, events: EventHub, attendee: Attendee, raised: bool) -> None:
    """Raise or lower the hand and, when that changed anything, tell dashboards and the
    attendee's pages."""
    if set_hand(session, attendee, raised) and attendee.id is not None:
        announce(events, attendee.id, raised)


def announce(events: EventHub, attendee_id: int, raised: bool) -> None:
    """Dashboards flag (or unflag) the row; the attendee's pages update their hand button."""
    events.publish(INSTRUCTOR_TOPIC, {"type": "hand", "attendee_id": attendee_id, "raised": raised})
    events.publish(attendee_topic(attendee_id), {"type": "hand", "raised": raised})

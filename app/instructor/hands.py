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


def clear_hand(session: Session, workshop: str, attendee_id: int) -> Attendee | None:
    """The instructor has helped: lower the hand. None when there is no such attendee."""
    attendee = session.get(Attendee, attendee_id)
    if attendee is None or attendee.workshop != workshop:
        return None
    set_hand(session, attendee, raised=False)
    return attendee


def announce(events: EventHub, attendee_id: int, raised: bool) -> None:
    """Dashboards flag (or unflag) the row; the attendee's pages update their hand button."""
    events.publish(INSTRUCTOR_TOPIC, {"type": "hand", "attendee_id": attendee_id, "raised": raised})
    events.publish(attendee_topic(attendee_id), {"type": "hand", "raised": raised})

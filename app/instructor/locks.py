"""Lesson locks: the instructor paces the class by closing lessons for now."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select

from app.events import BROADCAST_TOPIC, INSTRUCTOR_TOPIC, EventHub
from app.lessons.schema import Workshop
from app.models import Attendee, LessonLock
from app.templating import render


class UnknownLesson(ValueError):
    """The lesson to lock or unlock is not in the workshop."""


def is_locked(session: Session, workshop: str, lesson: str) -> bool:
    return session.get(LessonLock, (workshop, lesson)) is not None


def locked_slugs(session: Session, workshop: str) -> list[str]:
    return list(session.exec(select(LessonLock.lesson).where(LessonLock.workshop == workshop)))


def set_locked(session: Session, workshop: Workshop, lesson: str, locked: bool) -> None:
    """Lock or unlock ``lesson``; doing it twice is the same as once."""
    if workshop.lesson(lesson) is None:
        raise UnknownLesson(f"There is no lesson {lesson!r} in this workshop.")
    row = session.get(LessonLock, (workshop.slug, lesson))
    if locked and row is None:
        session.add(LessonLock(workshop=workshop.slug, lesson=lesson))
    elif not locked and row is not None:
        session.delete(row)
    session.commit()


def announce(events: EventHub, locked: list[str]) -> None:
    """Attendee pages waiting on a locked lesson reload when it opens (static/js/events.js)."""
    events.publish(BROADCAST_TOPIC, {"type": "lessons", "locked": sorted(locked)})


def change_lock(
    session: Session, events: EventHub, workshop: Workshop, lesson: str, locked: bool
) -> str:
    """Lock or unlock ``lesson``, then update attendee pages and dashboards. Returns the
    lesson's title, for the instructor's confirmation."""
    set_locked(session, workshop, lesson, locked)
    announce(events, locked_slugs(session, workshop.slug))
    events.publish(INSTRUCTOR_TOPIC, {"type": "locks", "lesson": lesson, "locked": locked})
    found = workshop.lesson(lesson)
    return found.title if found else lesson


def locked_page(
    request: Request, attendee: Attendee, workshop: Workshop, lesson: str
) -> HTMLResponse:
    """The friendly 403 an attendee sees on a lesson the instructor has not opened yet."""
    found = workshop.lesson(lesson)
    context = {
        "attendee": attendee,
        "lesson_slug": lesson,
        "lesson_title": found.title if found else lesson,
    }
    return render(request, "_partials/lesson_locked.html", context, status_code=403)

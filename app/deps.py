"""Dependencies as types: routes say what they need, these find it or answer 401/403."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from app.attendees import COOKIE_NAME, SessionCookies
from app.config import Settings
from app.instructor import auth as instructor_auth
from app.lessons.schema import Workshop
from app.models import Attendee


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.db_engine) as session:
        yield session


def get_workshop(request: Request) -> Workshop:
    workshop: Workshop | None = request.app.state.workshop
    if workshop is None:
        raise HTTPException(503, "No workshop is loaded on this portal. Ask the instructor.")
    return workshop


def get_cookies(request: Request) -> SessionCookies:
    cookies: SessionCookies = request.app.state.cookies
    return cookies


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
WorkshopDep = Annotated[Workshop, Depends(get_workshop)]
CookiesDep = Annotated[SessionCookies, Depends(get_cookies)]


def current_attendee_or_none(
    request: Request, session: SessionDep, cookies: CookiesDep, workshop: WorkshopDep
) -> Attendee | None:
    found = cookies.load(request.cookies.get(COOKIE_NAME))
    if found is None:
        return None
    attendee_id, key = found
    attendee = session.get(Attendee, attendee_id)
    if attendee is None or attendee.workshop != workshop.slug:
        return None
    if not secrets.compare_digest(attendee.resume_key, key):
        return None
    return attendee


def current_attendee(
    attendee: Annotated[Attendee | None, Depends(current_attendee_or_none)],
) -> Attendee:
    if attendee is None:
        raise HTTPException(401, "Join the workshop on the start page first.")
    return attendee


MaybeAttendeeDep = Annotated[Attendee | None, Depends(current_attendee_or_none)]
AttendeeDep = Annotated[Attendee, Depends(current_attendee)]


def require_instructor(request: Request, settings: SettingsDep) -> None:
    """Bearer token (scripts) or the signed ``labdeck_instructor`` cookie (the dashboard)."""
    found = instructor_auth.verdict(settings, request.headers, request.cookies)
    if found is instructor_auth.Verdict.MISSING:
        raise HTTPException(
            401,
            "Instructor sign-in needed: sign in at /instructor.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if found is instructor_auth.Verdict.WRONG:
        raise HTTPException(403, "That instructor token is not right.")


InstructorDep = Annotated[None, Depends(require_instructor)]

"""Dependencies as types: routes say what they need, these find it or answer 401/403.

Every service comes from ``Services`` (built once by the lifespan, app/services.py). The
dependencies take an ``HTTPConnection``, so HTTP routes and websockets share them.

An ``async`` route must not take ``SessionDep``: FastAPI would hold that session (and its
connection) across every await of the route. Async code does its database work through
``DatabaseDep`` (``await db.run(...)``); tests/test_deps.py fails on a route that breaks this.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException
from sqlmodel import Session
from starlette.requests import HTTPConnection

from app import attendees
from app.checks.service import CheckService
from app.config import Settings
from app.cookies import COOKIE_NAME, SessionCookies
from app.db import Database
from app.events import EventHub
from app.instructor import auth as instructor_auth
from app.instructor.broadcasts import BroadcastBoard
from app.instructor.live import DashboardFeed
from app.lessons.schema import Workshop
from app.models import Attendee
from app.sandboxes.service import SandboxService
from app.services import Limiters, Services


def get_services(connection: HTTPConnection) -> Services:
    services: Services | None = getattr(connection.app.state, "services", None)
    if services is None:
        raise HTTPException(503, "The portal is still starting; try again in a moment.")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_database(services: ServicesDep) -> Database:
    return services.db


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """For plain ``def`` routes only (FastAPI runs them in a thread); see the module docstring."""
    with Session(database.engine) as session:
        yield session


def get_workshop(services: ServicesDep) -> Workshop:
    if services.workshop is None:
        raise HTTPException(503, "No workshop is loaded on this portal. Ask the instructor.")
    return services.workshop


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
WorkshopDep = Annotated[Workshop, Depends(get_workshop)]


def get_cookies(services: ServicesDep) -> SessionCookies:
    return services.cookies


def get_events(services: ServicesDep) -> EventHub:
    return services.events


def get_sandboxes(services: ServicesDep) -> SandboxService:
    return services.sandboxes


def get_checks(services: ServicesDep) -> CheckService:
    return services.checks


def get_broadcasts(services: ServicesDep) -> BroadcastBoard:
    return services.broadcasts


def get_dashboard_feed(services: ServicesDep) -> DashboardFeed:
    return services.dashboard_feed


def get_limiters(services: ServicesDep) -> Limiters:
    return services.limiters


CookiesDep = Annotated[SessionCookies, Depends(get_cookies)]
EventsDep = Annotated[EventHub, Depends(get_events)]
SandboxesDep = Annotated[SandboxService, Depends(get_sandboxes)]
ChecksDep = Annotated[CheckService, Depends(get_checks)]
BroadcastsDep = Annotated[BroadcastBoard, Depends(get_broadcasts)]
DashboardFeedDep = Annotated[DashboardFeed, Depends(get_dashboard_feed)]
LimitersDep = Annotated[Limiters, Depends(get_limiters)]


def authenticate_attendee(connection: HTTPConnection, services: Services) -> Attendee | None:
    """The attendee whose signed cookie this connection carries, or None. Blocks (one read)."""
    workshop = services.workshop
    found = services.cookies.load(connection.cookies.get(COOKIE_NAME))
    if workshop is None or found is None:
        return None
    attendee_id, key = found
    return services.db.run_sync(
        lambda session: attendees.by_cookie(session, workshop.slug, attendee_id, key)
    )


def current_attendee_or_none(connection: HTTPConnection, services: ServicesDep) -> Attendee | None:
    """A plain ``def``: FastAPI runs it in a thread, so the read never blocks the event loop."""
    return authenticate_attendee(connection, services)


MaybeAttendeeDep = Annotated[Attendee | None, Depends(current_attendee_or_none)]


def current_attendee(attendee: MaybeAttendeeDep) -> Attendee:
    if attendee is None:
        raise HTTPException(401, "Join the workshop on the start page first.")
    return attendee


AttendeeDep = Annotated[Attendee, Depends(current_attendee)]


def client_address(connection: HTTPConnection) -> str:
    """The peer's address: uvicorn puts a forwarded one here only from a trusted proxy."""
    return connection.client.host if connection.client else "unknown"


def instructor_refusal(
    connection: HTTPConnection, settings: Settings, limiters: Limiters
) -> tuple[int, str] | None:
    """None for the instructor; else the HTTP status and sentence of the refusal. Bearer tokens
    are guesses to count, like the sign-in form's: after a few wrong ones from an address, that
    address gets 429 even for the right one (the signed cookie is no guess and is not counted)."""
    address = client_address(connection)
    guessing = instructor_auth.bearer_token(connection.headers) is not None
    if guessing and limiters.wrong_tokens.exhausted(address):
        return 429, "Too many wrong instructor tokens from your address; wait a minute."
    found = instructor_auth.verdict(settings, connection.headers, connection.cookies)
    if found is instructor_auth.Verdict.MISSING:
        return 401, "Instructor sign-in needed: sign in at /instructor."
    if found is instructor_auth.Verdict.WRONG:
        limiters.wrong_tokens.allow(address)
        return 403, "That instructor token is not right."
    return None


def require_instructor(
    connection: HTTPConnection, settings: SettingsDep, limiters: LimitersDep
) -> None:
    """Bearer token (scripts) or the signed ``labdeck_instructor`` cookie (the dashboard)."""
    refusal = instructor_refusal(connection, settings, limiters)
    if refusal is not None:
        status, detail = refusal
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        raise HTTPException(status, detail, headers=headers)


InstructorDep = Annotated[None, Depends(require_instructor)]

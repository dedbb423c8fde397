"""Joining the workshop and resuming on another device."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app import attendees
from app.config import Settings
from app.cookies import COOKIE_NAME, SessionCookies
from app.db import Database
from app.deps import (
    CookiesDep,
    DatabaseDep,
    EventsDep,
    LimitersDep,
    MaybeAttendeeDep,
    SandboxesDep,
    SessionDep,
    SettingsDep,
    WorkshopDep,
)
from app.instructor import live
from app.lessons.render import render_markdown
from app.lessons.schema import Workshop
from app.models import Attendee
from app.sandboxes.service import SandboxService
from app.templating import render

router = APIRouter()
INVALID_RESUME_LINK = (
    "This resume link is not valid for this workshop: it may be mistyped or cut short. "
    "Copy it again from your name at the top of a lesson page, or join again from the start page."
)
COOKIE_MAX_AGE = 14 * 24 * 3600
CLIENT_CLOSED_REQUEST = 499  # nginx's name for it; nobody reads the answer


def _login(response: Response, cookies: SessionCookies, attendee: Attendee, secure: bool) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookies.dump(attendee),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def _first_lesson_url(workshop: Workshop) -> str:
    return f"/lessons/{workshop.lessons[0].slug}" if workshop.lessons else "/lessons"


def _current_lesson_url(workshop: Workshop, attendee: Attendee) -> str:
    """Where the attendee was (their last lesson page), else the first lesson."""
    lesson = attendee.current_lesson and workshop.lesson(attendee.current_lesson)
    return f"/lessons/{lesson.slug}" if lesson else _first_lesson_url(workshop)


def _home(
    request: Request,
    workshop: Workshop,
    error: str | None,
    status: int,
    same_name: SameName | None = None,
) -> HTMLResponse:
    context = {
        "description_html": render_markdown(workshop.meta.description),
        "join_error": error,
        "same_name": same_name,
    }
    return render(request, "home.html", context, block="join_form", status_code=status)


@dataclass(frozen=True)
class SameName:
    """Someone already joined under this name: the page offers their resume link's way back, or
    the numbered name, instead of a second attendee and sandbox made behind their back."""

    taken: str
    suggested: str
    code: str | None


def _same_name(session: Session, workshop: str, raw_name: str, code: str | None) -> SameName | None:
    name = attendees.clean_name(raw_name)
    suggested = attendees.unique_name(session, workshop, name)
    return None if suggested == name else SameName(name, suggested, code)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, workshop: WorkshopDep, attendee: MaybeAttendeeDep) -> Response:
    if attendee is not None:
        return RedirectResponse(
            (attendee.current_lesson and f"/lessons/{attendee.current_lesson}")
            or _first_lesson_url(workshop),
            status_code=303,
        )
    return _home(request, workshop, None, 200)


@router.post("/join")
async def join(
    request: Request,
    workshop: WorkshopDep,
    database: DatabaseDep,
    cookies: CookiesDep,
    settings: SettingsDep,
    limiters: LimitersDep,
    sandboxes: SandboxesDep,
    events: EventsDep,
    name: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str | None, Form(max_length=200)] = None,
    offer_resume: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    address = request.client.host if request.client else "unknown"
    if limiters.wrong_codes.exhausted(address) or not limiters.joins.allow(address):
        return _home(request, workshop, "Too many tries from your address; wait a minute.", 429)
    try:
        attendees.check_join_code(workshop.meta.join_code, code)
    except attendees.JoinRefused as refused:
        limiters.wrong_codes.allow(address)  # guessing the code costs a try
        return _home(request, workshop, str(refused), 403)
    try:
        if offer_resume:  # the page's own form: a taken name gets a choice, not "Ada (2)"
            same = await database.run(
                lambda session: _same_name(session, workshop.slug, name, code)
            )
            if same is not None:
                return _home(request, workshop, None, 409, same_name=same)
        attendee = await database.run(
            lambda session: attendees.create_attendee(session, workshop.slug, name)
        )
    except attendees.JoinRefused as refused:
        return _home(request, workshop, str(refused), 422)
    assert attendee.id is not None
    # The attendee and their sandbox's start go together: a client that vanishes meanwhile
    # (its request cancelled) leaves no attendee behind who never got a cookie.
    handing_out = time.perf_counter()
    try:
        await asyncio.shield(sandboxes.ensure_for(attendee.id))
        hand_out_ms = (time.perf_counter() - handing_out) * 1000
        vanished = await request.is_disconnected()
    except BaseException:
        await asyncio.shield(_undo_join(database, sandboxes, attendee.id))
        raise
    if vanished:  # nobody will get the cookie: no attendee, no sandbox
        await _undo_join(database, sandboxes, attendee.id)
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    live.announce_join(events, attendee.id)
    response = RedirectResponse(_first_lesson_url(workshop), status_code=303)
    _login(response, cookies, attendee, secure=(settings.public_url or "").startswith("https://"))
    # The sandbox's share of the join, for browsers' developer tools and `bench class`.
    response.headers["Server-Timing"] = f"hand-out;dur={hand_out_ms:.1f}"
    return response


async def _undo_join(database: Database, sandboxes: SandboxService, attendee_id: int) -> None:
    await sandboxes.release(attendee_id)
    await database.run(lambda session: attendees.delete_attendee(session, attendee_id))


@router.get("/resume/{key}")
def resume(
    key: str,
    request: Request,
    workshop: WorkshopDep,
    session: SessionDep,
    cookies: CookiesDep,
    settings: SettingsDep,
    current: MaybeAttendeeDep,
) -> Response:
    """The personal link that restores an attendee's identity on another device. A browser
    signed in as someone else is asked first: a link sent by another attendee would otherwise
    swap the victim's session for theirs, and their shell into the victim's page (issue 13)."""
    resumed = attendees.attendee_by_resume_key(session, workshop.slug, key[:64])
    if resumed is None:
        raise HTTPException(404, INVALID_RESUME_LINK)
    if current is not None and current.id != resumed.id:
        context = {"current": current, "resumed": resumed, "key": resumed.resume_key}
        page = render(request, "resume_confirm.html", context)
        page.headers["X-Frame-Options"] = "DENY"  # no page may frame the button and get it clicked
        page.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        return page
    return _resumed(workshop, cookies, settings, resumed)


@router.post("/resume/{key}")
def confirm_resume(
    key: str, workshop: WorkshopDep, session: SessionDep, cookies: CookiesDep, settings: SettingsDep
) -> Response:
    """The confirmation page's button (a POST: it carries the page's CSRF token)."""
    resumed = attendees.attendee_by_resume_key(session, workshop.slug, key[:64])
    if resumed is None:
        raise HTTPException(404, INVALID_RESUME_LINK)
    return _resumed(workshop, cookies, settings, resumed)


def _resumed(
    workshop: Workshop, cookies: SessionCookies, settings: Settings, attendee: Attendee
) -> Response:
    response = RedirectResponse(_current_lesson_url(workshop, attendee), status_code=303)
    _login(response, cookies, attendee, secure=(settings.public_url or "").startswith("https://"))
    return response

"""Joining the workshop and resuming on another device."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import attendees
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
COOKIE_MAX_AGE = 14 * 24 * 3600


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


def _home(request: Request, workshop: Workshop, error: str | None, status: int) -> HTMLResponse:
    context = {"description_html": render_markdown(workshop.meta.description), "join_error": error}
    return render(request, "home.html", context, block="join_form", status_code=status)


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
        attendee = await database.run(
            lambda session: attendees.create_attendee(session, workshop.slug, name)
        )
    except attendees.JoinRefused as refused:
        return _home(request, workshop, str(refused), 422)
    assert attendee.id is not None
    # The attendee and their sandbox's start go together: a client that vanishes meanwhile
    # (its request cancelled) leaves no attendee behind who never got a cookie.
    try:
        await asyncio.shield(sandboxes.ensure_for(attendee.id))
    except BaseException:
        await asyncio.shield(_undo_join(database, sandboxes, attendee.id))
        raise
    live.announce_join(events, attendee.id)
    response = RedirectResponse(_first_lesson_url(workshop), status_code=303)
    _login(response, cookies, attendee, secure=(settings.public_url or "").startswith("https://"))
    return response


async def _undo_join(database: Database, sandboxes: SandboxService, attendee_id: int) -> None:
    await sandboxes.release(attendee_id)
    await database.run(lambda session: attendees.delete_attendee(session, attendee_id))


@router.get("/resume/{key}")
def resume(
    key: str, workshop: WorkshopDep, session: SessionDep, cookies: CookiesDep, settings: SettingsDep
) -> Response:
    """The personal link that restores an attendee's identity on another device."""
    attendee = attendees.attendee_by_resume_key(session, workshop.slug, key[:64])
    if attendee is None:
        return RedirectResponse("/", status_code=303)
    response = RedirectResponse(_first_lesson_url(workshop), status_code=303)
    _login(response, cookies, attendee, secure=(settings.public_url or "").startswith("https://"))
    return response

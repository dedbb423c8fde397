"""The attendee's raise-hand button; the instructor's dashboard answers it (app/routes/instructor.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.deps import AttendeeDep, EventsDep, SessionDep
from app.events import EventHub
from app.instructor import hands
from app.models import Attendee
from app.templating import is_htmx, render

router = APIRouter()


@router.get("/hand", response_class=HTMLResponse)
async def hand_button(request: Request, attendee: AttendeeDep) -> HTMLResponse:
    return render(request, "_partials/hand_button.html", {"attendee": attendee})


@router.post("/hand")
def raise_hand(
    request: Request, attendee: AttendeeDep, session: SessionDep, events: EventsDep
) -> Response:
    return _set_hand(request, session.merge(attendee), session, events, raised=True)


@router.post("/hand/lower")
def lower_hand(
    request: Request, attendee: AttendeeDep, session: SessionDep, events: EventsDep
) -> Response:
    return _set_hand(request, session.merge(attendee), session, events, raised=False)


def _set_hand(
    request: Request, attendee: Attendee, session: Session, events: EventHub, raised: bool
) -> Response:
    hands.change_hand(session, events, attendee, raised)
    if is_htmx(request):
        return render(request, "_partials/hand_button.html", {"attendee": attendee})
    return RedirectResponse(_same_site_referer(request) or "/lessons", status_code=303)


def _same_site_referer(request: Request) -> str | None:
    """Back to the page the button was on, never to another site."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/"):
        return None
    path = "/" + referer.path.lstrip("/")  # "//evil.example" would leave the site
    return f"{path}?{referer.query}" if referer.query else path

"""The port preview (app/preview/): ``/preview/{port}/...`` for the attendee's own sandbox,
``/instructor-preview/{grant}/{port}/...`` for the instructor (a signed grant: see
app/preview/grants.py), reached from ``/instructor/attendees/{id}/preview/{port}``; and the
terminal panel's list of open ports. Every request and websocket is authorized on its own."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.attendees import find_attendee
from app.deps import AttendeeDep, InstructorDep, SandboxesDep, ServicesDep
from app.models import Attendee
from app.preview import grants
from app.preview.http import METHODS
from app.preview.ports import ports_of_attendee
from app.preview.target import PreviewUnavailable, Target, parse_port, sandbox_target
from app.preview.websocket import relay
from app.routes.ws_auth import FORBIDDEN, attendee_or_refusal
from app.services import Services
from app.templating import render

router = APIRouter()

OWN = "/preview"
GRANTED = "/instructor-preview/{grant}"
BAD_PORT = "A preview needs a port number from 1 to 65535, as in /preview/8080/."
BAD_GRANT = "This preview link is not valid (or has expired). Open it again from the dashboard."


@router.get("/sandbox/ports", response_class=HTMLResponse)
async def sandbox_ports(
    request: Request, attendee: AttendeeDep, sandboxes: SandboxesDep
) -> HTMLResponse:
    """The terminal panel's list of open ports, each with an Open link (htmx fragment)."""
    ports, problem = await ports_of_attendee(sandboxes, attendee.id or 0)
    return render(request, "_partials/ports.html", {"ports": ports, "problem": problem})


@router.get("/preview/{port}")
async def preview_root(port: str, attendee: AttendeeDep) -> RedirectResponse:
    return RedirectResponse(f"{OWN}/{_port(port)}/", status_code=307)


@router.api_route("/preview/{port}/{path:path}", methods=METHODS, include_in_schema=False)
async def preview(
    request: Request, port: str, path: str, attendee: AttendeeDep, services: ServicesDep
) -> Response:
    number, attendee_id = _port(port), attendee.id or 0
    try:
        target = await sandbox_target(services.sandboxes, attendee_id, number, OWN)
        services.sandboxes.touch(attendee_id)
        return await services.preview.forward(request, target, instructor=False)
    except PreviewUnavailable as problem:
        return unavailable_page(request, problem)


@router.websocket("/preview/{port}/{path:path}")
async def preview_socket(websocket: WebSocket, port: str, services: ServicesDep) -> None:
    attendee, refusal = await attendee_or_refusal(websocket, services)
    number = parse_port(port)
    target = None
    if attendee is not None and number is not None:
        target = await _target_or_none(services, attendee.id or 0, number, OWN)
    await _relay_or_close(websocket, target, refusal)


@router.get("/instructor/attendees/{attendee_id}/ports", response_class=HTMLResponse)
async def instructor_ports(
    request: Request, attendee_id: int, _: InstructorDep, services: ServicesDep
) -> HTMLResponse:
    """One attendee's open ports, each opening the instructor's preview of it (the row menu's
    "Open ports"); the list alone for the Refresh button."""
    watched = await asyncio.to_thread(_attendee_here, services, attendee_id)
    if watched is None:
        raise HTTPException(404, "There is no such attendee in this workshop.")
    ports, problem = await ports_of_attendee(services.sandboxes, attendee_id)
    context = {
        "watched": watched,
        "ports": ports,
        "problem": problem,
        "ports_url": f"/instructor/attendees/{attendee_id}/ports",
        "preview_base": f"/instructor/attendees/{attendee_id}/preview",
    }
    return render(request, "instructor/ports.html", context, block="ports")


@router.get("/instructor/attendees/{attendee_id}/preview/{port}/")
@router.get("/instructor/attendees/{attendee_id}/preview/{port}")
async def instructor_preview(
    attendee_id: int, port: str, instructor: InstructorDep, services: ServicesDep
) -> RedirectResponse:
    """The instructor's way in: a grant for this attendee, in the URL of their preview."""
    number = _port(port)
    if not await asyncio.to_thread(_is_attendee, services, attendee_id):
        raise HTTPException(404, "There is no such attendee in this workshop.")
    grant = grants.grant_for(services.settings, _slug(services), attendee_id)
    return RedirectResponse(f"/instructor-preview/{grant}/{number}/", status_code=303)


@router.api_route(
    "/instructor-preview/{grant}/{port}/{path:path}", methods=METHODS, include_in_schema=False
)
async def granted_preview(
    request: Request, grant: str, port: str, path: str, services: ServicesDep
) -> Response:
    attendee_id = grants.attendee_of(services.settings, _slug(services), grant)
    if attendee_id is None:
        raise HTTPException(403, BAD_GRANT)
    number = _port(port)
    try:
        target = await sandbox_target(services.sandboxes, attendee_id, number, _base(grant))
        return await services.preview.forward(request, target, instructor=True)
    except PreviewUnavailable as problem:
        return unavailable_page(request, problem)


@router.websocket("/instructor-preview/{grant}/{port}/{path:path}")
async def granted_preview_socket(
    websocket: WebSocket, grant: str, port: str, services: ServicesDep
) -> None:
    # The grant is the credential: the sandboxed page sends Origin "null" and no cookies.
    attendee_id = grants.attendee_of(services.settings, _slug(services), grant)
    number = parse_port(port)
    refusal = None if attendee_id is not None else (FORBIDDEN, "not a valid preview link")
    target = None
    if attendee_id is not None and number is not None:
        target = await _target_or_none(services, attendee_id, number, _base(grant))
    await _relay_or_close(websocket, target, refusal)


def unavailable_page(request: Request, problem: PreviewUnavailable) -> Response:
    context = {"status": problem.status, "title": problem.title, "detail": problem.detail}
    page = render(request, "error.html", context, status_code=problem.status)
    page.headers["Cache-Control"] = "no-store"
    return page


async def _target_or_none(
    services: Services, attendee_id: int, port: int, base: str
) -> Target | None:
    try:
        return await sandbox_target(services.sandboxes, attendee_id, port, base)
    except PreviewUnavailable:
        return None


async def _relay_or_close(
    websocket: WebSocket, target: Target | None, refusal: tuple[int, str] | None
) -> None:
    if refusal is None and target is not None:
        await relay(websocket, target)
        return
    await websocket.accept()
    await websocket.close(*(refusal or (4404, "no such port or sandbox not running")))


def _port(text: str) -> int:
    number = parse_port(text)
    if number is None:
        raise HTTPException(404, BAD_PORT)
    return number


def _base(grant: str) -> str:
    return GRANTED.replace("{grant}", grant)


def _slug(services: Services) -> str:
    return services.workshop.slug if services.workshop else ""


def _attendee_here(services: Services, attendee_id: int) -> Attendee | None:
    """The attendee, when they are one of this workshop's."""
    attendee = services.db.run_sync(lambda session: find_attendee(session, attendee_id))
    return attendee if attendee is not None and attendee.workshop == _slug(services) else None


def _is_attendee(services: Services, attendee_id: int) -> bool:
    return _attendee_here(services, attendee_id) is not None

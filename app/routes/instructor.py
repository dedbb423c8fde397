"""The instructor's side: sign-in, the live dashboard, its actions, exports, `/api/class`. The
attendee's raise-hand button, which the dashboard answers, is app/routes/hand.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from app.attendees import find_attendee
from app.db import Database
from app.deps import (
    BroadcastsDep,
    DatabaseDep,
    EventsDep,
    InstructorDep,
    LimitersDep,
    SandboxesDep,
    ServicesDep,
    SessionDep,
    SettingsDep,
    WorkshopDep,
)
from app.instructor import actions, auth, hands, locks
from app.instructor.broadcasts import EmptyBroadcast
from app.instructor.dashboard import load_dashboard, load_rows
from app.instructor.export import as_csv, class_json, export_rows
from app.instructor.pool_size import save_warm_pool_size
from app.instructor.sandbox_health import current_health
from app.lessons.schema import Workshop
from app.models import Attendee
from app.routes.ws_auth import admit_instructor
from app.templating import is_htmx, render

router = APIRouter()


def _done(request: Request, message: str, kind: str = "ok", status: int = 200) -> Response:
    """The dashboard's fetch() gets a flash line; a plain form goes back to the dashboard."""
    if is_htmx(request):
        return render(
            request,
            "instructor/_flash.html",
            {"message": message, "kind": kind},
            status_code=status,
        )
    return RedirectResponse("/instructor", status_code=303)


def _attendee(session: Session, workshop: Workshop, attendee_id: int) -> Attendee:
    attendee = find_attendee(session, attendee_id)
    if attendee is None or attendee.workshop != workshop.slug:
        raise HTTPException(404, "There is no such attendee in this workshop.")
    return attendee


async def _attendee_async(database: Database, workshop: Workshop, attendee_id: int) -> Attendee:
    return await database.run(lambda session: _attendee(session, workshop, attendee_id))


# -- sign-in -----------------------------------------------------------------------------------


# The reading routes are plain `def`: FastAPI runs them in a thread, so loading a big class
# from SQLite never holds up the event loop (and the dashboards' websockets with it).
@router.get("/instructor", response_class=HTMLResponse)
def dashboard(
    request: Request,
    settings: SettingsDep,
    workshop: WorkshopDep,
    session: SessionDep,
    sandboxes: SandboxesDep,
    broadcasts: BroadcastsDep,
) -> Response:
    found = auth.verdict(settings, request.headers, request.cookies)
    if found is not auth.Verdict.SIGNED_IN:
        return render(
            request,
            "instructor/login.html",
            {},
            status_code=401 if found is auth.Verdict.MISSING else 403,
        )
    view = load_dashboard(session, workshop)
    context = {
        "dashboard": view,
        "columns": view.columns,
        "now": datetime.now(UTC),
        "broadcasts": broadcasts.recent(),
        "warm_pool_size": sandboxes.pool.size,
    }
    return render(request, "instructor/dashboard.html", context, block="grid")


@router.post("/instructor/login")
async def login(
    request: Request,
    settings: SettingsDep,
    limiters: LimitersDep,
    token: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    address = request.client.host if request.client else "unknown"
    if not limiters.wrong_tokens.allow(address):
        context = {"login_error": "Too many attempts from your address; wait a minute."}
        return render(request, "instructor/login.html", context, status_code=429)
    if not token or not auth.token_matches(settings, token.strip()):
        context = {
            "login_error": "That is not the instructor token. Copy it from the ./labdeck up output."
        }
        return render(request, "instructor/login.html", context, status_code=403)
    response = RedirectResponse("/instructor", status_code=303)
    auth.remember_browser(response, settings)
    return response


@router.post("/instructor/logout")
async def logout() -> Response:
    response = RedirectResponse("/instructor", status_code=303)
    auth.forget_browser(response)
    return response


# -- reading -----------------------------------------------------------------------------------


@router.get("/instructor/health", response_class=HTMLResponse)
async def sandbox_health(request: Request, _: InstructorDep, sandboxes: SandboxesDep) -> Response:
    """The dashboard's Sandboxes panel: engine, images, workshop registry (as /healthz)."""
    health = await current_health(sandboxes)
    return render(request, "instructor/_health.html", {"health": health})


@router.get("/api/class")
def api_class(_: InstructorDep, workshop: WorkshopDep, session: SessionDep) -> dict[str, Any]:
    return class_json(workshop, load_rows(session, workshop))


@router.get("/instructor/export.csv")
def export_csv(_: InstructorDep, workshop: WorkshopDep, session: SessionDep) -> Response:
    body = as_csv(export_rows(load_rows(session, workshop)))
    headers = {"Content-Disposition": f'attachment; filename="{workshop.slug}-progress.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/instructor/export.json")
def export_json(_: InstructorDep, workshop: WorkshopDep, session: SessionDep) -> JSONResponse:
    return JSONResponse(export_rows(load_rows(session, workshop)))


@router.get("/instructor/attendees/{attendee_id}/terminal", response_class=HTMLResponse)
def terminal_viewer(
    attendee_id: int,
    request: Request,
    _: InstructorDep,
    workshop: WorkshopDep,
    session: SessionDep,
    mode: Annotated[Literal["read", "write"], Query()] = "read",
) -> HTMLResponse:
    attendee = _attendee(session, workshop, attendee_id)
    context = {
        "watched": attendee,
        "mode": mode,
        "socket_path": f"/ws/instructor/terminal/{attendee_id}?mode={mode}",
    }
    return render(request, "instructor/terminal.html", context)


# -- actions -----------------------------------------------------------------------------------


@router.post("/instructor/attendees/{attendee_id}/reset")
async def reset_sandbox(
    attendee_id: int,
    request: Request,
    _: InstructorDep,
    workshop: WorkshopDep,
    database: DatabaseDep,
    sandboxes: SandboxesDep,
) -> Response:
    attendee = await _attendee_async(database, workshop, attendee_id)
    await sandboxes.reset(attendee_id)
    return _done(request, f"Resetting the sandbox of {attendee.name}.")


@router.post("/instructor/attendees/{attendee_id}/stop")
async def stop_sandbox(
    attendee_id: int,
    request: Request,
    _: InstructorDep,
    workshop: WorkshopDep,
    database: DatabaseDep,
    sandboxes: SandboxesDep,
) -> Response:
    attendee = await _attendee_async(database, workshop, attendee_id)
    await sandboxes.stop(attendee_id)
    return _done(
        request, f"Stopped the sandbox of {attendee.name}; it starts again when they use it."
    )


@router.post("/instructor/attendees/{attendee_id}/hand/clear")
def clear_hand(
    attendee_id: int,
    request: Request,
    _: InstructorDep,
    workshop: WorkshopDep,
    session: SessionDep,
    events: EventsDep,
) -> Response:
    attendee = session.merge(_attendee(session, workshop, attendee_id))
    hands.change_hand(session, events, attendee, raised=False)
    return _done(request, f"Cleared the hand of {attendee.name}.")


@router.post("/instructor/broadcast")
async def broadcast(
    request: Request,
    _: InstructorDep,
    broadcasts: BroadcastsDep,
    events: EventsDep,
    message: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        sent = broadcasts.send(events, message)
    except EmptyBroadcast as empty:
        return _done(request, str(empty), kind="error", status=422)
    return _done(request, f"Sent to every attendee page: {sent.text}")


@router.post("/instructor/warm-pool")
async def set_warm_pool(
    request: Request,
    _: InstructorDep,
    workshop: WorkshopDep,
    database: DatabaseDep,
    sandboxes: SandboxesDep,
    size: Annotated[int, Form(ge=0, le=200)],
) -> Response:
    await database.run(lambda session: save_warm_pool_size(session, workshop.slug, size))
    sandboxes.set_warm_pool_size(size)
    return _done(
        request, f"The warm pool now keeps {size} sandbox(es) ready, also after a restart."
    )


@router.post("/instructor/lessons/{slug}/{change}")
def lock_lesson(
    slug: str,
    change: Literal["lock", "unlock"],
    request: Request,
    _: InstructorDep,
    workshop: WorkshopDep,
    session: SessionDep,
    events: EventsDep,
) -> Response:
    try:
        title = locks.change_lock(session, events, workshop, slug, locked=change == "lock")
    except locks.UnknownLesson as unknown:
        raise HTTPException(404, str(unknown)) from None
    return _done(request, f"“{title}” is {'locked' if change == 'lock' else 'open'}.")


@router.post("/instructor/end")
async def end(
    request: Request,
    _: InstructorDep,
    sandboxes: SandboxesDep,
    events: EventsDep,
    broadcasts: BroadcastsDep,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if confirm != "end":
        return _done(
            request,
            "Nothing ended: confirm with the End workshop button.",
            kind="error",
            status=422,
        )
    removed = await actions.end_workshop(sandboxes, events, broadcasts)
    return _done(request, f"The workshop has ended: {removed} sandbox(es) removed, progress kept.")


# -- live updates ------------------------------------------------------------------------------


@router.websocket("/ws/instructor")
async def live_updates(websocket: WebSocket, services: ServicesDep) -> None:
    if await admit_instructor(websocket, services):
        await services.dashboard_feed.serve(websocket)

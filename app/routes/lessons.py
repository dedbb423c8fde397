"""Lesson pages and the attendee's JSON view of the workshop and of themselves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import select

from app import attendees
from app.deps import AttendeeDep, SessionDep, WorkshopDep
from app.instructor import live, locks
from app.lessons.render import pygments_css, render_lesson
from app.models import Sandbox
from app.progress import task_statuses
from app.templating import render

router = APIRouter()


@router.get("/lessons", response_class=HTMLResponse)
async def lesson_list(
    request: Request, workshop: WorkshopDep, attendee: AttendeeDep, session: SessionDep
) -> HTMLResponse:
    statuses = task_statuses(session, workshop, attendee.id or 0)
    passed = {task_id for task_id, status in statuses.items() if status == "passed"}
    return render(request, "lessons.html", {"attendee": attendee, "passed": passed})


@router.get("/lessons/{slug}", response_class=HTMLResponse)
async def lesson_page(
    slug: str, request: Request, workshop: WorkshopDep, attendee: AttendeeDep, session: SessionDep
) -> HTMLResponse:
    lesson = workshop.lesson(slug)  # a slug never reaches the filesystem
    if lesson is None:
        raise HTTPException(404, "There is no lesson by that name. Pick one from the lesson list.")
    if locks.is_locked(session, workshop.slug, lesson.slug):
        return locks.locked_page(request, attendee, workshop, lesson.slug)
    attendees.touch(session, attendee, lesson=lesson.slug)
    live.announce_activity(request.app.state.events, attendee.id or 0, lesson.slug)
    index = workshop.lessons.index(lesson)
    context = {
        "attendee": attendee,
        "lesson": lesson,
        "segments": render_lesson(lesson),
        "statuses": task_statuses(session, workshop, attendee.id or 0),
        "previous": workshop.lessons[index - 1] if index > 0 else None,
        "next": workshop.lessons[index + 1] if index + 1 < len(workshop.lessons) else None,
    }
    return render(request, "lesson.html", context)


@router.get("/api/workshop")
async def api_workshop(workshop: WorkshopDep, attendee: AttendeeDep) -> dict[str, Any]:
    return {
        "slug": workshop.slug,
        "title": workshop.meta.title,
        "lessons": [
            {
                "slug": lesson.slug,
                "title": lesson.title,
                "minutes": lesson.minutes,
                "tasks": [{"id": task.id, "title": task.title} for task in lesson.tasks],
            }
            for lesson in workshop.lessons
        ],
    }


@router.get("/api/me")
async def api_me(
    workshop: WorkshopDep, attendee: AttendeeDep, session: SessionDep
) -> dict[str, Any]:
    sandbox = session.exec(select(Sandbox).where(Sandbox.attendee_id == attendee.id)).first()
    sandbox_view: dict[str, Any] = {"state": "queued"}
    if sandbox is not None:
        sandbox_view = {
            "state": sandbox.state,
            "name": sandbox.container_name,
            "message": sandbox.message,
        }
    return {
        "name": attendee.name,
        "workshop": workshop.slug,
        "current_lesson": attendee.current_lesson,
        "resume_url": f"/resume/{attendee.resume_key}",
        "sandbox": sandbox_view,
        "tasks": task_statuses(session, workshop, attendee.id or 0),
    }


@router.get("/assets/pygments.css")
async def highlight_css() -> Response:
    return Response(
        pygments_css(), media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )

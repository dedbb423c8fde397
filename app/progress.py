"""Per-attendee task status, as `/api/me`, the lesson pages and the dashboard show it."""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session, select

from app.lessons.schema import Workshop
from app.models import TaskProgress

TaskStatus = Literal["passed", "failed", "not_tried"]


def status_of(progress: TaskProgress | None) -> TaskStatus:
    if progress is None or progress.attempts == 0:
        return "not_tried"
    return "passed" if progress.first_passed_at is not None else "failed"


def task_statuses(session: Session, workshop: Workshop, attendee_id: int) -> dict[str, TaskStatus]:
    rows = session.exec(select(TaskProgress).where(TaskProgress.attendee_id == attendee_id)).all()
    by_task = {row.task_id: row for row in rows}
    return {task.id: status_of(by_task.get(task.id)) for task in workshop.all_tasks()}

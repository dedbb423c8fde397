"""The export: one row per attendee and task, as CSV for spreadsheets and JSON for scripts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from app.instructor.dashboard import Row, task_columns
from app.instructor.queries import parse_time
from app.lessons.schema import Workshop

FIELDS = ("name", "task_id", "status", "attempts", "first_passed_at", "solution_shown")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): quote it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Attendees in joining order, tasks in workshop order."""
    return [
        {
            "name": row.name,
            "task_id": cell.task_id,
            "status": cell.status,
            "attempts": cell.attempts,
            "first_passed_at": _iso(cell.passed_at),
            "solution_shown": cell.solution_shown,
        }
        for row in rows
        for cell in row.cells
    ]


def _iso(stored: str | None) -> str | None:
    moment = parse_time(stored)
    return moment.isoformat() if moment else None


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def as_csv(records: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for record in records:
        writer.writerow([_csv_cell(record[name]) for name in FIELDS])
    return buffer.getvalue()


def class_json(workshop: Workshop, rows: Sequence[Row]) -> dict[str, Any]:
    """`GET /api/class`: each attendee as `/api/me` shows them (`name`, `sandbox`, `tasks`)."""
    return {
        "workshop": workshop.slug,
        "title": workshop.meta.title,
        "tasks": [
            {"id": column.id, "title": column.title, "lesson": column.lesson_slug}
            for column in task_columns(workshop)
        ],
        "attendees": [_attendee_json(row) for row in rows],
    }


def _attendee_json(row: Row) -> dict[str, Any]:
    return {
        "id": row.attendee_id,
        "name": row.name,
        # No sandbox row reads "none", as in /api/me: nothing was asked for (joins ask at once).
        "sandbox": {"state": row.sandbox_state or "none"},
        "tasks": row.statuses(),
        "passed": row.passed,
        "current_lesson": row.current_lesson,
        "last_activity": row.last_activity.isoformat(),
        "hand_raised": row.hand_raised_at is not None,
    }

"""The dashboard's parts as HTML: the page includes these partials, and live updates send them.

One copy of the markup: ``templates/instructor/_row.html`` renders a grid row both inside the full
page and alone for the websocket, so a live update looks exactly like a reload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape
from sqlmodel import Session

from app.instructor.dashboard import (
    Cell,
    Dashboard,
    LiveDashboard,
    Row,
    TaskColumn,
    task_columns,
)
from app.templating import templates


def duration(seconds: float | None) -> str:
    """Short and readable in a grid cell: 45s, 7m, 1h05."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    return f"{whole // 3600}h{(whole % 3600) // 60:02d}"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    return "just now" if seconds < 10 else f"{duration(seconds)} ago"


def epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


def percent(share: float) -> str:
    return f"{round(share * 100)}%"


def cells_html(row: Row) -> Markup:
    """A row's task cells. Built here rather than in a template loop: a page has 6000 of them
    (200 attendees x 30 tasks) and the loop was the slowest part of rendering it."""
    return Markup("".join(map(_cell_html, row.cells)))


@lru_cache(maxsize=16384)
def _cell_html(cell: Cell) -> str:
    solution = " solution" if cell.solution_shown else ""
    task = escape(cell.task_id)
    if cell.status == "passed":
        return (
            f'<td class="cell passed{solution}" data-task="{task}" '
            f'title="{cell.attempts} attempt(s)">✓ {duration(cell.seconds_to_pass)}</td>'
        )
    if cell.status == "failed":
        stuck = " stuck" if cell.stuck else ""
        check = escape(cell.last_failed_check or "?")
        return (
            f'<td class="cell failed{stuck}{solution}" data-task="{task}" '
            f'title="Last failed: {check}">✗ {cell.attempts}</td>'
        )
    return f'<td class="cell{solution}" data-task="{task}"></td>'


# Globals, not filters: templates compile without them (tests/test_templates.py).
templates.env.globals.update(
    duration=duration, ago=ago, epoch=epoch, percent=percent, cells_html=cells_html
)


def _render(name: str, **context: Any) -> str:
    return templates.env.get_template(name).render(**context)


def row_html(row: Row, columns: list[TaskColumn]) -> str:
    return _render("instructor/_row.html", row=row, columns=columns, now=datetime.now(UTC))


def figures_html(dashboard: Dashboard) -> str:
    return _render("instructor/_figures.html", dashboard=dashboard)


def hands_html(dashboard: Dashboard) -> str:
    return _render("instructor/_hands.html", dashboard=dashboard, now=datetime.now(UTC))


def locks_html(dashboard: Dashboard) -> str:
    return _render("instructor/_locks.html", dashboard=dashboard)


def summary_html(dashboard: Dashboard) -> str:
    return _render("instructor/_summary.html", dashboard=dashboard)


def update_messages(
    session: Session, live: LiveDashboard, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What dashboards get after ``events`` (those that queued up while the last ones were
    rendered), a message each: the attendee's row (None: remove it) and the parts that depend
    on everyone (figures, hands, summary, locks). Each attendee's row and the shared parts are
    rendered once per batch, for all dashboards: with a class arriving, rendering them per event
    took a third of the portal's CPU."""
    if any(event.get("lagged") for event in events):
        live.reload(session)
        return [{"type": "resync"}]  # events were dropped: the page fetches the whole grid again
    rows: dict[int, str | None] = {}
    for someone in _attendees_of(events):
        row = live.refresh(session, someone)
        rows[someone] = row_html(row, task_columns(live.workshop)) if row else None
    dashboard = live.dashboard(session)
    shared = {
        "figures": figures_html(dashboard),
        "hands": hands_html(dashboard),
        "summary": summary_html(dashboard),
        "locks": locks_html(dashboard),
    }
    messages = []
    for event in events:
        message: dict[str, Any] = {"type": "update", "cause": event}
        attendee_id = event.get("attendee_id")
        if isinstance(attendee_id, int):
            message["attendee_id"], message["row"] = attendee_id, rows[attendee_id]
        messages.append({**message, **shared})
    return messages


def _attendees_of(events: list[dict[str, Any]]) -> list[int]:
    found = (event.get("attendee_id") for event in events)
    return list(dict.fromkeys(a for a in found if isinstance(a, int)))

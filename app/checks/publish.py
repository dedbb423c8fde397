"""What check progress looks like on the event hub, with the HTML the lesson page swaps in.

The HTML comes from the same partials the page renders (``_partials/check_result.html`` inside
``_partials/task_card.html``), so there is one copy of the markup; static/js/checks.js only puts
it in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.checks.runner import CheckResult
from app.events import INSTRUCTOR_TOPIC, EventHub, attendee_topic
from app.lessons.schema import Task
from app.progress import TaskStatus
from app.templating import templates


def check_item_html(task_id: str, result: CheckResult) -> str:
    template = templates.env.get_template("_partials/check_result.html")
    return template.render(task_id=task_id, result=result, index=result.index)


def task_card_html(
    task: Task,
    status: TaskStatus,
    results: Sequence[CheckResult],
    *,
    notice: str = "",
    watching: bool = False,
) -> str:
    template = templates.env.get_template("_partials/task_card.html")
    return template.render(
        task=task, status=status, results=results, notice=notice, watching=watching
    )


def publish_check(events: EventHub, attendee_id: int, task_id: str, result: CheckResult) -> None:
    event = {
        "type": "check",
        "task_id": task_id,
        "check_index": result.index,
        "name": result.name,
        "status": result.status,
        "message": result.message,
        "output": result.output,
        "duration_ms": result.duration_ms,
        "html": check_item_html(task_id, result),
    }
    events.publish(attendee_topic(attendee_id), event)


def publish_task(
    events: EventHub,
    attendee_id: int,
    summary: dict[str, Any],
    card_html: str,
) -> None:
    """The final result: the whole card to the attendee, the summary to the dashboards."""
    events.publish(attendee_topic(attendee_id), {"type": "task", **summary, "html": card_html})
    instructor_view = {key: value for key, value in summary.items() if key != "checks"}
    events.publish(
        INSTRUCTOR_TOPIC, {"type": "task", "attendee_id": attendee_id, **instructor_view}
    )

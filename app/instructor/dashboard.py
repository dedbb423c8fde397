"""The dashboard's model: attendees by tasks, with the figures that show where the class is stuck.

"Time to pass" is the time an attendee spent on a task: from their previous pass (or from
joining, for their first) to their first pass of this task. Attendees work through tasks in
order, so this is what a stuck task costs them; the median per task shows where the class slows.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple, cast

from sqlmodel import Session

from app.instructor import queries
from app.instructor.queries import AttendeeFacts, ProgressFacts, SandboxFacts, SetupFailure
from app.lessons.schema import Workshop
from app.models import TaskProgress
from app.progress import TaskStatus, status_of

# Failed this often without a pass: the cell and the row are flagged as stuck.
STUCK_ATTEMPTS = 3


@dataclass(frozen=True)
class TaskColumn:
    id: str
    title: str
    lesson_slug: str
    label: str  # "2.3": lesson number and task number, short enough for a grid header

    @cached_property
    def untried(self) -> Cell:
        """The cell of everyone who has not tried this task (immutable, so shared)."""
        return Cell(self.id)


@dataclass(frozen=True)
class LessonGroup:
    slug: str
    title: str
    tasks: int
    locked: bool


class Cell(NamedTuple):
    """One attendee on one task. A NamedTuple: 6000 of them are made per page, and fast."""

    task_id: str
    status: TaskStatus = "not_tried"
    attempts: int = 0
    seconds_to_pass: float | None = None
    solution_shown: bool = False
    last_failed_check: str | None = None
    updated_at: str | None = None  # ISO 8601 text, in time order
    passed_at: str | None = None  # as stored: ISO 8601 text, UTC

    @property
    def stuck(self) -> bool:
        return self.status == "failed" and self.attempts >= STUCK_ATTEMPTS


@dataclass(frozen=True)
class Row:
    attendee_id: int
    name: str
    joined_at: datetime
    last_activity: datetime
    current_lesson: str | None
    current_lesson_title: str | None
    sandbox_state: str | None  # None: no sandbox asked for yet
    hand_raised_at: datetime | None
    cells: tuple[Cell, ...]
    current_task: TaskColumn | None = None
    # "setup of <lesson> failed (exit 1)" when a setup failed in the current sandbox
    setup_failed: str | None = None
    setup_output: str = ""

    @cached_property
    def passed(self) -> int:
        return sum(cell.status == "passed" for cell in self.cells)

    @cached_property
    def stuck(self) -> bool:
        return any(cell.stuck for cell in self.cells)

    @property
    def last_failed_check(self) -> str | None:
        """The newest failing check on a task not passed yet: what the raised hand is about."""
        failing = [c for c in self.cells if c.status == "failed" and c.last_failed_check]
        if not failing:
            return None
        return max(failing, key=lambda c: c.updated_at or "").last_failed_check

    def statuses(self) -> dict[str, TaskStatus]:
        return {cell.task_id: cell.status for cell in self.cells}


@dataclass(frozen=True)
class TaskFigure:
    task_id: str
    attendees: int
    passed: int
    failing: int
    median_seconds: float | None
    most_stuck: bool = False

    @property
    def share_done(self) -> float:
        return self.passed / self.attendees if self.attendees else 0.0


@dataclass(frozen=True)
class Dashboard:
    columns: list[TaskColumn]
    lessons: list[LessonGroup]
    rows: list[Row]
    figures: list[TaskFigure]
    locked: set[str] = field(default_factory=set)

    @property
    def hands(self) -> list[Row]:
        """Raised hands, who waited longest first."""
        raised = [row for row in self.rows if row.hand_raised_at is not None]
        return sorted(raised, key=lambda row: row.hand_raised_at or row.joined_at)


def task_columns(workshop: Workshop) -> list[TaskColumn]:
    return [
        TaskColumn(task.id, task.title, lesson.slug, f"{lesson.number}.{index}")
        for lesson in workshop.lessons
        for index, task in enumerate(lesson.tasks, start=1)
    ]


def _seconds_to_pass(joined: float, passes: Iterable[tuple[float, str]]) -> dict[str, float]:
    """Per task: seconds from the attendee's previous pass (or joining) to this pass.
    Moments are seconds since 1970."""
    seconds: dict[str, float] = {}
    previous = joined
    for moment, task_id in sorted(passes):
        seconds[task_id] = max(0.0, moment - previous)
        previous = moment
    return seconds


def _cells(
    columns: Sequence[TaskColumn], joined_at: datetime, progress: Sequence[ProgressFacts]
) -> tuple[Cell, ...]:
    by_task = {row.task_id: row for row in progress}
    passes = [(row.passed_epoch, row.task_id) for row in progress if row.passed_epoch is not None]
    to_pass = _seconds_to_pass(joined_at.timestamp(), passes)
    cells = []
    for column in columns:
        row = by_task.get(column.id)
        if row is None or (row.attempts == 0 and not row.solution_shown):
            cells.append(column.untried)
            continue
        cells.append(
            Cell(
                column.id,
                status_of(cast(TaskProgress, row)),  # it reads attempts and first_passed_at only
                row.attempts,
                to_pass.get(column.id),
                row.solution_shown,
                row.last_failed_check,
                row.updated_at,
                row.first_passed_at,
            )
        )
    return tuple(cells)


def _current_task(
    columns: Sequence[TaskColumn], cells: Sequence[Cell], lesson: str | None
) -> TaskColumn | None:
    """The first task not passed yet in the attendee's current lesson, else in the workshop."""
    open_tasks = [
        column for column, cell in zip(columns, cells, strict=True) if cell.status != "passed"
    ]
    in_lesson = [column for column in open_tasks if column.lesson_slug == lesson]
    candidates = in_lesson or open_tasks
    return candidates[0] if candidates else None


def _setup_failure(
    lesson_titles: dict[str, str],
    sandbox: SandboxFacts | None,
    failures: Sequence[tuple[str, SetupFailure]],
) -> tuple[str | None, str]:
    """What the row says of a setup that failed in the attendee's current sandbox."""
    current = [found for name, found in failures if sandbox and name == sandbox.container_name]
    if not current:
        return None, ""
    failure = current[0]
    what = lesson_titles.get(failure.lesson, "the workshop")
    why = "timed out" if failure.exit_code < 0 else f"exit {failure.exit_code}"
    return f"setup of {what} failed ({why})", failure.output


def build_row(
    lesson_titles: dict[str, str],
    columns: Sequence[TaskColumn],
    attendee: AttendeeFacts,
    progress: Sequence[ProgressFacts],
    sandbox: SandboxFacts | None,
    failures: Sequence[tuple[str, SetupFailure]] = (),
) -> Row:
    cells = _cells(columns, attendee.joined_at, progress)
    setup_failed, setup_output = _setup_failure(lesson_titles, sandbox, failures)
    last_activity = attendee.last_seen_at
    if sandbox is not None:
        last_activity = max(last_activity, sandbox.last_activity_at)
    return Row(
        attendee_id=attendee.id,
        name=attendee.name,
        joined_at=attendee.joined_at,
        last_activity=last_activity,
        current_lesson=attendee.current_lesson,
        current_lesson_title=lesson_titles.get(attendee.current_lesson or ""),
        sandbox_state=sandbox.state if sandbox else None,
        hand_raised_at=attendee.hand_raised_at,
        cells=cells,
        current_task=_current_task(columns, cells, attendee.current_lesson),
        setup_failed=setup_failed,
        setup_output=setup_output,
    )


def _figures(columns: Sequence[TaskColumn], rows: Sequence[Row]) -> list[TaskFigure]:
    figures = []
    for index, column in enumerate(columns):
        cells = [row.cells[index] for row in rows]
        times = [c.seconds_to_pass for c in cells if c.seconds_to_pass is not None]
        figures.append(
            TaskFigure(
                task_id=column.id,
                attendees=len(rows),
                passed=sum(c.status == "passed" for c in cells),
                failing=sum(c.status == "failed" for c in cells),
                median_seconds=statistics.median(times) if times else None,
            )
        )
    worst = max((figure.failing for figure in figures), default=0)
    if worst == 0:
        return figures
    return [
        TaskFigure(
            f.task_id, f.attendees, f.passed, f.failing, f.median_seconds, f.failing == worst
        )
        for f in figures
    ]


def load_rows(
    session: Session, workshop: Workshop, attendee_ids: Sequence[int] | None = None
) -> list[Row]:
    """Rows of every attendee of the workshop (or of ``attendee_ids``), in joining order."""
    columns = task_columns(workshop)
    progress = queries.progress(session, workshop.slug, attendee_ids)
    sandboxes = queries.sandboxes(session, workshop.slug, attendee_ids)
    failures = queries.failed_setups(session, workshop.slug, attendee_ids)
    titles = {lesson.slug: lesson.title for lesson in workshop.lessons}
    return [
        build_row(
            titles, columns, a, progress.get(a.id, []), sandboxes.get(a.id), failures.get(a.id, [])
        )
        for a in queries.attendees(session, workshop.slug, attendee_ids)
    ]


def make_dashboard(workshop: Workshop, rows: list[Row], locked: set[str]) -> Dashboard:
    columns = task_columns(workshop)
    lessons = [
        LessonGroup(lesson.slug, lesson.title, len(lesson.tasks), lesson.slug in locked)
        for lesson in workshop.lessons
    ]
    return Dashboard(columns, lessons, rows, _figures(columns, rows), locked)


def load_dashboard(session: Session, workshop: Workshop) -> Dashboard:
    locked = queries.locked_lessons(session, workshop.slug)
    return make_dashboard(workshop, load_rows(session, workshop), locked)


class LiveDashboard:
    """The dashboard as the live feed keeps it: loaded in full once, then one attendee's row
    per event, so an update costs one attendee's queries plus figures over rows in memory."""

    def __init__(self, workshop: Workshop) -> None:
        self.workshop = workshop
        self._rows: dict[int, Row] | None = None

    def reload(self, session: Session) -> None:
        self._rows = {row.attendee_id: row for row in load_rows(session, self.workshop)}

    def refresh(self, session: Session, attendee_id: int) -> Row | None:
        """Reread one attendee; None when they are gone (their row goes too)."""
        if self._rows is None:
            self.reload(session)
        assert self._rows is not None
        rows = load_rows(session, self.workshop, [attendee_id])
        if rows:
            self._rows[attendee_id] = rows[0]
        else:
            self._rows.pop(attendee_id, None)
        return rows[0] if rows else None

    def dashboard(self, session: Session) -> Dashboard:
        if self._rows is None:
            self.reload(session)
        assert self._rows is not None
        rows = [self._rows[key] for key in sorted(self._rows)]  # ids grow in joining order
        return make_dashboard(
            self.workshop, rows, queries.locked_lessons(session, self.workshop.slug)
        )

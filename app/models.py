"""SQLModel tables: attendees, their sandboxes, their attempts at tasks and per-task progress."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel, UniqueConstraint


def utcnow() -> datetime:
    return datetime.now(UTC)


class Attendee(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("workshop", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    workshop: str = Field(index=True, max_length=64)
    name: str = Field(max_length=40)
    resume_key: str = Field(unique=True, max_length=64)
    joined_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    current_lesson: str | None = Field(default=None, max_length=64)
    hand_raised_at: datetime | None = None


class Sandbox(SQLModel, table=True):
    """One attendee's sandbox; also unassigned warm-pool sandboxes (attendee_id is NULL)."""

    id: int | None = Field(default=None, primary_key=True)
    workshop: str = Field(index=True, max_length=64)
    attendee_id: int | None = Field(
        default=None, foreign_key="attendee.id", index=True, ondelete="SET NULL"
    )
    container_name: str = Field(unique=True, max_length=128)
    state: str = Field(default="queued", max_length=16)
    message: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    ready_at: datetime | None = None
    last_activity_at: datetime = Field(default_factory=utcnow)


class Attempt(SQLModel, table=True):
    """One run of a task's checks; ``results`` is the JSON list of per-check results."""

    id: int | None = Field(default=None, primary_key=True)
    attendee_id: int = Field(foreign_key="attendee.id", index=True, ondelete="CASCADE")
    task_id: str = Field(index=True, max_length=64)
    passed: bool
    started_at: datetime = Field(default_factory=utcnow)
    duration_ms: int = 0
    results: str = "[]"


class TaskProgress(SQLModel, table=True):
    """What the dashboard shows per attendee and task, kept up to date with every attempt."""

    attendee_id: int = Field(foreign_key="attendee.id", primary_key=True, ondelete="CASCADE")
    task_id: str = Field(primary_key=True, max_length=64)
    attempts: int = 0
    first_passed_at: datetime | None = None
    last_failed_check: str | None = None
    solution_shown: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class LessonSetup(SQLModel, table=True):
    """A lesson's setup script ran in this attendee's sandbox (again when the sandbox is new)."""

    attendee_id: int = Field(foreign_key="attendee.id", primary_key=True, ondelete="CASCADE")
    lesson: str = Field(primary_key=True, max_length=64)
    sandbox: str = Field(max_length=128)
    exit_code: int = 0
    output: str = ""
    ran_at: datetime = Field(default_factory=utcnow)


class LessonLock(SQLModel, table=True):
    """A lesson the instructor has closed for now, to pace the class; attendees get a friendly 403."""

    workshop: str = Field(primary_key=True, max_length=64)
    lesson: str = Field(primary_key=True, max_length=64)
    locked_at: datetime = Field(default_factory=utcnow)


class PortalSetting(SQLModel, table=True):
    """A setting the instructor changed on the dashboard (e.g. the warm pool's size), kept across
    restarts; it wins over the environment's value until changed again."""

    workshop: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=500)
    changed_at: datetime = Field(default_factory=utcnow)

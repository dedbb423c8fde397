"""The shape of a workshop: what workshop.yaml, lesson front matter and task blocks may say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, field_validator

SLUG_PATTERN = r"^[a-z0-9-]+$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]


def is_slug(value: str) -> bool:
    return re.fullmatch(SLUG_PATTERN, value) is not None


class _Strict(BaseModel):
    # A typo in a key ("mesage:") must be an error, not a silently ignored field.
    model_config = ConfigDict(extra="forbid")


class _Sourced(_Strict):
    """A block of a lesson file; remembers the 1-based line it starts on (0 = unknown)."""

    _line: int = PrivateAttr(default=0)

    @property
    def line(self) -> int:
        return self._line

    def at_line(self, line: int) -> None:
        self._line = line


class Check(_Strict):
    name: Text
    run: str
    message: Text
    timeout: int = Field(default=15, ge=1, le=300)
    expect: str | None = None

    @field_validator("run")
    @classmethod
    def _run_is_a_command(cls, run: str) -> str:
        if not run.strip():
            raise ValueError("run must be a shell command, it is empty")
        return run

    @field_validator("expect")
    @classmethod
    def _expect_is_a_regex(cls, expect: str | None) -> str | None:
        if expect is not None:
            try:
                re.compile(expect)
            except re.error as error:
                raise ValueError(f"expect is not a valid Python regex ({error})") from None
        return expect


class Task(_Sourced):
    id: Slug
    title: Text
    instructions: Text
    hints: list[Text] = []
    solution: str | None = None
    checks: list[Check] = Field(min_length=1)


class Question(_Sourced):
    question: Text
    answer: Text


class ImageRef(_Strict):
    name: Text
    # The recipe is a folder name under app/sandboxes/docker/images/recipes/, so keep it path-safe.
    recipe: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class SandboxResources(_Strict):
    memory: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?[bkmgBKMG]?$")] | None = None
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0)


class WorkshopMeta(_Strict):
    title: Text
    description: Text
    join_code: str | None = None
    images: list[ImageRef] = []
    sandbox: SandboxResources = SandboxResources()


class LessonFrontMatter(_Strict):
    title: Text
    minutes: int = Field(ge=1)
    setup: str | None = None


class Lesson(_Strict):
    slug: Slug
    number: int = Field(ge=0, le=99)
    title: Text
    minutes: int = Field(ge=1)
    setup: str | None = None
    path: Path
    body: str
    tasks: list[Task] = []
    questions: list[Question] = []


class Workshop(_Strict):
    slug: Slug
    path: Path
    meta: WorkshopMeta
    lessons: list[Lesson]

    def lesson(self, slug: str) -> Lesson | None:
        """The lesson served at /lessons/<slug>; None for anything else, including odd input."""
        if not is_slug(slug):
            return None
        return next((lesson for lesson in self.lessons if lesson.slug == slug), None)

    def neighbours(self, slug: str) -> tuple[Lesson | None, Lesson | None]:
        """The lessons before and after <slug>, for previous/next links."""
        slugs = [lesson.slug for lesson in self.lessons]
        if slug not in slugs:
            return None, None
        index = slugs.index(slug)
        before = self.lessons[index - 1] if index > 0 else None
        after = self.lessons[index + 1] if index + 1 < len(self.lessons) else None
        return before, after

    def task(self, task_id: str) -> tuple[Lesson, Task] | None:
        if not is_slug(task_id):
            return None
        for lesson in self.lessons:
            for task in lesson.tasks:
                if task.id == task_id:
                    return lesson, task
        return None

    def all_tasks(self) -> list[Task]:
        """Every task of the workshop, in lesson order."""
        return [task for lesson in self.lessons for task in lesson.tasks]

"""The shape of a workshop: what workshop.yaml, lesson front matter and task blocks may say."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, field_validator

SLUG_PATTERN = r"^[a-z0-9-]+$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]
# Who runs a check or a setup script inside the sandbox: the attendee, or the sandbox's own root
# (Killercoda runs verify and setup scripts as root; issue 15). Never anyone on the host.
SandboxUser = Literal["learner", "root"]
ASSETS_DIR = "assets"  # the only folder of a workshop the portal serves to the page


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
    user: SandboxUser = "learner"

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
    # None: no recipe builds it, so the workshop registry cannot carry it offline (online, a
    # pull-through registry fetches it); listed so that authors and `images ls` see it is used.
    recipe: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")] | None = None


class SandboxResources(_Strict):
    memory: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?[bkmgBKMG]?$")] | None = None
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0)


class SetupFile(_Strict):
    """A file of the workshop's ``assets/`` folder, copied into each sandbox at ``target``."""

    source: Text  # relative to the workshop folder, inside assets/
    target: Text  # an absolute path in the sandbox
    mode: (
        Annotated[str, StringConstraints(pattern=r"^([0-7]{3,4}|[ugoa]*[-+=][rwxXst]+)$")] | None
    ) = None  # a chmod mode: "0755", "+x"

    @field_validator("source")
    @classmethod
    def _source_in_assets(cls, source: str) -> str:
        parts = PurePosixPath(source).parts
        if PurePosixPath(source).is_absolute() or ".." in parts or parts[:1] != (ASSETS_DIR,):
            raise ValueError(f"source must be a path inside the workshop's {ASSETS_DIR}/ folder")
        return source

    @field_validator("target")
    @classmethod
    def _target_is_absolute(cls, target: str) -> str:
        if not target.startswith("/") or target.endswith("/"):
            raise ValueError(
                "target must be an absolute file path in the sandbox, e.g. /root/app.py"
            )
        return target


class WorkshopSetup(_Strict):
    """Runs once per sandbox before any lesson's setup: files first, then ``run``."""

    files: list[SetupFile] = []
    run: str | None = None
    user: SandboxUser = "learner"
    timeout: int = Field(default=120, ge=1, le=900)


class WorkshopMeta(_Strict):
    title: Text
    description: Text
    join_code: str | None = None
    images: list[ImageRef] = []
    sandbox: SandboxResources = SandboxResources()
    setup: WorkshopSetup | None = None


class LessonFrontMatter(_Strict):
    title: Text
    minutes: int = Field(ge=1)
    setup: str | None = None
    setup_user: SandboxUser = "learner"


class Lesson(_Strict):
    slug: Slug
    number: int = Field(ge=0, le=99)
    title: Text
    minutes: int = Field(ge=1)
    setup: str | None = None
    setup_user: SandboxUser = "learner"
    # The workshop's setup (workshop.yaml), which must have run before this lesson's.
    workshop_setup: WorkshopSetup | None = None
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

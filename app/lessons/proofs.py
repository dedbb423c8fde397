"""How each task of a workshop is done, typed as an attendee types it: ``proofs.yaml`` beside the
lessons. The task proofs (tests/checks/test_task_proofs.py) and the class rehearsal
(`labdeck bench class`) both read it, so the steps that prove a task are the steps a class types.
"""

from __future__ import annotations

from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints

from app.lessons.schema import SLUG_PATTERN, Workshop

PROOFS_FILE = "proofs.yaml"
Text = Annotated[str, StringConstraints(min_length=1)]
TaskId = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


class Proof(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    do: Text  # what an attendee types to solve the task; also works after the tasks before it
    near_miss: Text  # almost right
    near_miss_fails: Text  # the name of a check the near miss must fail


class WorkshopProofs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: dict[TaskId, Proof]


class MissingProofs(Exception):
    """The workshop has no proofs file, or it lacks a task."""


def load_proofs(workshop: Workshop) -> dict[str, Proof]:
    """Task id to its proof, as ``proofs.yaml`` in the workshop's folder says."""
    path = workshop.path / PROOFS_FILE
    if not path.is_file():
        raise MissingProofs(
            f"{path} is missing: write how each task is done there (see content/README.md)."
        )
    return WorkshopProofs.model_validate(yaml.safe_load(path.read_text())).tasks


def steps_in_lesson_order(workshop: Workshop) -> list[tuple[str, str, Proof]]:
    """(lesson slug, task id, proof) for every task, as a class meets them."""
    proofs = load_proofs(workshop)
    missing = [task.id for task in workshop.all_tasks() if task.id not in proofs]
    if missing:
        raise MissingProofs(f"{workshop.path / PROOFS_FILE} has no steps for: {', '.join(missing)}")
    return [
        (lesson.slug, task.id, proofs[task.id])
        for lesson in workshop.lessons
        for task in lesson.tasks
    ]

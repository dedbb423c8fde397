"""A copy of content/docker-basics that a test may edit as an author would, and the edits."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.support.settings import REPO

DOCKER_BASICS = REPO / "content" / "docker-basics"
FIRST_LESSON = "01-first-container.md"
FIRST_LESSON_TEXT = "Docker does two things."
REMOVABLE_TASK = "busybox-greeter"  # the second task of the first lesson


def copy_docker_basics(content_dir: Path) -> Path:
    """docker-basics under ``content_dir`` (made if missing); returns the workshop's folder."""
    folder = content_dir / DOCKER_BASICS.name
    shutil.copytree(DOCKER_BASICS, folder)
    return folder


def edit(file: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new``. Give ``new`` another length than
    ``old``: a reload sees a file's size and time, and a coarse clock may keep the time."""
    text = file.read_text()
    assert old in text, f"{old!r} is not in {file.name}"
    assert len(old) != len(new), "an edit of the same length may go unseen on a coarse clock"
    file.write_text(text.replace(old, new, 1))


def remove_task(file: Path, task_id: str) -> None:
    """Take the ````task block with ``task_id`` out of a lesson file."""
    text = file.read_text()
    block = re.compile(rf"````task\nid: {re.escape(task_id)}\n.*?\n````\n", re.DOTALL)
    changed, count = block.subn("", text)
    assert count == 1, f"no task {task_id} in {file.name}"
    file.write_text(changed)


def break_front_matter(file: Path, key: str) -> int:
    """Add an unknown ``key`` to the lesson's front matter; returns the line it is on."""
    lines = file.read_text().splitlines(keepends=True)
    assert lines[0] == "---\n"
    lines.insert(1, f"{key}: 1\n")
    file.write_text("".join(lines))
    return 2

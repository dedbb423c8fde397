"""Reloading the served workshop when its files change (app/lessons/reload.py), on a copy of
content/docker-basics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

import pytest

from app.lessons.loader import load_workshop
from app.lessons.reload import SHOWN_PROBLEMS, LiveWorkshop, fingerprint
from app.lessons.schema import Workshop
from tests.support.content import (
    FIRST_LESSON,
    FIRST_LESSON_TEXT,
    REMOVABLE_TASK,
    break_front_matter,
    copy_docker_basics,
    edit,
    remove_task,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_docker_basics(tmp_path / "content")


@pytest.fixture
def live(folder: Path) -> LiveWorkshop:
    return LiveWorkshop(load_workshop(folder))


def served(live: LiveWorkshop) -> Workshop:
    workshop = live.current()
    assert workshop is not None
    return workshop


def test_nothing_is_loaded_while_nothing_changed(live: LiveWorkshop, folder: Path) -> None:
    first = served(live)
    assert not live.check()
    (folder / FIRST_LESSON).touch()  # a save without a change: loaded, and found the same
    assert not live.check()
    assert served(live) is first and live.notice() is None


def test_an_edited_lesson_is_served_from_the_next_check(live: LiveWorkshop, folder: Path) -> None:
    edit(folder / FIRST_LESSON, FIRST_LESSON_TEXT, "Docker does two things, and does them well.")
    assert live.check()
    assert "does them well" in served(live).lessons[0].body


def test_broken_content_keeps_the_last_good_workshop_and_says_where(
    live: LiveWorkshop, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = served(live)
    line = break_front_matter(folder / FIRST_LESSON, "<b>colour</b>")
    with caplog.at_level(logging.WARNING, logger="labdeck.content"):
        assert live.check()  # what the pages show changed: now there are problems
    assert served(live) is first
    [problem] = live.problems
    assert (problem.file, problem.line) == (folder / FIRST_LESSON, line)
    assert "<b>colour</b>: unknown key" in problem.message
    notice = live.notice()
    assert notice is not None and notice.more == 0
    assert notice.problems[0].where == f"docker-basics/{FIRST_LESSON}:{line}"  # no host path
    assert f"{folder / FIRST_LESSON}:{line}" in caplog.text
    assert "still serving the last version" in caplog.text
    assert not live.check()  # the same broken files are not read again


def test_fixed_content_is_served_and_its_problems_go(live: LiveWorkshop, folder: Path) -> None:
    lesson = folder / FIRST_LESSON
    good = lesson.read_text()
    break_front_matter(lesson, "colour")
    live.check()
    lesson.write_text(good.replace(FIRST_LESSON_TEXT, "Docker does two things (at least)."))
    assert live.check()
    assert live.problems == () and live.notice() is None
    assert "(at least)" in served(live).lessons[0].body


def test_reverting_a_broken_edit_takes_the_problems_away(live: LiveWorkshop, folder: Path) -> None:
    lesson = folder / FIRST_LESSON
    good = lesson.read_text()
    first = served(live)
    break_front_matter(lesson, "colour")
    live.check()
    lesson.write_text(good)
    assert live.check()  # the workshop is the same one, but the notice must go
    assert served(live) is first and live.notice() is None


def test_a_removed_task_is_gone_from_the_reloaded_workshop(
    live: LiveWorkshop, folder: Path
) -> None:
    remove_task(folder / FIRST_LESSON, REMOVABLE_TASK)
    assert live.check()
    assert served(live).task(REMOVABLE_TASK) is None
    assert served(live).task("run-hello-world") is not None


def test_a_vanished_folder_is_a_problem_not_a_crash(live: LiveWorkshop, folder: Path) -> None:
    first = served(live)
    shutil.rmtree(folder)
    assert live.check()
    assert served(live) is first
    notice = live.notice()
    assert notice is not None and notice.problems[0].where == "docker-basics"
    assert "workshop folder not found" in notice.problems[0].message


def test_a_long_list_of_problems_is_cut_and_counted(live: LiveWorkshop, folder: Path) -> None:
    for number in range(SHOWN_PROBLEMS + 5):
        (folder / f"Notes_{number}.md").write_text("not a lesson\n")
    live.check()
    notice = live.notice()
    assert notice is not None
    assert len(notice.problems) == SHOWN_PROBLEMS and notice.more == 5
    assert notice.problems[0].where.startswith("docker-basics/Notes_")  # no line: the file


def test_the_fingerprint_covers_lessons_yaml_and_assets_only(folder: Path) -> None:
    before = fingerprint(folder)
    assert {Path(path).name for path in before} >= {"workshop.yaml", FIRST_LESSON, "proofs.yaml"}
    (folder / "notes.txt").write_text("scratch\n")
    (folder / f".{FIRST_LESSON}.swp").write_text("editor state\n")
    assert fingerprint(folder) == before
    (folder / "assets" / "img").mkdir(parents=True)
    (folder / "assets" / "img" / "flow.png").write_bytes(b"\x89PNG")
    assert str(folder / "assets" / "img" / "flow.png") in fingerprint(folder)


@pytest.mark.anyio
async def test_keep_fresh_serves_an_edit_and_tells_the_listeners(
    live: LiveWorkshop, folder: Path
) -> None:
    told: list[Workshop] = []
    live.on_change(told.append)
    polling = asyncio.create_task(live.keep_fresh(interval=0.05))
    try:
        edit(folder / FIRST_LESSON, FIRST_LESSON_TEXT, "Docker does a few things.")
        async with asyncio.timeout(5):
            while not told:
                await asyncio.sleep(0.02)
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
    assert told == [served(live)] and "a few things" in told[0].lessons[0].body

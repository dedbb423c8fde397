import shutil
from pathlib import Path

import pytest

from app.lessons.loader import ContentError, ContentProblem, find_workshops, load_workshop

FIXTURES = Path(__file__).parent / "fixtures"
VALID = FIXTURES / "valid"


def test_loads_lessons_in_order() -> None:
    workshop = load_workshop(VALID)
    assert workshop.slug == "valid"
    assert [(lesson.number, lesson.slug) for lesson in workshop.lessons] == [
        (1, "first-steps"),
        (2, "next-steps"),
    ]


def test_reads_the_workshop_yaml() -> None:
    meta = load_workshop(VALID).meta
    assert meta.title == "Containers, a tiny workshop"
    assert [image.recipe for image in meta.images] == ["hello-world", "busybox"]
    assert (meta.sandbox.memory, meta.sandbox.cpus, meta.sandbox.pids) == ("512m", 0.5, 256)


def test_reads_front_matter_and_body() -> None:
    lesson = load_workshop(VALID).lessons[0]
    assert (lesson.title, lesson.minutes, lesson.setup) == ("First steps", 10, "mkdir -p ~/hello\n")
    assert lesson.body.startswith("# First steps\n")
    assert lesson.path == VALID / "01-first-steps.md"


def test_reads_tasks_and_questions_with_their_line() -> None:
    lesson = load_workshop(VALID).lessons[0]
    [task] = lesson.tasks
    assert task.id == "run-greeter"
    assert task.line == 46
    assert [check.timeout for check in task.checks] == [20, 15]
    assert task.checks[1].expect == "hello"
    assert "```bash" in (task.solution or "")
    [question] = lesson.questions
    assert question.question == "What does `docker ps` list?"


def test_all_problems_are_raised_together() -> None:
    with pytest.raises(ContentError) as raised:
        load_workshop(FIXTURES / "broken" / "task-schema")
    problems = raised.value.problems
    assert [problem.line for problem in problems] == [12, 12, 13]
    assert str(problems[0]).endswith(
        "task-schema/01-a.md:12: task 'incomplete': checks.0.run: field required"
    )
    assert "checks.0.run: field required" in str(raised.value)


def test_problem_without_a_line() -> None:
    assert str(ContentProblem(Path("content/x"), None, "no lessons")) == "content/x: no lessons"


def test_missing_folder() -> None:
    with pytest.raises(ContentError, match="workshop folder not found"):
        load_workshop(FIXTURES / "no-such-workshop")


def test_odd_folder_name(tmp_path: Path) -> None:
    shutil.copytree(VALID, tmp_path / "Not_A_Slug")
    with pytest.raises(ContentError, match="folder name must be"):
        load_workshop(tmp_path / "Not_A_Slug")


def test_find_workshops(tmp_path: Path) -> None:
    for name in ("b-workshop", "a-workshop", ".git", "_drafts"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.md").write_text("not a workshop")
    assert find_workshops(tmp_path) == [tmp_path / "a-workshop", tmp_path / "b-workshop"]


def test_find_workshops_without_a_content_folder(tmp_path: Path) -> None:
    assert find_workshops(tmp_path / "missing") == []

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.lessons.schema import Check, Lesson, Task, Workshop, WorkshopMeta


def a_check(**overrides: object) -> dict[str, object]:
    return {"name": "Done", "run": "true", "message": "Not done."} | overrides


def task_data(task_id: str = "do-it") -> dict[str, object]:
    return {"id": task_id, "title": "Do it", "instructions": "Do it.", "checks": [a_check()]}


def a_task(task_id: str) -> Task:
    return Task.model_validate(task_data(task_id))


def a_lesson(slug: str, number: int, *tasks: Task) -> Lesson:
    return Lesson(
        slug=slug,
        number=number,
        title=slug.title(),
        minutes=5,
        path=Path(f"{number:02d}-{slug}.md"),
        body="",
        tasks=list(tasks),
    )


@pytest.fixture
def workshop() -> Workshop:
    return Workshop(
        slug="demo",
        path=Path("demo"),
        meta=WorkshopMeta(title="Demo", description="A demo."),
        lessons=[
            a_lesson("intro", 1, a_task("first"), a_task("second")),
            a_lesson("images", 2, a_task("third")),
            a_lesson("end", 3),
        ],
    )


def test_check_defaults() -> None:
    check = Check.model_validate(a_check())
    assert (check.timeout, check.expect) == (15, None)


@pytest.mark.parametrize(
    "overrides",
    [
        {"timeout": 0},
        {"timeout": 301},
        {"expect": "hello("},
        {"run": "  \n"},
        {"message": ""},
        {"mesage": "typo"},
    ],
)
def test_check_refuses(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Check.model_validate(a_check(**overrides))


def test_check_accepts_a_regex() -> None:
    assert Check.model_validate(a_check(expect=r"Hello from \w+")).expect == r"Hello from \w+"


@pytest.mark.parametrize(
    "overrides", [{"id": "Not A Slug"}, {"checks": []}, {"hint": ["typo"]}, {"title": ""}]
)
def test_task_refuses(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Task.model_validate(task_data() | overrides)


def test_workshop_meta_defaults() -> None:
    meta = WorkshopMeta(title="T", description="D")
    assert (meta.join_code, meta.images, meta.sandbox.memory) == (None, [], None)


def test_lesson_by_slug(workshop: Workshop) -> None:
    lesson = workshop.lesson("images")
    assert lesson is not None and lesson.number == 2


@pytest.mark.parametrize("slug", ["nope", "../../etc/passwd", "Intro", "", "intro/"])
def test_lesson_by_unknown_or_odd_slug(workshop: Workshop, slug: str) -> None:
    assert workshop.lesson(slug) is None


def test_task_with_its_lesson(workshop: Workshop) -> None:
    found = workshop.task("third")
    assert found is not None
    lesson, task = found
    assert (lesson.slug, task.id) == ("images", "third")


@pytest.mark.parametrize("task_id", ["nope", "../x", "FIRST"])
def test_unknown_task(workshop: Workshop, task_id: str) -> None:
    assert workshop.task(task_id) is None


def test_all_tasks_in_lesson_order(workshop: Workshop) -> None:
    assert [task.id for task in workshop.all_tasks()] == ["first", "second", "third"]


def test_neighbours(workshop: Workshop) -> None:
    before, after = workshop.neighbours("images")
    assert (before and before.slug, after and after.slug) == ("intro", "end")
    assert workshop.neighbours("intro")[0] is None
    assert workshop.neighbours("end")[1] is None
    assert workshop.neighbours("nope") == (None, None)

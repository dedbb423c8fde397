from pathlib import Path

import pytest
from pydantic import ValidationError

from app.lessons.schema import (
    Check,
    Lesson,
    LessonFrontMatter,
    SetupFile,
    Task,
    Workshop,
    WorkshopMeta,
)


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


def test_a_check_or_a_setup_may_run_as_the_sandbox_s_root_and_no_one_else() -> None:
    assert Check.model_validate(a_check()).user == "learner"
    assert Check.model_validate(a_check(user="root")).user == "root"
    with pytest.raises(ValidationError):
        Check.model_validate(a_check(user="admin"))
    with pytest.raises(ValidationError):
        LessonFrontMatter.model_validate({"title": "T", "minutes": 1, "setup_user": "nobody"})


@pytest.mark.parametrize(
    "file",
    [
        {"source": "app.py", "target": "/root/app.py"},  # not in assets/
        {"source": "assets/../workshop.yaml", "target": "/root/x"},
        {"source": "/etc/passwd", "target": "/root/x"},
        {"source": "assets/app.py", "target": "root/app.py"},  # not absolute
        {"source": "assets/app.py", "target": "/root/"},  # a folder
        {"source": "assets/app.py", "target": "/root/app.py", "mode": "rwx; rm -rf /"},
    ],
)
def test_setup_files_come_from_assets_and_go_to_an_absolute_path(file: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SetupFile.model_validate(file)


def test_a_workshop_setup_and_images_without_a_recipe() -> None:
    meta = WorkshopMeta.model_validate(
        {
            "title": "T",
            "description": "D",
            "images": [{"name": "nginx:alpine"}],
            "setup": {"files": [{"source": "assets/a.sh", "target": "/a.sh", "mode": "+x"}]},
        }
    )
    assert meta.images[0].recipe is None
    assert meta.setup is not None and meta.setup.user == "learner" and meta.setup.timeout == 120

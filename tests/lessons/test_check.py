import shutil
from pathlib import Path

import pytest

from app.lessons.loader import find_workshops
from app.lessons.validate import check_workshop

FIXTURES = Path(__file__).parent / "fixtures"
RECIPES = FIXTURES / "recipes"
BROKEN = FIXTURES / "broken"
REAL_CONTENT = Path(__file__).resolve().parents[2] / "content"

# kind -> every (file, line, part of the message) check_workshop must report, in order
EXPECTED: dict[str, list[tuple[str, int | None, str]]] = {
    "missing-meta": [("workshop.yaml", None, "workshop.yaml is missing")],
    "bad-meta": [
        ("workshop.yaml", 1, "description: field required"),
        ("workshop.yaml", 5, "images.0.tag: unknown key"),
    ],
    "bad-file-name": [("2-b.md", None, "lesson files are named NN-slug.md")],
    "duplicate-number": [("01-b.md", None, "lesson number 01 is already used by 01-a.md")],
    "duplicate-slug": [("02-a.md", None, "lesson slug 'a' is already used by 01-a.md")],
    "duplicate-task-id": [("02-b.md", 7, "task id 'fine' is already used at 01-a.md:7")],
    "unknown-image": [("workshop.yaml", 7, "image 'alpine:latest': no recipe folder 'alpine'")],
    "broken-lesson-link": [
        ("01-a.md", 7, "broken link '/lessons/nope'"),
        ("01-a.md", 8, "broken link 'nope'"),
        ("01-a.md", 9, "broken link '05-nope.md'"),
    ],
    "broken-anchor": [
        ("01-a.md", 9, "'#nowhere': 01-a.md has no heading with the anchor #nowhere"),
        ("01-a.md", 9, "'02-b.md#nowhere': 02-b.md has no heading with the anchor #nowhere"),
    ],
    "broken-file-link": [("01-a.md", 5, "broken link 'assets/missing.png'")],
    "broken-image": [
        ("01-a.md", 7, "broken image 'assets/gone.png': no such file in the workshop's assets/"),
        ("01-a.md", 9, "broken image 'pictures/elsewhere.png': images are served from the"),
        ("01-a.md", 11, "broken image 'assets/missing.svg'"),
    ],
    "missing-setup-file": [("workshop.yaml", 8, "setup file 'assets/gone.sh' not found")],
    "bad-regex": [("01-a.md", 15, "checks.0.expect: expect is not a valid Python regex")],
    "empty-run": [("01-a.md", 13, "checks.0.run: run must be a shell command, it is empty")],
    "task-schema": [
        ("01-a.md", 12, "task 'incomplete': checks.0.run: field required"),
        ("01-a.md", 12, "task 'incomplete': checks.0.message: field required"),
        ("01-a.md", 13, "task 'incomplete': checks.0.mesage: unknown key"),
    ],
    "question-schema": [("01-a.md", 8, "question: answer: field required")],
    "bad-yaml": [("01-a.md", 9, "task 'bad-yaml': invalid YAML: mapping values")],
    "missing-front-matter": [("01-a.md", 1, "front matter missing")],
    "bad-front-matter": [("01-a.md", 2, "front matter: minutes: field required")],
    "nested-task": [("01-a.md", 6, "task 'nested': a task block must not be inside")],
    "nested-fence": [("01-a.md", 7, "a code fence inside this task block closes the block")],
    "unknown-admonition": [("01-a.md", 7, "'::: danger' is not an admonition")],
    "no-lessons": [("no-lessons", None, "no lessons")],
}


def test_valid_workshop_has_no_problems() -> None:
    assert check_workshop(FIXTURES / "valid", RECIPES) == []


def test_every_broken_fixture_is_covered() -> None:
    assert sorted(path.name for path in BROKEN.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_problem_is_found_with_file_and_line(kind: str) -> None:
    problems = check_workshop(BROKEN / kind, RECIPES)
    found = [(problem.file.name, problem.line, problem.message) for problem in problems]
    assert len(found) == len(EXPECTED[kind]), found
    for (file, line, message), (want_file, want_line, want_part) in zip(
        found, EXPECTED[kind], strict=True
    ):
        assert (file, line) == (want_file, want_line)
        assert want_part in message


def test_problems_of_every_kind_are_collected_at_once(tmp_path: Path) -> None:
    workshop = tmp_path / "mixed"
    shutil.copytree(BROKEN / "unknown-image", workshop)
    shutil.copy(BROKEN / "bad-regex" / "01-a.md", workshop / "02-regex.md")
    shutil.copy(BROKEN / "bad-yaml" / "01-a.md", workshop / "03-yaml.md")
    shutil.copy(BROKEN / "broken-file-link" / "01-a.md", workshop / "04-link.md")
    (workshop / "Notes.md").write_text("# not a lesson\n")
    problems = sorted(str(problem.file.name) for problem in check_workshop(workshop, RECIPES))
    assert problems == ["02-regex.md", "03-yaml.md", "04-link.md", "Notes.md", "workshop.yaml"]


def test_images_are_not_checked_without_a_recipes_folder(tmp_path: Path) -> None:
    assert check_workshop(BROKEN / "unknown-image", tmp_path / "no-recipes") == []


def test_real_content_has_a_workshop() -> None:
    assert find_workshops(REAL_CONTENT), f"no workshop under {REAL_CONTENT}"


@pytest.mark.parametrize("workshop", find_workshops(REAL_CONTENT), ids=lambda path: path.name)
def test_real_workshop_has_no_problems(workshop: Path) -> None:
    assert [str(problem) for problem in check_workshop(workshop)] == []

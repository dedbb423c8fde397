"""Read a workshop folder (workshop.yaml + NN-slug.md lessons) into the schema models."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it.token import Token

from app.lessons.markdown import parser
from app.lessons.problems import ContentError, ContentProblem
from app.lessons.sanitize import SEGMENT_FENCES
from app.lessons.schema import (
    Lesson,
    LessonFrontMatter,
    Question,
    Task,
    Workshop,
    WorkshopMeta,
    is_slug,
)
from app.lessons.yamlblock import YamlBlock, validate_block

__all__ = [
    "ContentError",
    "ContentProblem",
    "find_workshops",
    "is_workshop",
    "load_workshop",
    "read_workshop",
]

LESSON_FILE_NAME = re.compile(r"^(?P<number>\d\d)-(?P<slug>[a-z0-9-]+)\.md$")
META_FILE = "workshop.yaml"


@dataclass
class LoadResult:
    """Everything that could be read from a workshop folder, and what was wrong with the rest."""

    path: Path
    meta: WorkshopMeta | None = None
    lessons: list[Lesson] = field(default_factory=list)
    problems: list[ContentProblem] = field(default_factory=list)


def load_workshop(path: Path) -> Workshop:
    """The workshop in `path`; raises ContentError listing every problem if it has any."""
    result = read_workshop(path)
    if result.problems or result.meta is None:
        raise ContentError(result.problems)
    return Workshop(slug=path.name, path=path, meta=result.meta, lessons=result.lessons)


def find_workshops(content_dir: Path) -> list[Path]:
    """Every workshop folder under `content_dir` (hidden and `_` folders are not workshops)."""
    if not content_dir.is_dir():
        return []
    return sorted(
        child
        for child in content_dir.iterdir()
        if child.is_dir() and not child.name.startswith((".", "_"))
    )


def is_workshop(path: Path) -> bool:
    """A workshop folder, as opposed to a folder of workshops: it has workshop.yaml or lessons."""
    if (path / META_FILE).is_file():
        return True
    return path.is_dir() and any(LESSON_FILE_NAME.match(file.name) for file in path.glob("*.md"))


def read_workshop(path: Path) -> LoadResult:
    """Read what can be read, collecting all problems instead of stopping at the first."""
    result = LoadResult(path=path)
    if not path.is_dir():
        result.problems.append(ContentProblem(path, None, "workshop folder not found"))
        return result
    if not is_slug(path.name):
        result.problems.append(
            ContentProblem(path, None, "folder name must be lowercase letters, digits and dashes")
        )
    result.meta = _read_meta(path / META_FILE, result.problems)
    lesson_files = _lesson_files(path, result.problems)
    for number, slug, file in lesson_files:
        lesson = _read_lesson(file, number, slug, result.problems)
        if lesson is not None:
            # Checks and setups get a lesson, so it carries what must run before it.
            lesson.workshop_setup = result.meta.setup if result.meta else None
            result.lessons.append(lesson)
    result.problems.extend(_duplicate_task_ids(result.lessons))
    return result


def _task_fences(tokens: list[Token]) -> list[Token]:
    """The ```task and ```question fences of a parsed lesson, in order."""
    return [
        token for token in tokens if token.type == "fence" and token.info.strip() in SEGMENT_FENCES
    ]


def _read_meta(file: Path, problems: list[ContentProblem]) -> WorkshopMeta | None:
    if not file.is_file():
        problems.append(ContentProblem(file, None, f"{META_FILE} is missing (title, description)"))
        return None
    text = _read_text(file, problems)
    if text is None:
        return None
    return validate_block(WorkshopMeta, YamlBlock(text, file, 1, META_FILE), problems)


def _lesson_files(path: Path, problems: list[ContentProblem]) -> list[tuple[int, str, Path]]:
    """(number, slug, file) of every lesson file in order; bad names and duplicates are problems."""
    found: list[tuple[int, str, Path]] = []
    by_number: dict[int, Path] = {}
    by_slug: dict[str, Path] = {}
    for file in sorted(path.glob("*.md")):
        match = LESSON_FILE_NAME.match(file.name)
        if match is None:
            if file.name != "README.md":
                problems.append(ContentProblem(file, None, _BAD_NAME))
            continue
        number, slug = int(match["number"]), match["slug"]
        if number in by_number:
            problems.append(_duplicate(file, f"lesson number {match['number']}", by_number[number]))
        elif slug in by_slug:
            problems.append(_duplicate(file, f"lesson slug '{slug}'", by_slug[slug]))
        else:
            found.append((number, slug, file))
        by_number.setdefault(number, file)
        by_slug.setdefault(slug, file)
    if not found:
        problems.append(ContentProblem(path, None, "no lessons: add files named like 01-intro.md"))
    return found


_BAD_NAME = (
    "lesson files are named NN-slug.md (two digits, a dash, lowercase letters, digits and "
    "dashes), e.g. 03-volumes.md; README.md is the only other Markdown file allowed"
)


def _duplicate(file: Path, what: str, first: Path) -> ContentProblem:
    return ContentProblem(file, None, f"{what} is already used by {first.name}; it must be unique")


def _read_text(file: Path, problems: list[ContentProblem]) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(ContentProblem(file, None, f"cannot read the file: {error}"))
        return None


def _read_lesson(
    file: Path, number: int, slug: str, problems: list[ContentProblem]
) -> Lesson | None:
    text = _read_text(file, problems)
    if text is None:
        return None
    tokens = parser().parse(text)
    front = tokens[0] if tokens and tokens[0].type == "front_matter" else None
    tasks, questions = _read_blocks(file, tokens, problems)
    if front is None or front.map is None:
        problems.append(ContentProblem(file, 1, _NO_FRONT_MATTER))
        return None
    # The plugin drops the newline that ends the last line; a `|` block would lose it.
    block = YamlBlock(front.content + "\n", file, 2, "front matter")
    meta = validate_block(LessonFrontMatter, block, problems)
    if meta is None:
        return None
    body = "".join(text.splitlines(keepends=True)[front.map[1] :])
    return Lesson(
        slug=slug,
        number=number,
        title=meta.title,
        minutes=meta.minutes,
        setup=meta.setup,
        setup_user=meta.setup_user,
        path=file,
        body=body,
        tasks=tasks,
        questions=questions,
    )


_NO_FRONT_MATTER = (
    "front matter missing: start the file with a `---` line, `title:` and `minutes:`, then `---`"
)


def _read_blocks(
    file: Path, tokens: list[Token], problems: list[ContentProblem]
) -> tuple[list[Task], list[Question]]:
    tasks: list[Task] = []
    questions: list[Question] = []
    for fence in _task_fences(tokens):
        kind = fence.info.strip()
        line = (fence.map[0] if fence.map else 0) + 1
        label = _block_label(kind, fence.content)
        block = YamlBlock(fence.content, file, line + 1, label)
        if fence.level != 0:
            problems.append(
                block.problem(
                    f"a {kind} block must not be inside an admonition, "
                    "list or quote; move it to the top level",
                    -1,
                )
            )
            continue
        if _has_nested_fence(fence):
            problems.append(block.problem(_nested_fence_message(kind), -1))
        model = validate_block(Task if kind == "task" else Question, block, problems)
        if isinstance(model, Task):
            model.at_line(line)
            tasks.append(model)
        elif isinstance(model, Question):
            model.at_line(line)
            questions.append(model)
    return tasks, questions


def _block_label(kind: str, content: str) -> str:
    """`task 'run-hello'` when the id can be read, so the author knows which block it is."""
    match = re.search(r"^id:\s*['\"]?([^'\"\s#]+)", content, re.MULTILINE)
    return f"{kind} '{match[1]}'" if kind == "task" and match else kind


def _has_nested_fence(fence: Token) -> bool:
    marker = fence.markup
    return any(line.lstrip().startswith(marker) for line in fence.content.splitlines())


def _nested_fence_message(kind: str) -> str:
    return (
        f"a code fence inside this {kind} block closes the block early; "
        f"open the block with a longer fence (````{kind}) and close it with ````"
    )


def _duplicate_task_ids(lessons: list[Lesson]) -> list[ContentProblem]:
    problems: list[ContentProblem] = []
    first_seen: dict[str, tuple[Path, int]] = {}
    for lesson in lessons:
        for task in lesson.tasks:
            if task.id in first_seen:
                file, line = first_seen[task.id]
                problems.append(
                    ContentProblem(
                        lesson.path,
                        task.line,
                        f"task id '{task.id}' is already used at {file.name}:{line}; "
                        "task ids must be unique across the workshop",
                    )
                )
            else:
                first_seen[task.id] = (lesson.path, task.line)
    return problems

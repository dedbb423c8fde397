"""Turn lessons into page segments: HTML between the task cards and recap questions.

Task and question blocks are not rendered here: the page renders each through one template
partial (the same partial htmx fragments return), so a lesson becomes a list of segments.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from markdown_it.token import Token
from markupsafe import Markup

from app.lessons.markdown import parser, pygments_css
from app.lessons.sanitize import SEGMENT_FENCES
from app.lessons.schema import Lesson, Question, Task

__all__ = [
    "HtmlSegment",
    "QuestionSegment",
    "Segment",
    "TaskSegment",
    "heading_ids",
    "pygments_css",
    "render_lesson",
    "render_markdown",
]


@dataclass(frozen=True)
class HtmlSegment:
    html: Markup
    kind: Literal["html"] = "html"


@dataclass(frozen=True)
class TaskSegment:
    task: Task
    kind: Literal["task"] = "task"


@dataclass(frozen=True)
class QuestionSegment:
    question: Question
    kind: Literal["question"] = "question"


Segment = HtmlSegment | TaskSegment | QuestionSegment

_CACHE_SIZE = 256
_cache: dict[tuple[Path, str], list[Segment]] = {}
_cache_lock = threading.Lock()  # sync routes render from FastAPI's thread pool


def render_lesson(lesson: Lesson) -> list[Segment]:
    """The lesson body as segments; cached per file and text. The text, not the file's
    modification time: a file edited since it was loaded (an author's save, before the reload
    or one that failed) must not file the served text's render under the new time."""
    key = (lesson.path, lesson.body)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    segments = _segments(lesson)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        return _cache.setdefault(key, segments)


@lru_cache(maxsize=1024)
def render_markdown(text: str) -> Markup:
    """Markdown from task instructions, hints, solutions and answers, rendered and sanitized."""
    return Markup(parser().render(text))


def heading_ids(markdown_text: str) -> set[str]:
    """The anchors (`#id`) a lesson's headings get."""
    return {
        str(token.attrGet("id"))
        for token in parser().parse(markdown_text)
        if token.type == "heading_open" and token.attrGet("id")
    }


def _segments(lesson: Lesson) -> list[Segment]:
    md = parser()
    env: dict[str, object] = {}
    tokens = md.parse(lesson.body, env)
    tasks = iter(lesson.tasks)
    questions = iter(lesson.questions)
    segments: list[Segment] = []
    pending: list[Token] = []

    def flush() -> None:
        if pending:
            segments.append(HtmlSegment(Markup(md.renderer.render(pending, md.options, env))))
            pending.clear()

    for token in tokens:
        block = _block_kind(token)
        if block is None:
            pending.append(token)
            continue
        flush()
        if block == "task" and (task := next(tasks, None)) is not None:
            segments.append(TaskSegment(task))
        elif block == "question" and (question := next(questions, None)) is not None:
            segments.append(QuestionSegment(question))
    flush()
    return segments


def _block_kind(token: Token) -> str | None:
    """'task' or 'question' for a top-level block the page renders as a card."""
    if token.type != "fence" or token.level != 0:
        return None
    info = token.info.strip()
    return info if info in SEGMENT_FENCES else None

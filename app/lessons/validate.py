"""Find every problem in a workshop before attendees do: `labdeck content check`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from markdown_it.token import Token

from app.lessons.assets import asset_file, asset_path
from app.lessons.loader import LESSON_FILE_NAME, META_FILE, read_workshop
from app.lessons.markdown import ADMONITION_KINDS, PREVIEW_LINK, parser
from app.lessons.problems import ContentProblem
from app.lessons.render import heading_ids
from app.lessons.schema import ASSETS_DIR, Lesson, WorkshopMeta, is_slug
from app.lessons.yamlblock import yaml_line

DEFAULT_RECIPES_DIR = Path(__file__).resolve().parents[1] / "sandboxes/docker/images/recipes"
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def check_workshop(path: Path, recipes_dir: Path | None = None) -> list[ContentProblem]:
    """Every problem in the workshop at `path`; an empty list means it is ready to serve.

    Images are checked against the recipe folders in `recipes_dir` (default
    app/sandboxes/docker/images/recipes/), and only when that folder exists.
    """
    result = read_workshop(path)
    problems = list(result.problems)
    if result.meta is not None:
        problems += _unknown_images(
            path / META_FILE, result.meta, recipes_dir or DEFAULT_RECIPES_DIR
        )
        problems += _missing_setup_files(path, result.meta)
    links = _LinkChecker(path, result.lessons)
    for lesson in result.lessons:
        problems += links.problems_in(lesson)
        problems += _unknown_admonitions(lesson)
    return problems


def _unknown_images(meta_file: Path, meta: WorkshopMeta, recipes_dir: Path) -> list[ContentProblem]:
    if not recipes_dir.is_dir():
        return []
    text = meta_file.read_text(encoding="utf-8")
    return [
        ContentProblem(
            meta_file,
            1 + yaml_line(text, ("images", index, "recipe")),
            f"image '{image.name}': no recipe folder '{image.recipe}' in {recipes_dir}",
        )
        for index, image in enumerate(meta.images)
        if image.recipe is not None and not (recipes_dir / image.recipe).is_dir()
    ]


def _missing_setup_files(workshop_dir: Path, meta: WorkshopMeta) -> list[ContentProblem]:
    """Every file the workshop's setup copies into sandboxes must be in its assets/ folder."""
    if meta.setup is None:
        return []
    meta_file = workshop_dir / META_FILE
    text = meta_file.read_text(encoding="utf-8")
    return [
        ContentProblem(
            meta_file,
            1 + yaml_line(text, ("setup", "files", index, "source")),
            f"setup file '{file.source}' not found in the workshop folder",
        )
        for index, file in enumerate(meta.setup.files)
        if asset_file(workshop_dir, file.source.removeprefix(ASSETS_DIR + "/")) is None
    ]


@dataclass(frozen=True)
class _Link:
    href: str
    line: int
    image: bool = False


class _LinkChecker:
    """Links between lessons, to headings and to files of the workshop must lead somewhere."""

    def __init__(self, workshop_dir: Path, lessons: list[Lesson]) -> None:
        self.workshop_dir = workshop_dir
        self.loaded = {lesson.path.name: lesson for lesson in lessons}
        # Every well-named lesson file counts as a target, even one that failed to load,
        # so one broken lesson does not make every link to it look broken too.
        self.file_of_slug = {
            match["slug"]: file.name
            for file in sorted(workshop_dir.glob("*.md"))
            if (match := LESSON_FILE_NAME.match(file.name))
        }
        self._anchors: dict[str, set[str]] = {}

    def problems_in(self, lesson: Lesson) -> list[ContentProblem]:
        return [
            ContentProblem(
                lesson.path,
                link.line,
                f"broken {'image' if link.image else 'link'} '{link.href}': {reason}",
            )
            for link in _links_of(lesson)
            if (reason := self._broken(link, lesson)) is not None
        ]

    def _broken(self, link: _Link, lesson: Lesson) -> str | None:
        """Why the link leads nowhere, or None when it is fine (or not ours to judge)."""
        href = link.href
        if assets := asset_path(unquote(href)):
            return self._missing_asset(assets)
        if link.image:
            return self._not_an_asset(href)
        if href.startswith("preview:"):
            found = PREVIEW_LINK.match(href)
            if found is None or int(found["port"]) > 65535:
                return "a preview link is preview:PORT (1-65535), then an optional path"
            return None
        if not href or href.startswith("//") or _URL_SCHEME.match(href):
            return None
        path, _, anchor = href.partition("#")
        target = self._target_file(path, lesson)
        if target is None:
            return None  # another page of the app, or an existing file
        if not target:
            return "no such lesson or file in this workshop"
        target_lesson = self.loaded.get(target)
        if anchor and target_lesson and unquote(anchor) not in self._anchors_of(target_lesson):
            return f"{target} has no heading with the anchor #{unquote(anchor)}"
        return None

    def _target_file(self, path: str, lesson: Lesson) -> str | None:
        """The lesson file `path` points to; "" if it points to nothing, None if not a lesson."""
        if not path:
            return lesson.path.name
        if path.startswith("/lessons/"):
            return self.file_of_slug.get(path.removeprefix("/lessons/").rstrip("/"), "")
        if path.startswith("/"):
            return None
        if LESSON_FILE_NAME.match(path):
            return path if path in self.file_of_slug.values() else ""
        if is_slug(path):
            return self.file_of_slug.get(path, "")
        return ""

    def _missing_asset(self, path: str) -> str | None:
        relative = path.removeprefix(ASSETS_DIR + "/")
        if asset_file(self.workshop_dir, relative) is None:
            return f"no such file in the workshop's {ASSETS_DIR}/ folder"
        return None

    def _not_an_asset(self, src: str) -> str | None:
        """An image outside assets/: another site's is fine; one of the workshop is not served."""
        if not src or src.startswith(("//", "/")) or _URL_SCHEME.match(src):
            return None
        return (
            f"images are served from the workshop's {ASSETS_DIR}/ folder only; "
            f"move it there and write {ASSETS_DIR}/..."
        )

    def _anchors_of(self, lesson: Lesson) -> set[str]:
        if lesson.slug not in self._anchors:
            self._anchors[lesson.slug] = heading_ids(lesson.body)
        return self._anchors[lesson.slug]


def _links_of(lesson: Lesson) -> Iterator[_Link]:
    """Links in the lesson file (at their line) and in its tasks and questions (at the block)."""
    text = lesson.path.read_text(encoding="utf-8")
    yield from _links_in(parser().parse(text), line_offset=1)
    for task in lesson.tasks:
        for markdown in [task.instructions, task.solution or "", *task.hints]:
            yield from _links_in(parser().parse(markdown), fixed_line=task.line)
    for question in lesson.questions:
        for markdown in (question.question, question.answer):
            yield from _links_in(parser().parse(markdown), fixed_line=question.line)


def _links_in(
    tokens: list[Token], line_offset: int = 0, fixed_line: int | None = None
) -> Iterator[_Link]:
    for token in tokens:
        first_line = (token.map[0] if token.map else 0) + line_offset
        if token.type == "html_block":
            yield from _html_images(token.content, fixed_line or first_line)
        if token.type != "inline" or not token.children:
            continue
        line_breaks = 0
        for child in token.children:
            line = fixed_line or first_line + line_breaks
            if child.type in ("softbreak", "hardbreak"):
                line_breaks += 1
            elif child.type in ("link_open", "image"):
                source = child.attrGet("href" if child.type == "link_open" else "src") or ""
                href = str(child.meta.get("source_href", source))
                yield _Link(href, line, image=child.type == "image")
            elif child.type == "html_inline":
                yield from _html_images(child.content, line)


class _ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [value or "" for name, value in attrs if name == "src"]


def _html_images(html: str, line: int) -> Iterator[_Link]:
    """The `<img src>` of raw HTML (Killercoda scenarios use it for sized images)."""
    found = _ImageSources()
    found.feed(html)
    for src in found.sources:
        yield _Link(src, line, image=True)


def _unknown_admonitions(lesson: Lesson) -> list[ContentProblem]:
    """`::: danger` is not an admonition; it would show up as plain text."""
    tokens = parser().parse(lesson.path.read_text(encoding="utf-8"))
    kinds = ", ".join(f"::: {kind}" for kind in ADMONITION_KINDS)
    return [
        ContentProblem(
            lesson.path,
            (token.map[0] + 1) if token.map else None,
            f"'{token.content.splitlines()[0]}' is not an admonition; use {kinds}",
        )
        for token in tokens
        if token.type == "inline" and token.content.startswith(":::")
    ]

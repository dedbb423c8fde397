"""Import a Killercoda (or Katacoda) scenario folder as a LabDeck workshop.

index.json's intro, steps and finish become lessons 01-intro.md, 02-<step>.md, ... NN-finish.md;
background/foreground scripts become the lesson's `setup`; a step's verify script becomes one task
with one check that runs the script's body. Files in assets/ are copied to the workshop's
assets/ (LabDeck does not copy them into sandboxes: use `setup` for that).

Killercoda's markers become ours:

* a fence closed by ```{{exec}} -> ```bash run, {{exec interrupt}} -> ```bash run interrupt,
  {{copy}} -> a plain fence (Copy button only);
* inline `cmd`{{exec}}: alone on its line it becomes a runnable block; inside a sentence it
  becomes inline code (a button in the middle of a sentence would break the paragraph).

Killercoda runs scripts as root; LabDeck runs setup and checks as `learner` (who may use sudo).
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.lessons.killercoda_markdown import convert_markers, fence_for, yaml_text


class KillercodaImportError(Exception):
    """The scenario cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class _Page:
    """One part of the scenario (intro, a step or the finish) as read from index.json."""

    title: str
    details: dict[str, Any]
    minutes: int


def import_killercoda(src_dir: Path, dest_dir: Path) -> Path:
    """Write the scenario in `src_dir` as a new workshop folder `dest_dir`; returns `dest_dir`."""
    index = _read_index(src_dir)
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise KillercodaImportError(
            f"{dest_dir} already exists and is not empty; pick a new folder"
        )
    details = index.get("details") or {}
    pages = _pages(details)
    dest_dir.mkdir(parents=True, exist_ok=True)
    title = str(index.get("title") or src_dir.name)
    meta = {"title": title, "description": str(index.get("description") or title), "images": []}
    (dest_dir / "workshop.yaml").write_text(yaml_text(meta), encoding="utf-8")
    used_slugs: set[str] = set()
    for number, (page, fixed_slug) in enumerate(pages, start=1):
        slug = _unique(fixed_slug or slugify(page.title) or f"step-{number}", used_slugs)
        lesson = _lesson_text(src_dir, page, slug)
        (dest_dir / f"{number:02d}-{slug}.md").write_text(lesson, encoding="utf-8")
    _copy_assets(src_dir, dest_dir)
    return dest_dir


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


def _read_index(src_dir: Path) -> dict[str, Any]:
    index_file = src_dir / "index.json"
    if not index_file.is_file():
        raise KillercodaImportError(f"{index_file} not found; is {src_dir} a Killercoda scenario?")
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise KillercodaImportError(f"{index_file} is not valid JSON: {error}") from None
    if not isinstance(index, dict):
        raise KillercodaImportError(f"{index_file} must hold a JSON object")
    return index


def _pages(details: dict[str, Any]) -> list[tuple[_Page, str | None]]:
    """Intro, steps and finish in order, each with its fixed slug (None: from the title)."""
    pages: list[tuple[_Page, str | None]] = []
    if details.get("intro"):
        pages.append((_Page("Introduction", details["intro"], 5), "intro"))
    for number, step in enumerate(details.get("steps") or [], start=1):
        pages.append((_Page(str(step.get("title") or f"Step {number}"), step, 10), None))
    if details.get("finish"):
        pages.append((_Page("Finish", details["finish"], 5), "finish"))
    if len(pages) > 99:
        raise KillercodaImportError("a workshop holds at most 99 lessons; split the scenario")
    return pages


def _unique(slug: str, used: set[str]) -> str:
    candidate, counter = slug, 2
    while candidate in used:
        candidate, counter = f"{slug}-{counter}", counter + 1
    used.add(candidate)
    return candidate


def _read_script(src_dir: Path, name: object) -> str | None:
    """A file named in index.json, or None when it is not there (Killercoda tolerates that)."""
    if not isinstance(name, str) or not name:
        return None
    file = (src_dir / name).resolve()
    if not file.is_relative_to(src_dir.resolve()) or not file.is_file():
        return None
    return file.read_text(encoding="utf-8")


def _script_body(script: str) -> str:
    """The script without its #! line: LabDeck runs it with bash -lc anyway."""
    lines = script.strip().splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def _setup(src_dir: Path, page: _Page) -> str | None:
    scripts = []
    for role in ("background", "foreground"):
        script = _read_script(src_dir, page.details.get(role))
        if script and script.strip():
            heading = f"# Killercoda {role} script (ran as root there)"
            scripts.append(f"{heading}\n{_script_body(script)}")
    return "\n".join(scripts) or None


def _lesson_text(src_dir: Path, page: _Page, slug: str) -> str:
    front: dict[str, Any] = {"title": page.title, "minutes": page.minutes}
    if setup := _setup(src_dir, page):
        front["setup"] = setup
    body = convert_markers(_read_script(src_dir, page.details.get("text")) or "")
    parts = [f"---\n{yaml_text(front)}---\n", body.strip() + "\n"]
    verify = _read_script(src_dir, page.details.get("verify"))
    if verify and _script_body(verify).strip():
        parts.append(_task_block(slug, page.title, verify))
    return "\n".join(parts)


def _task_block(slug: str, title: str, verify: str) -> str:
    task = {
        "id": slug,
        "title": title,
        "instructions": "Do what this step asks, then press **Check**.",
        "checks": [
            {
                "name": f"{title}: done",
                # The checker runs `bash -lc <run>`, so the script body runs as it is.
                "run": _script_body(verify),
                "message": "Not done yet: re-read this step, run its commands, then check again.",
            }
        ],
    }
    content = yaml_text(task)
    fence = fence_for(content)
    return f"{fence}task\n{content}{fence}\n"


def _copy_assets(src_dir: Path, dest_dir: Path) -> None:
    assets = src_dir / "assets"
    if assets.is_dir():
        shutil.copytree(assets, dest_dir / "assets", dirs_exist_ok=True)

"""Import a Killercoda (or Katacoda) scenario folder as a LabDeck workshop (issue 15).

index.json's intro, steps and finish become lessons 01-intro.md, 02-<step>.md, ... NN-finish.md,
their Markdown rewritten by killercoda_markdown.py. Killercoda runs its scripts as root, so:

* the intro's background and foreground scripts, and the ``host01`` assets copied to their
  targets, become the workshop's setup (workshop.yaml), run as the sandbox's root before any
  lesson, as Killercoda runs them at the scenario's start;
* a step's background and foreground scripts become its lesson's ``setup``, as root;
* a step's verify script becomes one task, titled and explained from the step, whose check runs
  the script as root, and whose solution is what the step's exec markers run (after those of
  the steps before, for `content verify` on a fresh sandbox).

The images the scenario pulls are listed under ``images:`` (with their recipe when the workshop
registry can carry them offline). Everything not carried over goes into the report, one line
each. The destination is checked before anything is written, and the workshop is written to a
hidden folder beside it that is renamed into place at the end: a failed import leaves nothing.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from app.lessons.killercoda_assets import setup_files
from app.lessons.killercoda_images import images_used
from app.lessons.killercoda_markdown import Command, ConvertedPage, convert_page, yaml_text
from app.lessons.killercoda_report import ImportReport, report_settings
from app.lessons.killercoda_tasks import ROOT, script_body, task_block, warn_about_root
from app.lessons.schema import ASSETS_DIR, is_slug

WORKSHOP_SETUP_TIMEOUT = 300  # Killercoda's background scripts install things: give them time
# Foreground scripts `clear` Killercoda's terminal; a setup has none (no TERM: clear fails).
CLEAR_SHIM = "clear() { :; }  # no terminal to clear here\n"
_TEXT_SUFFIXES = {"", ".sh", ".yaml", ".yml", ".json", ".txt", ".conf", ".py", ".go", ".js"}


class KillercodaImportError(Exception):
    """The scenario cannot be imported; the message says why and what to do."""


@dataclass(frozen=True)
class ImportResult:
    path: Path
    report: ImportReport


@dataclass(frozen=True)
class _Page:
    """One part of the scenario (intro, a step or the finish) as read from index.json."""

    title: str
    details: dict[str, Any]
    minutes: int
    where: str  # "intro", "step 2 'Build it'": how the report names it
    slug: str | None = None  # fixed (intro, finish), else from the title


@dataclass
class _Workshop:
    """The workshop being built, in memory until it is written."""

    files: dict[str, bytes] = field(default_factory=dict)  # path in the workshop -> content
    texts: list[str] = field(default_factory=list)  # where images are looked for
    commands_before: list[tuple[str, list[Command]]] = field(default_factory=list)


def import_killercoda(
    src_dir: Path, dest_dir: Path, image_recipes: Mapping[str, str] | None = None
) -> ImportResult:
    """Write the scenario in ``src_dir`` as a new workshop folder ``dest_dir``. ``image_recipes``:
    the images the workshop registry carries offline (name -> recipe), as the backend says."""
    _check_destination(dest_dir)
    index = _read_index(src_dir)
    report = ImportReport()
    report_settings(index, report)
    built = _Workshop()
    details = index.get("details") or {}
    lessons = _lessons(src_dir, details, built, report)
    setup = _workshop_setup(src_dir, details, built, report)
    meta: dict[str, Any] = {
        "title": str(index.get("title") or src_dir.name),
        "description": str(index.get("description") or index.get("title") or src_dir.name),
        "images": _images(built, image_recipes or {}, report),
    }
    if setup:
        meta["setup"] = setup
    built.files["workshop.yaml"] = yaml_text(meta).encode()
    for name, text in lessons.items():
        built.files[name] = text.encode()
    _write_atomically(dest_dir, built.files)
    return ImportResult(dest_dir, report)


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


def _check_destination(dest_dir: Path) -> None:
    """Refuse a destination before anything is written."""
    if not is_slug(dest_dir.name):
        suggestion = slugify(dest_dir.name) or "my-lab"
        raise KillercodaImportError(
            f"'{dest_dir.name}' cannot be a workshop folder: its name is the workshop's address, "
            f"so use lowercase letters, digits and dashes, e.g. {dest_dir.parent / suggestion}"
        )
    if dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir())):
        raise KillercodaImportError(
            f"{dest_dir} already exists and is not empty; pick a new folder"
        )


def _read_index(src_dir: Path) -> dict[str, Any]:
    index_file = src_dir / "index.json"
    if not index_file.is_file():
        raise KillercodaImportError(f"{index_file} not found; is {src_dir} a Killercoda scenario?")
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise KillercodaImportError(f"{index_file} is not valid JSON: {error}") from None
    if not isinstance(index, dict) or not isinstance(index.get("details") or {}, dict):
        raise KillercodaImportError(f"{index_file} must hold a JSON object with `details`")
    return index


def _pages(details: dict[str, Any]) -> list[_Page]:
    """Intro, steps and finish in order."""
    pages: list[_Page] = []
    if isinstance(details.get("intro"), dict):
        pages.append(_Page("Introduction", details["intro"], 5, "intro", "intro"))
    for number, step in enumerate(details.get("steps") or [], start=1):
        if isinstance(step, dict):
            title = str(step.get("title") or f"Step {number}")
            pages.append(_Page(title, step, 10, f"step {number} '{title}'"))
    if isinstance(details.get("finish"), dict):
        pages.append(_Page("Finish", details["finish"], 5, "finish", "finish"))
    if len(pages) > 99:
        raise KillercodaImportError("a workshop holds at most 99 lessons; split the scenario")
    return pages


def _lessons(
    src_dir: Path, details: dict[str, Any], built: _Workshop, report: ImportReport
) -> dict[str, str]:
    """File name -> text of every lesson."""
    lessons: dict[str, str] = {}
    used_slugs: set[str] = set()
    for number, page in enumerate(_pages(details), start=1):
        slug = _unique(page.slug or slugify(page.title) or f"step-{number}", used_slugs)
        lessons[f"{number:02d}-{slug}.md"] = _lesson_text(src_dir, page, slug, built, report)
    return lessons


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
    return file.read_text(encoding="utf-8", errors="replace")


def _scripts(src_dir: Path, page: _Page) -> str | None:
    """The page's background then foreground script (Katacoda: courseData, code), as one."""
    scripts = []
    for role, katacoda in (("background", "courseData"), ("foreground", "code")):
        script = _read_script(src_dir, page.details.get(role) or page.details.get(katacoda))
        if script and script.strip():
            heading = f"# Killercoda {role} script (runs as root, as there)"
            scripts.append(f"{heading}\n{script_body(script)}")
    joined = "\n".join(scripts)
    if re.search(r"(^|[;&|\s])clear\b", joined):
        joined = CLEAR_SHIM + joined
    return joined or None


def _lesson_text(
    src_dir: Path, page: _Page, slug: str, built: _Workshop, report: ImportReport
) -> str:
    front: dict[str, Any] = {"title": page.title, "minutes": page.minutes}
    scripts = _scripts(src_dir, page)
    if scripts and page.slug != "intro":  # the intro's scripts are the workshop's setup
        front |= {"setup": scripts, "setup_user": ROOT}
        built.texts.append(scripts)
    text_file = page.details.get("text")
    source = _read_script(src_dir, text_file) or ""
    built.texts.append(source)
    page_dir = posixpath.dirname(text_file) if isinstance(text_file, str) else ""
    converted = convert_page(source, page_dir)
    _take_images(src_dir, converted, built, page, report)
    for note in converted.notes:
        report.add(f"{page.where}: {note}")
    warn_about_root(page.where, converted.commands, report)
    parts = [f"---\n{yaml_text(front)}---\n", converted.text.strip() + "\n"]
    verify = _read_script(src_dir, page.details.get("verify"))
    if verify and script_body(verify).strip():
        before = built.commands_before
        parts.append(task_block(slug, page.title, page.where, converted, verify, before, report))
    if converted.commands:
        built.commands_before.append((page.title, converted.commands))
    return "\n".join(parts)


def _take_images(
    src_dir: Path, converted: ConvertedPage, built: _Workshop, page: _Page, report: ImportReport
) -> None:
    """Copy the images stored beside the page into the workshop's assets/."""
    for source, target in converted.images.items():
        file = (src_dir / source).resolve()
        if not file.is_relative_to(src_dir.resolve()) or not file.is_file():
            report.add(f"{page.where}: image {source} not found in the scenario")
        elif target not in built.files:
            built.files[target] = file.read_bytes()


def _workshop_setup(
    src_dir: Path, details: dict[str, Any], built: _Workshop, report: ImportReport
) -> dict[str, Any] | None:
    """The assets folder copied into the workshop; host01's assets and the intro's scripts as
    the workshop's setup, as root."""
    assets = src_dir / ASSETS_DIR
    found = sorted(
        file.relative_to(assets).as_posix() for file in assets.rglob("*") if file.is_file()
    ) if assets.is_dir() else []  # fmt: skip
    for name in found:
        content = (assets / name).read_bytes()
        built.files.setdefault(f"{ASSETS_DIR}/{name}", content)
        if PurePosixPath(name).suffix in _TEXT_SUFFIXES or "dockerfile" in name.lower():
            built.texts.append(content.decode("utf-8", errors="replace"))
    files = setup_files(details.get("assets") or {}, found, report)
    intro = details.get("intro") if isinstance(details.get("intro"), dict) else {}
    run = _scripts(src_dir, _Page("Introduction", intro or {}, 5, "intro"))
    if run:
        built.texts.append(run)
    if not files and not run:
        return None
    setup: dict[str, Any] = {"files": files} if files else {}
    if run:
        setup["run"] = run
    return setup | {"user": ROOT, "timeout": WORKSHOP_SETUP_TIMEOUT}


def _images(
    built: _Workshop, recipes: Mapping[str, str], report: ImportReport
) -> list[dict[str, str]]:
    listed = []
    for image in images_used(built.texts):
        if recipe := recipes.get(image):
            listed.append({"name": image, "recipe": recipe})
            continue
        listed.append({"name": image})
        report.add(
            f"image {image}: LabDeck has no recipe for it, so the workshop registry cannot "
            "carry it offline; sandboxes pull it from Docker Hub (set "
            "LABDECK_REGISTRY_PROXY_REMOTEURL to cache it)"
        )
    return listed


def _write_atomically(dest_dir: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a hidden folder beside ``dest_dir``, then rename it into place; on
    any failure, remove what was made (the folders above ``dest_dir`` too)."""
    created = [
        parent for parent in [dest_dir.parent, *dest_dir.parent.parents] if not parent.exists()
    ]
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.importing-", dir=dest_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the workshop from a portal's user
        for name, content in sorted(files.items()):
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        if dest_dir.exists():
            dest_dir.rmdir()  # empty: _check_destination made sure
        staging.rename(dest_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # innermost first
            shutil.rmtree(folder, ignore_errors=True)
        raise

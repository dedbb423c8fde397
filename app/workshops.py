"""Which workshop this instance serves, loaded once at start-up."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.lessons.loader import META_FILE, ContentError, find_workshops, is_workshop, load_workshop
from app.lessons.problems import ContentProblem
from app.lessons.schema import Workshop


class WorkshopNotFound(RuntimeError):
    pass


def select_workshop(settings: Settings) -> Workshop:
    """The workshop named by LABDECK_WORKSHOP, or the only one; raises with a sentence otherwise."""
    folders = find_workshops(settings.content_dir)
    if settings.workshop:
        chosen = [f for f in folders if f.name == settings.workshop]
        if not chosen:
            names = ", ".join(f.name for f in folders) or "none"
            raise WorkshopNotFound(
                f"LABDECK_WORKSHOP={settings.workshop} is not under {settings.content_dir} "
                f"(workshops there: {names})."
            )
        return load_workshop(chosen[0])
    if len(folders) != 1:
        names = ", ".join(f.name for f in folders) or "none"
        raise WorkshopNotFound(
            f"{settings.content_dir} holds {len(folders)} workshops ({names}); "
            "choose one with LABDECK_WORKSHOP."
        )
    return load_workshop(folders[0])


def workshops_named(settings: Settings, name: str | None) -> list[Workshop]:
    """What a command's WORKSHOP argument names: a workshop's path, or a folder under the content
    folder; without one, the workshop LABDECK_WORKSHOP names, else every workshop. Raises
    ``WorkshopNotFound`` with a sentence, or ``ContentError``."""
    if not name and settings.workshop:
        return [select_workshop(settings)]
    if name:
        found = [path for path in (Path(name), settings.content_dir / name) if is_workshop(path)]
        folders = found[:1]
    else:
        folders = find_workshops(settings.content_dir)
    if not folders:
        raise WorkshopNotFound(
            f"No workshop at {name or settings.content_dir}: give a folder under "
            f"{settings.content_dir} or a path to a folder with {META_FILE}."
        )
    return [load_workshop(folder) for folder in folders]


def describe_problems(error: ContentError) -> str:
    problems: list[ContentProblem] = list(error.problems)
    lines = [str(problem) for problem in problems[:20]]
    more = len(problems) - len(lines)
    if more > 0:
        lines.append(f"... and {more} more (run `./labdeck content check`)")
    return "\n".join(lines)

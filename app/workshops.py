"""Which workshop this instance serves, loaded once at start-up."""

from __future__ import annotations

from app.config import Settings
from app.lessons.loader import ContentError, find_workshops, load_workshop
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


def describe_problems(error: ContentError) -> str:
    problems: list[ContentProblem] = list(error.problems)
    lines = [str(problem) for problem in problems[:20]]
    more = len(problems) - len(lines)
    if more > 0:
        lines.append(f"... and {more} more (run `./labdeck content check`)")
    return "\n".join(lines)

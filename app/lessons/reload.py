"""The workshop being served, loaded again when an author changes its files.

``LiveWorkshop.current()`` is what every route, the checks, the dashboard and the registry read,
never a copy taken at start. ``keep_fresh`` looks at the folder at most once a second, off the
event loop: the size and modification time of its ``.md`` and ``.yaml`` files and of everything
under ``assets/`` (a few microseconds a file). When they change, the workshop is loaded again,
as at start. Content that no longer loads is not served: the last good workshop stays, and its
``problems`` (each with its file and line) are logged and shown on the pages until a reload
succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.lessons.loader import load_workshop
from app.lessons.problems import ContentError, ContentProblem
from app.lessons.schema import ASSETS_DIR, Workshop

log = logging.getLogger("labdeck.content")
RELOAD_INTERVAL_SECONDS = 1.0
SHOWN_PROBLEMS = 20  # the rest are counted; `./labdeck content check` lists them all
_CONTENT_SUFFIXES = (".md", ".yaml", ".yml")

Fingerprint = dict[str, tuple[int, int]]  # file -> (modification time in ns, size)


def fingerprint(folder: Path) -> Fingerprint:
    """What a reload depends on: the workshop's own files and its assets. Blocks (a few stats)."""
    found: Fingerprint = {}
    _add_files(found, folder, recursive=False)
    _add_files(found, folder / ASSETS_DIR, recursive=True)
    return found


def _add_files(found: Fingerprint, folder: Path, *, recursive: bool) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # not there (yet), or going away: its absence is the fingerprint
        return
    for entry in entries:
        if entry.name.startswith("."):  # editors' swap files, .git
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    _add_files(found, Path(entry.path), recursive=True)
            elif recursive or entry.name.endswith(_CONTENT_SUFFIXES):
                stat = entry.stat()
                found[entry.path] = (stat.st_mtime_ns, stat.st_size)
        except OSError:  # removed between the listing and the stat
            continue


@dataclass(frozen=True)
class ShownProblem:
    """A problem as the page shows it: where (relative to the content folder) and what."""

    where: str
    message: str


@dataclass(frozen=True)
class ContentNotice:
    """The banner the pages show while the workshop's files do not load."""

    problems: list[ShownProblem]
    more: int


class LiveWorkshop:
    """The served workshop, and what stopped its last reload. ``check`` blocks (run it in a
    thread, as ``refresh`` does); it only swaps references, so readers anywhere see either the
    old workshop or the new one, whole."""

    def __init__(self, workshop: Workshop | None) -> None:
        self._current = workshop
        self.problems: tuple[ContentProblem, ...] = ()
        self._seen: Fingerprint = fingerprint(workshop.path) if workshop else {}
        self._listeners: list[Callable[[Workshop], None]] = []
        self._checking = threading.Lock()  # the poller and a test's refresh() may overlap

    def current(self) -> Workshop | None:
        """The workshop served now; pass this method (not its result) to whatever lives long."""
        return self._current

    def serve(self, workshop: Workshop) -> None:
        """Serve ``workshop`` from now on (a reload, or a test that changes the workshop)."""
        self._current = workshop

    def on_change(self, listener: Callable[[Workshop], None]) -> None:
        """Call ``listener`` on the event loop with each new workshop ``refresh`` serves."""
        self._listeners.append(listener)

    def check(self) -> bool:
        """Load the workshop again if its files changed. True when what the pages show changed:
        a new workshop is served, or its problems appeared or went. Blocks."""
        with self._checking:
            served, problems = self._current, self.problems
            if served is None:
                return False
            seen = fingerprint(served.path)  # before reading: a change while reading is seen next
            if seen == self._seen:
                return False
            self._seen = seen
            loaded = self._load(served.path)
            if loaded is not None and loaded != served:
                self.serve(loaded)
                log.info("workshop %s reloaded from %s", loaded.slug, loaded.path)
                return True
            return self.problems != problems

    async def refresh(self) -> bool:
        """``check`` in a thread, then tell the listeners when something changed."""
        changed = await asyncio.to_thread(self.check)
        current = self._current
        if changed and current is not None:
            for listener in self._listeners:
                listener(current)
        return changed

    async def keep_fresh(self, interval: float = RELOAD_INTERVAL_SECONDS) -> None:
        """``refresh`` every ``interval`` seconds until cancelled; a failure is logged, and the
        next round tries again (an author's editor may be half-way through a save)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("could not look for changes in the workshop's files")

    def notice(self) -> ContentNotice | None:
        """What the pages show while the last reload failed; None when all is well."""
        problems, served = self.problems, self._current
        if not problems:
            return None
        root = served.path.parent if served else None
        shown = [_shown(problem, root) for problem in problems[:SHOWN_PROBLEMS]]
        return ContentNotice(shown, max(0, len(problems) - SHOWN_PROBLEMS))

    def _load(self, path: Path) -> Workshop | None:
        """The workshop at ``path``, or None with ``problems`` saying why not."""
        try:
            workshop = load_workshop(path)
        except ContentError as error:
            self._keep_last_good(path, error.problems)
            return None
        except Exception as error:  # the next save may fix it; the portal must keep serving
            log.exception("could not reload the workshop at %s", path)
            self._keep_last_good(path, [ContentProblem(path, None, f"cannot be read: {error}")])
            return None
        if self.problems:
            log.info("the workshop at %s loads again: its problems are fixed", path)
        self.problems = ()
        return workshop

    def _keep_last_good(self, path: Path, problems: list[ContentProblem]) -> None:
        self.problems = tuple(problems) or (ContentProblem(path, None, "does not load"),)
        listing = "\n".join(f"  {problem}" for problem in self.problems)
        log.warning(
            "the workshop at %s was changed and does not load; still serving the last version "
            "that did. %d problem(s):\n%s",
            path,
            len(self.problems),
            listing,
        )


def _shown(problem: ContentProblem, root: Path | None) -> ShownProblem:
    """Where a problem is, relative to the content folder (no host paths in a page)."""
    file = problem.file
    file = file.relative_to(root) if root and file.is_relative_to(root) else Path(file.name)
    where = f"{file}:{problem.line}" if problem.line else str(file)
    return ShownProblem(where, problem.message)

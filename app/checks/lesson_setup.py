"""Setup scripts: the workshop's (workshop.yaml ``setup``: files, then a script) and each lesson's
(front matter ``setup``), run once per attendee and sandbox, the workshop's before any lesson's.

They run when the attendee first opens the lesson, and at the latest before that lesson's checks,
so a check never looks for files the setup was meant to create. A new sandbox (the old one was
removed) gets them again. One that fails (non-zero exit, or killed at its timeout) is reported to
the attendee (``SetupFailed``, shown on the lesson page and on the task cards) and to the
dashboard, never passed off as ready; opening the lesson again retries it (issue 15).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from app.checks import store
from app.checks.runner import Executor, trim_output
from app.checks.setup_files import copy_files
from app.db import Database
from app.events import INSTRUCTOR_TOPIC, EventHub
from app.lessons.schema import Lesson, SandboxUser, SetupFile
from app.sandboxes.base import ExecResult

log = logging.getLogger("labdeck.checks")
SETUP_TIMEOUT_SECONDS = 120.0
WORKSHOP_SETUP = "(workshop)"  # stored as a lesson is: no lesson slug holds parentheses
TIMED_OUT = -1  # the exit code stored for a setup killed at its timeout


class SetupFailed(Exception):
    """A setup failed in this sandbox; the message is a sentence for the attendee."""


@dataclass(frozen=True)
class SetupScript:
    """One setup to run: the workshop's or a lesson's."""

    key: str  # the lesson's slug, or WORKSHOP_SETUP
    what: str  # "this lesson's setup", for sentences
    run: str | None
    user: SandboxUser
    timeout: float
    workshop_dir: Path
    files: tuple[SetupFile, ...] = ()


def scripts_of(lesson: Lesson) -> list[SetupScript]:
    """What must have run in a sandbox before ``lesson``'s checks, in order."""
    folder = lesson.path.parent
    scripts = []
    if (shared := lesson.workshop_setup) and (shared.run or shared.files):
        scripts.append(
            SetupScript(
                WORKSHOP_SETUP, "the workshop's setup", shared.run, shared.user,
                shared.timeout, folder, tuple(shared.files),
            )
        )  # fmt: skip
    if lesson.setup:
        scripts.append(
            SetupScript(
                lesson.slug, "this lesson's setup", lesson.setup, lesson.setup_user,
                SETUP_TIMEOUT_SECONDS, folder,
            )
        )  # fmt: skip
    return scripts


def failure_message(script: SetupScript, exit_code: int) -> str:
    why = (
        f"it did not finish within {script.timeout:g} s"
        if exit_code == TIMED_OUT
        else f"it ended with exit status {exit_code}"
    )
    return (
        f"{script.what[0].upper()}{script.what[1:]} failed in your sandbox ({why}), so this "
        "lesson is not ready and its checks cannot be trusted. Your instructor sees this on the "
        "dashboard; reload the page to try again."
    )


class LessonSetups:
    def __init__(self, database: Database, events: EventHub | None = None) -> None:
        self._db = database
        self._events = events
        # One lock per attendee and setup: the page load and a first click may race.
        self._locks: defaultdict[tuple[int, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def ensure(
        self,
        backend: Executor,
        sandbox: str,
        attendee_id: int,
        lesson: Lesson,
        *,
        retry: bool = True,
    ) -> bool:
        """Run the setups ``lesson`` needs in ``sandbox`` unless they already ran there; True
        when one ran now. Raises ``SetupFailed`` when one fails, or failed before in this
        sandbox and ``retry`` is False (a Check click must not wait for a broken script again);
        ``SandboxGone`` when the sandbox stopped."""
        ran = False
        for script in scripts_of(lesson):
            ran = await self._ensure_one(backend, sandbox, attendee_id, script, retry) or ran
        return ran

    async def _ensure_one(
        self, backend: Executor, sandbox: str, attendee_id: int, script: SetupScript, retry: bool
    ) -> bool:
        async with self._locks[(attendee_id, script.key)]:
            before = await self._db.run(
                lambda session: store.setup_exit_code(session, attendee_id, script.key, sandbox)
            )
            if before == 0:
                return False
            if before is not None and not retry:
                raise SetupFailed(failure_message(script, before))
            result = await run_setup(backend, sandbox, script)
            exit_code = TIMED_OUT if result.timed_out else result.exit_code
            output = trim_output(result.output)
            await self._db.run(
                lambda session: store.record_setup(
                    session, attendee_id, script.key, sandbox, exit_code, output
                )
            )
        self._announce(attendee_id, script.key, exit_code)
        if exit_code != 0:
            log.warning("%s failed for attendee %s: %s", script.key, attendee_id, output)
            raise SetupFailed(failure_message(script, exit_code))
        return True

    def _announce(self, attendee_id: int, key: str, exit_code: int) -> None:
        """The dashboard rereads the attendee's row (it shows a failed setup)."""
        if self._events is not None:
            event = {
                "type": "setup",
                "attendee_id": attendee_id,
                "lesson": key,
                "ok": not exit_code,
            }
            self._events.publish(INSTRUCTOR_TOPIC, event)


async def run_setup(backend: Executor, sandbox: str, script: SetupScript) -> ExecResult:
    """Copy the script's files, then run it as its user; the first failure's result."""
    copied = await copy_files(backend, sandbox, script.workshop_dir, list(script.files))
    if copied.timed_out or copied.exit_code != 0 or not script.run:
        return copied
    return await backend.exec(sandbox, script.run, user=script.user, timeout=script.timeout)

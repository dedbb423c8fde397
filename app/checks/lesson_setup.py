"""Lesson setup scripts (front matter ``setup``): run once per attendee, lesson and sandbox.

They run when the attendee first opens the lesson, and at the latest before that lesson's checks,
so a check never looks for files the setup was meant to create. A new sandbox (the old one was
removed) gets the setup again; a script that failed is retried next time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from app.checks import store
from app.checks.runner import Executor, trim_output
from app.db import Database
from app.lessons.schema import Lesson

log = logging.getLogger("labdeck.checks")
SETUP_TIMEOUT_SECONDS = 120.0


class LessonSetups:
    def __init__(self, database: Database) -> None:
        self._db = database
        # One lock per attendee and lesson: the page load and a first click may race.
        self._locks: defaultdict[tuple[int, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def ensure(
        self, backend: Executor, sandbox: str, attendee_id: int, lesson: Lesson
    ) -> bool:
        """Run ``lesson.setup`` in ``sandbox`` unless it already ran there; True when it ran now.
        Raises ``SandboxGone`` when the sandbox stopped."""
        if not lesson.setup:
            return False
        async with self._locks[(attendee_id, lesson.slug)]:
            done = await self._db.run(
                lambda session: store.setup_done(session, attendee_id, lesson.slug, sandbox)
            )
            if done:
                return False
            result = await backend.exec(
                sandbox, lesson.setup, user="learner", timeout=SETUP_TIMEOUT_SECONDS
            )
            output = trim_output(result.output)
            exit_code = -1 if result.timed_out else result.exit_code
            await self._db.run(
                lambda session: store.record_setup(
                    session, attendee_id, lesson.slug, sandbox, exit_code, output
                )
            )
        if exit_code != 0:
            log.warning(
                "setup of lesson %s failed for attendee %s: %s", lesson.slug, attendee_id, output
            )
        return True

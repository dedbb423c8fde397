"""Run checks through one long-lived agent per sandbox instead of one container exec per check.

A container exec (dockerd → containerd → runc entering the namespaces) costs about 60 ms of
CPU on a small host, more than most checks themselves; a class checking at once spends its
cores on that. So the first check in a sandbox opens one exec running ``agent_program`` as
the attendee's user, over a TTY in raw mode; each later check is a JSON line to it, and it
runs the check as its own process in its own session with its own timeout (see the program's
docstring). Whenever the agent cannot be used (no python3 in an old image, the attendee killed
it, the sandbox restarted) a check falls back to a plain exec: results never depend on the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from app.checks.runner import Executor
from app.sandboxes.base import OUTPUT_LIMIT, ExecResult, SandboxError, SandboxGone, Tty

log = logging.getLogger(__name__)

AGENT_USER = "learner"  # checks run as the attendee; other users (setup as root) use exec
PROGRAM = (Path(__file__).parent / "agent_program.py").read_text(encoding="utf-8")
READY_TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 60.0  # after an agent failed to open, plain execs until then
IDLE_CLOSE_SECONDS = 600.0  # an agent nobody used for this long is closed (its memory back)
CLOSE_WAIT_SECONDS = 2.0
LINE_LIMIT = 1 << 20  # a reply line longer than this means the stream is garbage


class AgentLost(SandboxError):
    """The agent went away or answered nonsense; the check falls back to an exec."""


class AgentBackend(Executor, Protocol):
    """What the agents need of a sandbox backend (``SandboxBackend``): exec, and a TTY."""

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> Tty: ...


class Agent:
    """One agent process in one sandbox, and the checks waiting for its replies."""

    def __init__(self, tty: Tty) -> None:
        self._tty = tty
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._buffer = bytearray()
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    @classmethod
    async def open(cls, backend: AgentBackend, sandbox: str) -> Agent:
        """Start the agent and wait for its ready line; raises ``SandboxError`` otherwise."""
        tty = await backend.open_tty(sandbox, ["python3", "-c", PROGRAM], user=AGENT_USER)
        agent = cls(tty)
        try:
            await asyncio.wait_for(agent._await_ready(), READY_TIMEOUT_SECONDS)
        except (TimeoutError, AgentLost) as error:
            await agent.close()
            raise AgentLost(f"the check agent did not start in {sandbox}") from error
        agent._reader = asyncio.create_task(agent._read_replies(), name=f"agent:{sandbox}")
        return agent

    async def run(self, command: str, timeout: float) -> ExecResult:
        """Run one check; ``AgentLost`` when the agent cannot answer it."""
        if self.closed:
            raise AgentLost("the check agent is closed")
        ident = next(self._ids)
        reply = self._pending[ident] = asyncio.get_running_loop().create_future()
        request = {"id": ident, "run": command, "timeout": timeout, "limit": OUTPUT_LIMIT}
        try:
            await self._tty.write((json.dumps(request) + "\n").encode("ascii"))
            answer = await reply
        except SandboxError as error:
            raise AgentLost(str(error)) from error
        finally:
            self._pending.pop(ident, None)
        if "error" in answer:
            raise AgentLost(f"the check agent failed: {answer['error']}")
        try:
            return ExecResult(
                exit_code=int(answer["exit_code"]),
                output=str(answer["output"]),
                timed_out=bool(answer["timed_out"]),
                seconds=float(answer["seconds"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AgentLost(f"the check agent answered nonsense: {answer!r:.200}") from error

    async def close(self) -> None:
        self.closed = True
        self._fail_pending("the check agent was closed")
        await self._tty.close()  # the agent reads end of file and exits
        reader = self._reader
        if reader and reader is not asyncio.current_task():
            # Closing wakes the pending read, which lets the TTY release its socket; a cancel
            # would leave the socket open.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), CLOSE_WAIT_SECONDS)

    async def _await_ready(self) -> None:
        while True:
            message = await self._next_message()
            if message.get("ready"):
                return

    async def _read_replies(self) -> None:
        try:
            while True:
                message = await self._next_message()
                waiting = self._pending.get(message.get("id", -1))
                if waiting and not waiting.done():
                    waiting.set_result(message)
        except AgentLost as error:
            log.info("check agent gone: %s", error)
        finally:
            self.closed = True
            self._fail_pending("the check agent went away")
            await self._tty.close()  # releases the exec's socket (closing twice is harmless)

    async def _next_message(self) -> dict[str, Any]:
        """The next JSON line; lines that are not JSON objects (a shell's noise) are skipped."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end]).strip()
                del self._buffer[: end + 1]
                message = _as_message(line)
                if message is not None:
                    return message
                continue
            if len(self._buffer) > LINE_LIMIT:
                raise AgentLost("the check agent sent an endless line")
            chunk = await self._tty.read()
            if not chunk:
                raise AgentLost("the check agent's stream ended")
            self._buffer += chunk

    def _fail_pending(self, reason: str) -> None:
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(AgentLost(reason))


class CheckAgents:
    """The ``Executor`` checks use: the sandbox's agent when it works, a plain exec otherwise."""

    def __init__(self, backend: AgentBackend) -> None:
        self._backend = backend
        self._agents: dict[str, Agent] = {}
        self._opening: dict[str, asyncio.Future[Agent | None]] = {}
        self._not_before: dict[str, float] = {}
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        agent = await self._agent_for(name) if user == AGENT_USER else None
        if agent is not None:
            try:
                return await agent.run(command, timeout)
            except AgentLost as error:
                log.info("check in %s falls back to an exec: %s", name, error)
                self._drop(name, agent)
        return await self._backend.exec(name, command, user=user, timeout=timeout)

    async def _close_idle(self, name: str) -> None:
        """Close an agent nobody used for a while (one of a stopped sandbox closes itself)."""
        agent = self._agents.pop(name, None)
        self._not_before.pop(name, None)
        if timer := self._idle_timers.pop(name, None):
            timer.cancel()
        if agent:
            await agent.close()

    async def aclose(self) -> None:
        for timer in self._idle_timers.values():
            timer.cancel()
        agents, self._agents = list(self._agents.values()), {}
        for agent in agents:
            await agent.close()

    async def _agent_for(self, name: str) -> Agent | None:
        agent = self._agents.get(name)
        if agent is not None and not agent.closed:
            self._arm_idle_close(name)
            return agent
        if time.monotonic() < self._not_before.get(name, 0.0):
            return None
        opening = self._opening.get(name)
        if opening is None:  # one opening per sandbox, however many checks wait for it
            opening = self._opening[name] = asyncio.ensure_future(self._open(name))
            opening.add_done_callback(lambda _: self._opening.pop(name, None))
        return await asyncio.shield(opening)

    async def _open(self, name: str) -> Agent | None:
        try:
            agent = await Agent.open(self._backend, name)
        except SandboxGone:
            return None  # the exec that follows says so; try again once it runs
        except Exception as error:  # any failure to start it only costs plain execs
            log.info("no check agent in %s (plain execs for a while): %s", name, error)
            self._not_before[name] = time.monotonic() + RETRY_AFTER_SECONDS
            return None
        self._agents[name] = agent
        self._arm_idle_close(name)
        return agent

    def _drop(self, name: str, agent: Agent) -> None:
        if self._agents.get(name) is agent:
            del self._agents[name]
        self._in_background(agent.close())

    def _arm_idle_close(self, name: str) -> None:
        if timer := self._idle_timers.pop(name, None):
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._idle_timers[name] = loop.call_later(
            IDLE_CLOSE_SECONDS, lambda: self._in_background(self._close_idle(name))
        )

    def _in_background(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _as_message(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None

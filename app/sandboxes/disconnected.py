"""The backend a service holds until its real one connects: every call fails with a sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.sandboxes.base import (
    BackendHealth,
    ExecResult,
    ExecStream,
    SandboxError,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStats,
    Tty,
)


class Disconnected:
    """The backend until the engine answers: every call fails with the sentence it was given."""

    def __init__(self, message: str) -> None:
        self.message = message

    def _fail(self) -> SandboxError:
        return SandboxError(self.message)

    async def create(self, spec: SandboxSpec) -> AsyncIterator[SandboxState]:
        raise self._fail()
        yield SandboxState.CREATING  # pragma: no cover - makes this an async generator

    async def start(self, name: str) -> AsyncIterator[SandboxState]:
        raise self._fail()
        yield SandboxState.STARTING  # pragma: no cover

    async def stop(self, name: str, timeout: float = 10) -> None:
        raise self._fail()

    async def remove(self, name: str) -> None:
        raise self._fail()

    async def status(self, name: str) -> SandboxInfo:
        raise self._fail()

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        raise self._fail()

    def exec_stream(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecStream:
        raise self._fail()

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> Tty:
        raise self._fail()

    async def address(self, name: str) -> str:
        raise self._fail()

    async def list(self) -> list[SandboxInfo]:
        raise self._fail()

    async def stats(self, name: str) -> SandboxStats:
        raise self._fail()

    async def health(self) -> BackendHealth:
        return BackendHealth(engine=f"unreachable: {self.message}")

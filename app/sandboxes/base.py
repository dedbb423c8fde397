"""The contract every sandbox backend keeps (JupyterHub's ``Spawner`` is the model).

A *sandbox* is one attendee's container with a Docker engine inside. The portal talks to it only
through this Protocol, so the Docker backend and the fake used in unit tests are interchangeable.
Every method is ``async``; implementations keep blocking client calls off the event loop.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# ``exec`` keeps this much of a command's output: the end, where the errors are.
OUTPUT_LIMIT = 64 * 1024


class SandboxState(enum.StrEnum):
    """What a sandbox is doing. The first four are what ``/api/me`` reports while one is made."""

    QUEUED = "queued"
    CREATING = "creating"
    STARTING = "starting"  # container runs, inner engine not answering yet
    READY = "ready"  # inner engine answers `docker info`
    STOPPED = "stopped"
    FAILED = "failed"
    MISSING = "missing"  # the backend has no such sandbox


@dataclass(frozen=True)
class Limits:
    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 1024
    log_size: str = "10m"
    disk_quota: str | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to create one sandbox."""

    name: str
    workshop: str
    image: str
    limits: Limits
    attendee: str = ""  # empty for a warm-pool sandbox, owned by nobody yet
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxInfo:
    name: str
    state: SandboxState
    workshop: str = ""
    attendee: str = ""
    created_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str  # stdout and stderr interleaved, decoded as UTF-8 with replacement
    timed_out: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class SandboxStats:
    name: str
    memory_bytes: int
    memory_limit_bytes: int
    cpu_percent: float
    pids: int


class ExecStream(Protocol):
    """A command's output while it runs: ``async for chunk in stream``, then ``stream.result``.

    Errors (``SandboxGone`` when the sandbox does not run) surface from the iteration."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @property
    def result(self) -> ExecResult:
        """Exit code, ``timed_out`` and the last ``OUTPUT_LIMIT`` bytes of output. Raises
        ``RuntimeError`` until the iteration has ended."""
        ...

    async def aclose(self) -> None:
        """Stop reading early. The command inside ends at its timeout at the latest."""
        ...


class ExecStreamBase(abc.ABC):
    """What every backend's ``ExecStream`` shares: iteration runs ``_chunks``, which must set
    ``_result`` once the command has ended."""

    _result: ExecResult | None = None

    @property
    def result(self) -> ExecResult:
        if self._result is None:
            raise RuntimeError("The command's result is known once its output has been read.")
        return self._result

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    @abc.abstractmethod
    def _chunks(self) -> AsyncIterator[bytes]:
        """The output as it comes (an async generator); sets ``_result`` at the end."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class Tty(Protocol):
    """A bidirectional terminal stream into a sandbox."""

    async def read(self) -> bytes:
        """Next chunk of output; ``b""`` once the process ended or the stream closed."""
        ...

    async def write(self, data: bytes) -> None:
        """Send keystrokes. Raises ``SandboxGone`` when the sandbox disappeared."""
        ...

    async def resize(self, cols: int, rows: int) -> None: ...

    async def close(self) -> None:
        """Close the stream; the process inside may live on (e.g. the shell held by labdeck-session)."""
        ...


class SandboxError(RuntimeError):
    """A backend failure with a message an attendee or operator can act on."""


class SandboxGone(SandboxError):
    """The sandbox does not exist or is not running."""


class SandboxUnavailable(RuntimeError):
    """No ready sandbox in time; ``str(error)`` is a sentence for the attendee."""


@dataclass(frozen=True)
class BackendHealth:
    """What ``/healthz``, ``doctor`` and the dashboard say about a backend.

    Each of ``engine``, ``images`` and ``registry`` is ``"ok"`` or a short reason; ``registry``
    is ``"none"`` for a backend without a workshop registry. ``isolation`` names how sandboxes
    are kept apart from the host; ``risk`` is one plain sentence when that is unsafe, else empty.
    """

    engine: str
    images: str = "ok"
    registry: str = "none"
    isolation: str = ""
    risk: str = ""

    @property
    def ok(self) -> bool:
        return self.engine == "ok" and self.images == "ok" and self.registry in ("ok", "none")


@dataclass(frozen=True)
class Finding:
    """One line of `labdeck doctor`: what was checked, whether it can serve a class, what was
    seen and, when it cannot, the fix in a sentence. A backend module's ``doctor_checks``
    returns functions that each make one."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Connection:
    """What a backend package's ``connect(settings, workshop)`` returns: the backend, the work
    that runs beside it while the portal serves (e.g. keeping a registry up), and how to close
    it all. The service runs ``background`` as tasks and awaits ``close`` on shutdown."""

    backend: SandboxBackend
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    close: Callable[[], Awaitable[None]] | None = None


@runtime_checkable
class SandboxBackend(Protocol):
    """Override all of these. Idempotent where it says so; raise ``SandboxError`` otherwise.

    ``create`` and ``start`` are async generators (implement them with ``async def`` and
    ``yield``): the stages they yield are what the attendee's page shows while they wait."""

    def create(self, spec: SandboxSpec) -> AsyncIterator[SandboxState]:
        """Create and start ``spec.name``, yielding CREATING, STARTING, then READY once the inner
        engine answers. Raises ``SandboxError`` (after cleaning up) when it cannot get there.
        Creating a name that already exists and runs is a no-op that yields READY."""
        ...

    def start(self, name: str) -> AsyncIterator[SandboxState]:
        """Start a stopped sandbox (files and images intact); yields STARTING then READY.
        Raises ``SandboxGone`` when it does not exist."""
        ...

    async def stop(self, name: str, timeout: float = 10) -> None:
        """Stop it, keeping its files and inner images. Stopping a stopped or missing one is done."""
        ...

    async def remove(self, name: str) -> None:
        """Remove the container and its volumes. A missing one (404/409 from the engine) is done."""
        ...

    async def status(self, name: str) -> SandboxInfo:
        """Its current state, MISSING when the backend has no such sandbox. Never raises for that."""
        ...

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        """Run ``bash -lc command`` inside, in the user's home; kill it at ``timeout`` and return
        ``timed_out=True``. ``output`` keeps the last ``OUTPUT_LIMIT`` bytes. Raises
        ``SandboxGone`` when the sandbox does not run."""
        ...

    def exec_stream(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecStream:
        """``exec``, handing out the output as it comes (for progress the attendee can watch)."""
        ...

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> Tty:
        """Start ``command`` with a TTY inside and return the stream. Raises ``SandboxGone``."""
        ...

    async def address(self, name: str) -> str:
        """Where the portal reaches the sandbox over the network: its IP address on the
        instance's sandbox network. A server started inside (``python3 -m http.server``, or
        ``docker run -p 8080:80`` in the inner engine) answers there; the port preview
        (app/preview/) proxies to it. Raises ``SandboxGone`` when the sandbox does not run."""
        ...

    async def list(self) -> list[SandboxInfo]:
        """Every sandbox of this portal instance (by label), for reconciling at start-up."""
        ...

    async def stats(self, name: str) -> SandboxStats:
        """Memory, CPU and process counts now. Raises ``SandboxGone``."""
        ...

    async def health(self) -> BackendHealth:
        """Whether the engine answers, the sandbox image is there and the registry serves.
        Answers within a few seconds and never raises: a failure is a reason in a field."""
        ...

"""The Docker backend: each sandbox is a container of the sandbox image running its own dockerd.

This module is the async face (``SandboxBackend``); the parts live next to it:
``docker_containers`` (what a sandbox's container gets, and making and removing it),
``docker_exec`` (commands under a time guard, the ready probe), ``docker_stream`` (an exec's
raw socket and terminals) and ``docker_status`` (engine answers in LabDeck's terms).

Threads: docker-py blocks, so every call runs in this backend's own thread pool; a long ``exec``
holds a thread and must not starve the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import replace
from functools import partial
from typing import Any, ParamSpec, TypeVar

import docker
from docker.errors import APIError, DockerException, NotFound

from app.sandboxes import naming
from app.sandboxes.base import (
    BackendHealth,
    ExecResult,
    SandboxError,
    SandboxGone,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStats,
)
from app.sandboxes.docker.containers import (
    DockerBackendConfig,
    SandboxContainers,
    default_client,
)
from app.sandboxes.docker.exec import (
    READY_PROBE,
    DockerExecStream,
    ExecJob,
    exec_create,
    home_of,
    run_job,
)
from app.sandboxes.docker.registry import WorkshopRegistry
from app.sandboxes.docker.runtime import ISOLATION, risk_of
from app.sandboxes.docker.status import (
    CGROUP_STATS,
    info_of,
    state_of,
    stats_from_cgroup,
    stats_from_docker,
)
from app.sandboxes.docker.stream import DockerTty, Hijacked
from app.sandboxes.naming import Role

__all__ = ["DockerBackend", "DockerBackendConfig"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

TERM = "xterm-256color"
_ALREADY_DONE = (404, 409)


class DockerBackend:
    """``SandboxBackend`` on a Docker engine. See ``docker_containers`` for what a sandbox gets.

    ``create`` either reaches READY or leaves nothing behind: on failure, on cancellation and
    when its consumer stops iterating, the container and its volume are removed. A consumer
    that may stop early should iterate inside ``contextlib.aclosing(backend.create(spec))``:
    Python closes an abandoned async generator (and so cleans up) only when it is collected.
    """

    def __init__(
        self,
        config: DockerBackendConfig,
        client_factory: Callable[[], docker.DockerClient] | None = None,
    ) -> None:
        self.config = config
        self._client_factory = client_factory or partial(default_client, config.workers)
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(config.workers, thread_name_prefix="labdeck-docker")
        self.containers = SandboxContainers(config, self._api)
        # Set by connect(): the workshop registry and why it last failed (None: it serves).
        self.registry: WorkshopRegistry | None = None
        self.registry_problem: str | None = None
        self.sandbox_image: str | None = None  # the image health() looks for

    @property
    def api(self) -> docker.APIClient:
        return self._api()

    def _api(self) -> docker.APIClient:
        """The low-level client, connected on first use (in a worker thread: it may block)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client.api

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, *args, **kwargs))

    async def _call_to_completion(
        self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``_call`` that, when cancelled, still waits for the thread: cleanup must see what the
        call made (a container created after the cleanup ran would be left behind)."""
        future = asyncio.ensure_future(self._call(function, *args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with suppress(Exception):
                await future
            raise

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def health(self) -> BackendHealth:
        try:
            engine, images = await asyncio.wait_for(self._call(self._engine_and_image), 3.0)
        except (TimeoutError, DockerException, OSError) as error:
            return BackendHealth(engine=f"unreachable: {type(error).__name__}", images="unknown")
        if self.registry is None:
            registry = "none"
        else:
            registry = f"failing: {self.registry_problem}" if self.registry_problem else "ok"
        profile = self.config.runtime
        return BackendHealth(
            engine=engine,
            images=images,
            registry=registry,
            isolation=ISOLATION[profile],
            risk=risk_of(profile),
        )

    def _engine_and_image(self) -> tuple[str, str]:
        api = self._api()
        api.ping()
        if self.sandbox_image is None:
            return "ok", "ok"
        try:
            api.inspect_image(self.sandbox_image)
        except docker.errors.ImageNotFound:
            return "ok", f"missing: {self.sandbox_image}"
        return "ok", "ok"

    # -- lifecycle -------------------------------------------------------------------------

    async def create(self, spec: SandboxSpec) -> AsyncGenerator[SandboxState, None]:
        name = naming.check_name(spec.name)
        existing = await self._call(self.containers.inspect_own, name)
        if existing is not None:
            async for state in self._bring_up_existing(name, existing):
                yield state
            return
        yield SandboxState.CREATING
        try:
            await self._call_to_completion(self.containers.create, spec)
            yield SandboxState.STARTING
            await self._call_to_completion(self.containers.start, name)
            await self._wait_until_ready(name)
        except BaseException as error:  # includes cancellation: nothing half-made stays
            reason = await asyncio.shield(self._call(self.containers.discard, name, error))
            if isinstance(error, Exception):
                raise SandboxError(reason) from error
            raise
        yield SandboxState.READY

    async def _bring_up_existing(
        self, name: str, attrs: Mapping[str, Any]
    ) -> AsyncIterator[SandboxState]:
        running = (attrs.get("State") or {}).get("Running")
        if running and await self._engine_answers(name):
            yield SandboxState.READY
            return
        async for state in self.start(name):
            yield state

    async def start(self, name: str) -> AsyncGenerator[SandboxState, None]:
        naming.check_name(name)
        if await self._call(self.containers.inspect_own, name) is None:
            raise SandboxGone(f"Sandbox {name} does not exist.")
        yield SandboxState.STARTING
        try:
            await self._call(self.containers.start, name)
        except NotFound as error:
            raise SandboxGone(f"Sandbox {name} does not exist.") from error
        except APIError as error:
            raise SandboxError(f"Sandbox {name} did not start: {error.explanation}") from error
        try:
            await self._wait_until_ready(name)
        except SandboxError as error:
            logs = await self._call(self.containers.log_tail, name)
            raise SandboxError(f"{error}{logs}") from error
        yield SandboxState.READY

    async def stop(self, name: str, timeout: float = 10) -> None:
        if await self._call(self.containers.inspect_own, name) is None:
            return
        try:
            await self._call(self.api.stop, name, timeout=int(timeout))
        except APIError as error:
            if error.status_code not in _ALREADY_DONE:
                raise SandboxError(f"Sandbox {name} did not stop: {error.explanation}") from error

    async def remove(self, name: str) -> None:
        await self._call(self.containers.remove_everything, name)

    # -- commands and terminals ------------------------------------------------------------

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        job = ExecJob(self._api, name, command, user, timeout)
        outcome, output = await run_job(job, self._call)
        return ExecResult(outcome.exit_code, output, outcome.timed_out, outcome.seconds)

    def exec_stream(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> DockerExecStream:
        return DockerExecStream(ExecJob(self._api, name, command, user, timeout), self._call)

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> DockerTty:
        def start() -> tuple[str, Hijacked]:
            exec_id = exec_create(
                self.api,
                name,
                command,
                user=user,
                workdir=home_of(user),
                tty=True,
                stdin=True,
                environment={"TERM": TERM},
            )
            return exec_id, Hijacked(self.api.exec_start(exec_id, tty=True, socket=True))

        exec_id, connection = await self._call(start)

        async def resize(cols: int, rows: int) -> None:
            await self._call(self._resize, exec_id, cols, rows)

        return DockerTty(connection, resize)

    def _resize(self, exec_id: str, cols: int, rows: int) -> None:
        try:
            self.api.exec_resize(exec_id, height=rows, width=cols)
        except APIError as error:  # the process ended: nothing to resize
            log.debug("resizing exec %s: %s", exec_id, error)

    # -- questions -------------------------------------------------------------------------

    async def status(self, name: str) -> SandboxInfo:
        try:
            naming.check_name(name)
        except ValueError:
            return SandboxInfo(name, SandboxState.MISSING)
        attrs = await self._call(self.containers.inspect_own, name)
        if attrs is None:
            return SandboxInfo(name, SandboxState.MISSING)
        container_state = attrs.get("State") or {}
        state, message = state_of(
            str(container_state.get("Status")), bool(container_state.get("OOMKilled"))
        )
        info = info_of(name, state, (attrs.get("Config") or {}).get("Labels") or {}, message)
        if state is SandboxState.READY and not await self._engine_answers(name):
            return replace(info, state=SandboxState.STARTING, message="its engine is not answering")
        return info

    async def address(self, name: str) -> str:
        """Its address on the instance network. Measured (issue 15): the portal on the host (or
        in its host-network container) reaches it directly, both a server inside and a port
        the inner engine publishes; the firewall only limits what the sandbox starts."""
        attrs = await self._call(self.containers.inspect_own, name)
        if attrs is None or not (attrs.get("State") or {}).get("Running"):
            raise SandboxGone(f"Sandbox {name} does not run.")
        networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
        address = str((networks.get(self.config.network) or {}).get("IPAddress") or "")
        if not address:
            raise SandboxGone(f"Sandbox {name} has no address on {self.config.network}.")
        return address

    async def list(self) -> list[SandboxInfo]:
        """Every sandbox of this instance; a running one counts as READY without asking its
        engine (``status`` asks)."""
        filters = naming.label_filters(self.config.instance, Role.SANDBOX)
        containers = await self._call(lambda: self.api.containers(all=True, filters=filters))
        found = []
        for container in containers:
            name = str(container["Names"][0]).lstrip("/")
            state, message = state_of(str(container.get("State")))
            found.append(info_of(name, state, container.get("Labels") or {}, message))
        return sorted(found, key=lambda info: info.name)

    async def stats(self, name: str) -> SandboxStats:
        """The engine's one-shot stats; where the engine reports none (seen with containerd 1.6
        on hybrid cgroup v1 hosts), the sandbox's own cgroup files, read from inside."""
        attrs = await self._call(self.containers.inspect_own, name)
        if attrs is None or not (attrs.get("State") or {}).get("Running"):
            raise SandboxGone(f"Sandbox {name} does not run.")
        try:
            raw = await self._call(self.api.stats, name, stream=False)
        except NotFound as error:
            raise SandboxGone(f"Sandbox {name} does not exist.") from error
        if (raw.get("memory_stats") or {}).get("usage"):
            return stats_from_docker(name, raw)
        result = await self.exec(name, CGROUP_STATS, user="root", timeout=10)
        if result.exit_code != 0:
            raise SandboxError(
                f"No statistics for sandbox {name} (exit {result.exit_code}): "
                f"{result.output.strip()}"
            )
        return stats_from_cgroup(name, result.output)

    # -- the inner engine ------------------------------------------------------------------

    async def _wait_until_ready(self, name: str) -> None:
        timeout = self.config.ready_timeout
        job = ExecJob(self._api, name, READY_PROBE, "root", timeout)
        outcome, output = await run_job(job, self._call)
        if outcome.timed_out:
            raise SandboxError(f"The Docker engine in {name} did not answer within {timeout:g} s.")
        if outcome.exit_code != 0:
            raise SandboxError(
                f"The Docker engine in {name} did not start (exit {outcome.exit_code}). "
                + output.strip()
            )

    async def _engine_answers(self, name: str) -> bool:
        try:
            result = await self.exec(name, "docker info >/dev/null 2>&1", user="root", timeout=5)
        except SandboxError:
            return False
        return result.exit_code == 0

"""The Docker backend: each sandbox is a container of the sandbox image running its own dockerd.

A sandbox gets the runtime profile's rights (``runtime.create_host_config``), memory, CPU and
process limits, a json-file log capped at ``Limits.log_size``, the instance's sandbox network
(``network.py``) and the workshop registry as its inner engine's mirror. Its inner engine keeps
images in a named volume ``<name>-docker`` at /var/lib/docker: overlay2 cannot sit on the
container's own overlayfs, and the volume survives a stop.

Disk quota: ``storage_opt size=`` works only with overlay2 on xfs mounted with ``pquota``. On any
other storage driver the quota is skipped (logged once per backend). Even where it works it caps
the container's own layer, not the inner engine's volume, where most of an attendee's bytes go.

Threads: docker-py blocks, so every call runs in this backend's own thread pool; a long ``exec``
holds a thread and must not starve the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.types import LogConfig

from app.engine import engine_address
from app.sandboxes import naming
from app.sandboxes.base import (
    OUTPUT_LIMIT,
    ExecResult,
    Limits,
    SandboxError,
    SandboxGone,
    SandboxInfo,
    SandboxSpec,
    SandboxState,
    SandboxStats,
)
from app.sandboxes.naming import Role
from app.sandboxes.runtime import Profile, create_host_config

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

ENGINE_DIR = "/var/lib/docker"
TERM = "xterm-256color"
# Waits inside the sandbox for its engine: cheap socket pings every 50 ms, then `docker info`.
# Fails fast (status 3, with the engine's log) when dockerd is not even running for 2 s.
READY_PROBE = """
absent=0
until curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://engine/_ping >/dev/null \\
      && docker info >/dev/null 2>&1; do
    if pgrep -x dockerd >/dev/null; then absent=0; else absent=$((absent + 1)); fi
    if [ "$absent" -gt 40 ]; then
        echo "dockerd is not running; the end of /var/log/docker.log:"
        tail -n 15 /var/log/docker.log 2>/dev/null
        exit 3
    fi
    sleep 0.05
done
"""
# After GUARD should have killed a command, how long the worker thread still waits for it.
_KILL_GRACE_SECONDS = 2.0
_LOG_TAIL_LINES = 20
_FRAME_HEADER = struct.Struct(">BxxxL")
_ALREADY_DONE = (404, 409)
_QUOTA_REFUSED = ("storage-opt", "pquota")


@dataclass(frozen=True)
class DockerBackendConfig:
    instance: str
    runtime: Profile
    network: str
    registry_mirror: str | None = None  # http://<gateway>:<port>, see WorkshopRegistry
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 120.0
    workers: int = 32
    apparmor: bool | None = None  # None: ask the host

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        runtime: Profile,
        registry_mirror: str | None,
        network: str | None = None,
        extra_labels: Mapping[str, str] | None = None,
    ) -> DockerBackendConfig:
        return cls(
            instance=settings.instance,
            runtime=runtime,
            network=network or naming.network_name(settings.instance),
            registry_mirror=registry_mirror,
            extra_labels=dict(extra_labels or {}),
        )

    @property
    def insecure_registries(self) -> list[str]:
        """The mirror speaks plain http, so its host:port must be an insecure registry inside."""
        return [urlsplit(self.registry_mirror).netloc] if self.registry_mirror else []


def default_client(workers: int = 32) -> docker.DockerClient:
    # One pooled connection per worker thread, or urllib3 discards connections noisily.
    return docker.DockerClient(base_url=engine_address(), timeout=120, max_pool_size=workers)


def limits_host_config(limits: Limits, *, disk_quota: bool) -> dict[str, Any]:
    """docker-py ``create_host_config`` arguments for ``limits``."""
    config: dict[str, Any] = {
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,  # no swap on top of the memory limit
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "log_config": LogConfig(
            type=LogConfig.types.JSON, config={"max-size": limits.log_size, "max-file": "1"}
        ),
    }
    if disk_quota and limits.disk_quota:
        config["storage_opt"] = {"size": limits.disk_quota}
    return config


def storage_supports_quota(engine_info: Mapping[str, Any]) -> bool:
    """overlay2 on xfs; whether xfs has ``pquota`` only the engine's answer to a create tells."""
    status = dict(engine_info.get("DriverStatus") or [])
    return engine_info.get("Driver") == "overlay2" and status.get("Backing Filesystem") == "xfs"


def home_of(user: str) -> str:
    return "/root" if user in ("root", "0") else f"/home/{user}"


# Runs "$2" with `bash -lc` in a session of its own and SIGKILLs that whole session at the
# deadline ("$1" seconds) and again when the command returns: background jobs it left (a fork
# bomb, a forgotten `sleep &`) die with it. coreutils `timeout` would not do the latter.
# Exits with the command's status; 137 when killed. (dash's kill takes no "--".)
GUARD = """
setsid bash -lc "$2" & command=$!
setsid sh -c 'sleep "$1"; kill -KILL "-$2"' watchdog "$1" "$command" >/dev/null 2>&1 &
watchdog=$!
wait "$command"; status=$?
kill -KILL "-$command" 2>/dev/null
kill -KILL "-$watchdog" 2>/dev/null
exit "$status"
"""


def guarded(seconds: float, command: str) -> list[str]:
    """The exec argv that runs ``command`` under ``GUARD`` for at most ``seconds``."""
    return ["sh", "-c", GUARD, "labdeck-exec", f"{max(seconds, 0.1):g}", command]


class OutputTail:
    """The last ``limit`` bytes of a command's output."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self._limit = limit
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > self._limit:
            del self._data[: len(self._data) - self._limit]

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")


class _Hijacked:
    """An exec's upgraded connection. http.client may have read the stream's first bytes along
    with the response headers into its buffer, so reads go through that buffer first."""

    def __init__(self, socket_io: Any) -> None:
        self._socket_io = socket_io
        self.sock: socket.socket = getattr(socket_io, "_sock", socket_io)
        response = getattr(socket_io, "_response", None)
        self._response = response
        self._reader = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)

    def _read_exactly(self, size: int) -> bytes:
        reader = self._reader or self._socket_io
        data = bytearray()
        while len(data) < size:
            chunk = reader.read(size - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def frames(self) -> Iterator[bytes]:
        """The payloads of a non-TTY exec's multiplexed stdout/stderr frames, in order."""
        while True:
            try:
                header = self._read_exactly(_FRAME_HEADER.size)
                if len(header) < _FRAME_HEADER.size:
                    return
                _stream, size = _FRAME_HEADER.unpack(header)
                payload = self._read_exactly(size)
            except (OSError, ValueError):
                return  # shut down by the watchdog, or the engine went away
            if payload:
                yield payload
            if len(payload) < size:
                return

    def take_buffered(self) -> bytes:
        """Switch to non-blocking and return what http.client had read ahead (for a TTY)."""
        self.sock.setblocking(False)
        if self._reader is None:
            return b""
        try:
            return self._reader.read1(1 << 16) or b""
        except (BlockingIOError, OSError, ValueError):
            return b""

    def shutdown(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        for closable in (self._reader, self._socket_io, self._response, self.sock):
            with suppress(Exception):
                closable.close()  # type: ignore[union-attr]


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    timed_out: bool
    seconds: float


class _ExecJob:
    """One command inside a sandbox, run in a worker thread, with a watchdog past its timeout."""

    def __init__(
        self,
        api: Callable[[], docker.APIClient],  # called in the thread: connecting may block
        name: str,
        command: str,
        user: str,
        timeout: float,
    ) -> None:
        self._get_api = api
        self._name = name
        self._argv = guarded(timeout, command)
        self._user = user
        self._timeout = timeout
        self._connection: _Hijacked | None = None
        self._cancelled = threading.Event()
        self._deadline_hit = threading.Event()

    def run(self, on_output: Callable[[bytes], None]) -> _Outcome:
        started = time.monotonic()
        api = self._get_api()
        exec_id = exec_create(
            api, self._name, self._argv, user=self._user, workdir=home_of(self._user)
        )
        try:
            connection = _Hijacked(api.exec_start(exec_id, socket=True))
        except APIError as error:
            raise SandboxGone(f"Sandbox {self._name} stopped: {error.explanation}") from error
        self._connection = connection
        if self._cancelled.is_set():
            connection.shutdown()
        watchdog = threading.Timer(self._timeout + _KILL_GRACE_SECONDS, self._deadline_passed)
        watchdog.daemon = True
        watchdog.start()
        try:
            for chunk in connection.frames():
                on_output(chunk)
        finally:
            watchdog.cancel()
            connection.close()
        seconds = time.monotonic() - started
        exit_code = api.exec_inspect(exec_id).get("ExitCode")
        # GUARD's watchdog kills the command's session: 137, right at the deadline.
        killed = exit_code == 137 and seconds >= self._timeout * 0.98
        watchdog_fired = self._deadline_hit.is_set()
        if exit_code is None:
            exit_code = 137 if watchdog_fired else -1
        return _Outcome(exit_code, killed or watchdog_fired, round(seconds, 3))

    def _deadline_passed(self) -> None:
        self._deadline_hit.set()
        if self._connection is not None:
            self._connection.shutdown()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._connection is not None:
            self._connection.shutdown()


def exec_create(
    api: docker.APIClient, name: str, argv: list[str], *, user: str, workdir: str, **options: Any
) -> str:
    """Create an exec; ``SandboxGone`` when the container is missing or not running."""
    try:
        created = api.exec_create(name, argv, user=user, workdir=workdir, **options)
    except NotFound as error:
        raise SandboxGone(f"Sandbox {name} does not exist.") from error
    except APIError as error:
        if error.status_code == 409:
            raise SandboxGone(f"Sandbox {name} is not running.") from error
        raise SandboxError(
            f"Could not run a command in sandbox {name}: {error.explanation}"
        ) from error
    return str(created["Id"])


class DockerExecStream:
    """``DockerBackend.exec_stream``: output chunks through a bounded queue (the reading thread
    waits when the consumer is slow), then ``result``."""

    _QUEUE_SIZE = 64
    # A consumer that stopped reading without aclose() must not hold a worker thread forever.
    _HAND_OVER_TIMEOUT = 60.0

    def __init__(
        self, job: _ExecJob, in_thread: Callable[[Callable[[], _Outcome]], Awaitable[_Outcome]]
    ) -> None:
        self._in_thread = in_thread
        self._job = job
        self._tail = OutputTail()
        self._result: ExecResult | None = None
        self._abandoned = threading.Event()

    @property
    def result(self) -> ExecResult:
        if self._result is None:
            raise RuntimeError("The command's result is known once its output has been read.")
        return self._result

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self._QUEUE_SIZE)

        async def put(chunk: bytes | None) -> None:
            if not self._abandoned.is_set():
                await queue.put(chunk)

        def hand_over(chunk: bytes | None) -> None:  # in the worker thread; waits while full
            if not self._abandoned.is_set() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(put(chunk), loop).result(self._HAND_OVER_TIMEOUT)

        def produce() -> _Outcome:
            try:
                return self._job.run(hand_over)
            finally:
                hand_over(None)

        work = asyncio.ensure_future(self._in_thread(produce))
        try:
            while (chunk := await queue.get()) is not None:
                self._tail.add(chunk)
                yield chunk
            outcome = await work
            self._result = ExecResult(
                outcome.exit_code, self._tail.text(), outcome.timed_out, outcome.seconds
            )
        finally:
            if not work.done():
                self._abandon(queue)

    def _abandon(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._abandoned.set()
        self._job.cancel()
        while not queue.empty():  # wakes a hand-over waiting for room
            queue.get_nowait()

    async def aclose(self) -> None:
        self._abandoned.set()
        self._job.cancel()


class DockerTty:
    """A TTY exec's socket, read and written on the event loop (no thread per terminal)."""

    def __init__(
        self, connection: _Hijacked, resize: Callable[[int, int], Awaitable[None]]
    ) -> None:
        self._connection = connection
        self._sock = connection.sock
        self._pending = connection.take_buffered()
        self._resize = resize
        self._closed = False
        self._reading = False

    async def read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._closed:
            return b""
        self._reading = True
        try:
            data = await asyncio.get_running_loop().sock_recv(self._sock, 1 << 16)
        except OSError:
            data = b""
        finally:
            self._reading = False
        if self._closed:
            self._connection.close()
        return data

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise SandboxGone("This terminal is closed.")
        try:
            await asyncio.get_running_loop().sock_sendall(self._sock, data)
        except OSError as error:
            raise SandboxGone("The sandbox behind this terminal is gone.") from error

    async def resize(self, cols: int, rows: int) -> None:
        await self._resize(cols, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connection.shutdown()  # wakes a pending read, which then closes the socket
        if not self._reading:
            self._connection.close()


def _state_of(container_state: str, oom_killed: bool = False) -> tuple[SandboxState, str]:
    if container_state == "running":
        return SandboxState.READY, ""
    if container_state == "restarting":
        return SandboxState.STARTING, ""
    if container_state in ("exited", "paused"):
        if oom_killed:
            return SandboxState.FAILED, "it ran out of memory"
        return SandboxState.STOPPED, ""
    if container_state == "created":
        return SandboxState.FAILED, "it was created but never started"
    if container_state == "removing":
        return SandboxState.MISSING, ""
    return SandboxState.FAILED, f"its container is {container_state}"


def _info(name: str, state: SandboxState, labels: Mapping[str, str], message: str) -> SandboxInfo:
    return SandboxInfo(
        name=name,
        state=state,
        workshop=labels.get(naming.LABEL_WORKSHOP, ""),
        attendee=labels.get(naming.LABEL_ATTENDEE, ""),
        created_at=naming.parse_created(labels.get(naming.LABEL_CREATED)),
        labels=dict(labels),
        message=message,
    )


def stats_from_docker(name: str, raw: Mapping[str, Any]) -> SandboxStats:
    """The engine's one-shot stats as LabDeck's numbers (cache excluded, like `docker stats`)."""
    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("total_inactive_file", details.get("inactive_file", 0))
    cpu, previous = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        previous.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - previous.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    percent = cpu_delta / system_delta * cpus * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    return SandboxStats(
        name=name,
        memory_bytes=max(int(memory.get("usage", 0)) - int(cache), 0),
        memory_limit_bytes=int(memory.get("limit", 0)),
        cpu_percent=round(percent, 2),
        pids=int((raw.get("pids_stats") or {}).get("current", 0)),
    )


# Reads the sandbox's own cgroup (v1 first: hybrid hosts also mount an empty v2), sampling
# CPU time twice, half a second apart.
CGROUP_STATS = r"""
cg=/sys/fs/cgroup
if [ -r $cg/memory/memory.usage_in_bytes ]; then
    memory=$(cat $cg/memory/memory.usage_in_bytes); limit=$(cat $cg/memory/memory.limit_in_bytes)
    inactive=$(awk '$1 == "total_inactive_file" {print $2}' $cg/memory/memory.stat)
    pids=$(cat $cg/pids/pids.current)
    cpu_ns() { cat $cg/cpuacct/cpuacct.usage; }
else
    memory=$(cat $cg/memory.current); limit=$(cat $cg/memory.max)
    inactive=$(awk '$1 == "inactive_file" {print $2}' $cg/memory.stat)
    pids=$(cat $cg/pids.current)
    cpu_ns() { awk '$1 == "usage_usec" {print $2 * 1000}' $cg/cpu.stat; }
fi
cpu_before=$(cpu_ns); started=$(date +%s%N)
sleep 0.5
cpu_after=$(cpu_ns); ended=$(date +%s%N)
echo "memory=$memory limit=$limit inactive=${inactive:-0} pids=$pids"
echo "cpu_ns=$((cpu_after - cpu_before)) wall_ns=$((ended - started))"
"""


def stats_from_cgroup(name: str, output: str) -> SandboxStats:
    """``CGROUP_STATS``'s output as LabDeck's numbers."""
    values: dict[str, int] = {}
    for pair in output.split():
        key, _, value = pair.partition("=")
        values[key] = int(value) if value.isdigit() else 0  # cgroup v2 writes "max"
    wall = values.get("wall_ns", 0)
    return SandboxStats(
        name=name,
        memory_bytes=max(values.get("memory", 0) - values.get("inactive", 0), 0),
        memory_limit_bytes=values.get("limit", 0),
        cpu_percent=round(values.get("cpu_ns", 0) / wall * 100, 2) if wall else 0.0,
        pids=values.get("pids", 0),
    )


class DockerBackend:
    """``SandboxBackend`` on a Docker engine. See the module docstring for what a sandbox gets.

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
        self._quota_supported: bool | None = None

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

    # -- lifecycle -------------------------------------------------------------------------

    async def create(self, spec: SandboxSpec) -> AsyncGenerator[SandboxState, None]:
        name = naming.check_name(spec.name)
        existing = await self._call(self._inspect_own, name)
        if existing is not None:
            async for state in self._bring_up_existing(name, existing):
                yield state
            return
        yield SandboxState.CREATING
        try:
            await self._call_to_completion(self._create_container, spec)
            yield SandboxState.STARTING
            await self._call_to_completion(self.api.start, name)
            await self._wait_until_ready(name)
        except BaseException as error:  # includes cancellation: nothing half-made stays
            reason = await asyncio.shield(self._call(self._discard, name, error))
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
        if await self._call(self._inspect_own, name) is None:
            raise SandboxGone(f"Sandbox {name} does not exist.")
        yield SandboxState.STARTING
        try:
            await self._call(self.api.start, name)
        except NotFound as error:
            raise SandboxGone(f"Sandbox {name} does not exist.") from error
        except APIError as error:
            raise SandboxError(f"Sandbox {name} did not start: {error.explanation}") from error
        try:
            await self._wait_until_ready(name)
        except SandboxError as error:
            logs = await self._call(self._log_tail, name)
            raise SandboxError(f"{error}{logs}") from error
        yield SandboxState.READY

    async def stop(self, name: str, timeout: float = 10) -> None:
        if await self._call(self._inspect_own, name) is None:
            return
        try:
            await self._call(self.api.stop, name, timeout=int(timeout))
        except APIError as error:
            if error.status_code not in _ALREADY_DONE:
                raise SandboxError(f"Sandbox {name} did not stop: {error.explanation}") from error

    async def remove(self, name: str) -> None:
        await self._call(self._remove_everything, name)

    # -- commands and terminals ------------------------------------------------------------

    async def exec(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> ExecResult:
        job = _ExecJob(self._api, name, command, user, timeout)
        tail = OutputTail()
        try:
            outcome = await self._call(job.run, tail.add)
        except asyncio.CancelledError:
            job.cancel()
            raise
        return ExecResult(outcome.exit_code, tail.text(), outcome.timed_out, outcome.seconds)

    def exec_stream(
        self, name: str, command: str, *, user: str = "learner", timeout: float = 15
    ) -> DockerExecStream:
        return DockerExecStream(_ExecJob(self._api, name, command, user, timeout), self._call)

    async def open_tty(self, name: str, command: list[str], *, user: str = "learner") -> DockerTty:
        def start() -> tuple[str, _Hijacked]:
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
            return exec_id, _Hijacked(self.api.exec_start(exec_id, tty=True, socket=True))

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
        attrs = await self._call(self._inspect_own, name)
        if attrs is None:
            return SandboxInfo(name, SandboxState.MISSING)
        container_state = attrs.get("State") or {}
        state, message = _state_of(
            str(container_state.get("Status")), bool(container_state.get("OOMKilled"))
        )
        info = _info(name, state, (attrs.get("Config") or {}).get("Labels") or {}, message)
        if state is SandboxState.READY and not await self._engine_answers(name):
            return replace(info, state=SandboxState.STARTING, message="its engine is not answering")
        return info

    async def list(self) -> list[SandboxInfo]:
        """Every sandbox of this instance; a running one counts as READY without asking its
        engine (``status`` asks)."""
        filters = naming.label_filters(self.config.instance, Role.SANDBOX)
        containers = await self._call(lambda: self.api.containers(all=True, filters=filters))
        found = []
        for container in containers:
            name = str(container["Names"][0]).lstrip("/")
            state, message = _state_of(str(container.get("State")))
            found.append(_info(name, state, container.get("Labels") or {}, message))
        return sorted(found, key=lambda info: info.name)

    async def stats(self, name: str) -> SandboxStats:
        """The engine's one-shot stats; where the engine reports none (seen with containerd 1.6
        on hybrid cgroup v1 hosts), the sandbox's own cgroup files, read from inside."""
        attrs = await self._call(self._inspect_own, name)
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

    # -- helpers (worker threads) ----------------------------------------------------------

    def _inspect_own(self, name: str) -> dict[str, Any] | None:
        """The container, only when it is a sandbox of this instance (never touch others)."""
        try:
            attrs: dict[str, Any] = self.api.inspect_container(name)
        except NotFound:
            return None
        labels = (attrs.get("Config") or {}).get("Labels")
        if attrs.get("Name") != f"/{name}" or not naming.belongs_to(
            labels, self.config.instance, Role.SANDBOX
        ):
            return None
        return attrs

    def _create_container(self, spec: SandboxSpec) -> None:
        api, volume = self.api, naming.engine_volume_name(spec.name)
        labels = naming.labels_for(
            self.config.instance,
            Role.SANDBOX,
            workshop=spec.workshop,
            attendee=spec.attendee,
            extra={**self.config.extra_labels, **spec.labels},
        )
        api.create_volume(volume, labels=labels)
        try:
            self._create_with_limits(spec, labels, volume, quota=self._disk_quota_supported())
        except APIError as error:
            if not spec.limits.disk_quota or not any(
                word in str(error.explanation) for word in _QUOTA_REFUSED
            ):
                raise
            log.warning("The engine refused a disk quota (%s); sandboxes run without one.", error)
            self._quota_supported = False
            self._create_with_limits(spec, labels, volume, quota=False)

    def _create_with_limits(
        self, spec: SandboxSpec, labels: dict[str, str], volume: str, *, quota: bool
    ) -> None:
        api, network = self.api, self.config.network
        host_config = create_host_config(
            api,
            self.config.runtime,
            apparmor=self.config.apparmor,
            binds={volume: {"bind": ENGINE_DIR, "mode": "rw"}},
            network_mode=network,
            **limits_host_config(spec.limits, disk_quota=quota),
        )
        api.create_container(
            spec.image,
            name=spec.name,
            hostname=spec.name,
            environment=self._environment(spec),
            labels=labels,
            host_config=host_config,
            networking_config={"EndpointsConfig": {network: {}}},
        )

    def _environment(self, spec: SandboxSpec) -> dict[str, str]:
        return {
            **spec.env,
            "LABDECK_SANDBOX_NAME": spec.name,
            "LABDECK_REGISTRY_MIRROR": self.config.registry_mirror or "",
            "LABDECK_INSECURE_REGISTRIES": ",".join(self.config.insecure_registries),
        }

    def _disk_quota_supported(self) -> bool:
        if self._quota_supported is None:
            self._quota_supported = storage_supports_quota(self.api.info())
            if not self._quota_supported:
                log.info("The engine's storage driver takes no disk quota; sandboxes run without.")
        return self._quota_supported

    async def _wait_until_ready(self, name: str) -> None:
        timeout = self.config.ready_timeout
        job = _ExecJob(self._api, name, READY_PROBE, "root", timeout)
        tail = OutputTail()
        try:
            outcome = await self._call(job.run, tail.add)
        except asyncio.CancelledError:
            job.cancel()
            raise
        if outcome.timed_out:
            raise SandboxError(f"The Docker engine in {name} did not answer within {timeout:g} s.")
        if outcome.exit_code != 0:
            raise SandboxError(
                f"The Docker engine in {name} did not start (exit {outcome.exit_code}). "
                + tail.text().strip()
            )

    async def _engine_answers(self, name: str) -> bool:
        try:
            result = await self.exec(name, "docker info >/dev/null 2>&1", user="root", timeout=5)
        except SandboxError:
            return False
        return result.exit_code == 0

    def _log_tail(self, name: str) -> str:
        try:
            logs = self.api.logs(name, tail=_LOG_TAIL_LINES).decode("utf-8", errors="replace")
        except DockerException:
            return ""
        lines = [line for line in logs.splitlines() if line.strip()]
        return (
            "\nLast lines of its log:\n" + "\n".join(f"  | {line}" for line in lines)
            if lines
            else ""
        )

    def _discard(self, name: str, error: BaseException) -> str:
        """Remove a sandbox that did not get ready; return why, with its last log lines."""
        reason = str(error) or type(error).__name__
        if isinstance(error, APIError):
            reason = str(error.explanation)
        message = f"Sandbox {name} could not be made ready: {reason}{self._log_tail(name)}"
        self._remove_everything(name)
        return message

    def _remove_everything(self, name: str) -> None:
        if self._inspect_own(name) is not None:
            _ignore_done(self.api.remove_container, name, force=True, v=True)
        volume = naming.engine_volume_name(name)
        try:
            labels = self.api.inspect_volume(volume).get("Labels") or {}
        except NotFound:
            return
        if naming.belongs_to(labels, self.config.instance, Role.SANDBOX):
            _ignore_done(self.api.remove_volume, volume, force=True)


def _ignore_done(remove: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a removal; 404 (gone) and 409 (being removed) mean it is done."""
    try:
        remove(*args, **kwargs)
    except APIError as error:
        if error.status_code not in _ALREADY_DONE:
            raise SandboxError(
                f"Docker refused to remove {args[0]}: {error.explanation}"
            ) from error

"""`labdeck bench terminal`: keystroke echo and output throughput of the in-page terminal.

A real portal (uvicorn on 127.0.0.1, in a child process so that the measuring client never
shares its interpreter) serves real sandboxes of a throw-away instance; the client joins
attendees and drives their terminals over loopback websockets, exactly as pages do:
  - echo: seconds from sending one key to receiving its echo, with 1 terminal typing, then with
    30 terminals typing at once (each a key every 100 ms, a fast typist);
  - throughput: `cat` of a 50 MB text file in one terminal, from Enter to the prompt's marker;
  - idle CPU: the portal process's CPU while all terminals stay open and quiet, and before
    any was opened (uvicorn's own housekeeping: its 10 Hz tick, websocket pings).
Everything the instance made (sandboxes, network, registry) is removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from websockets.asyncio.client import ClientConnection, connect

from app.bench.cli import emit, summarize
from app.config import Settings
from app.cookies import COOKIE_NAME
from app.ports import free_port
from app.sandboxes.docker import lab

TARGET_ECHO_P50_MS = 10.0
TARGET_ECHO_P99_MS = 50.0
TARGET_MB_PER_S = 20.0
BENCH_LABELS = {"io.labdeck.bench": "terminal"}
KEY_INTERVAL = 0.1  # a fast typist: ten keys a second
IDLE_SECONDS = 10.0
TAIL_BYTES = 256
PROMPT = re.compile(rb"\$ ")
KEYS = b"abcdefghijklmnopqrstuvwxyz"
ERASE_LINE = b"\x15"  # Ctrl-U


# -- the portal, in a child process -----------------------------------------------------------


def serve_portal() -> None:
    """The child: a LabDeck portal on the Docker engine, configured by LABDECK_* variables.
    It leaves its sandboxes behind when it stops, as a portal does; the parent removes them."""
    import uvicorn

    from app.config import Settings
    from app.main import create_app
    from app.sandboxes.docker.connect import prepare_docker

    settings = Settings()
    backend, _registry = prepare_docker(settings, BENCH_LABELS)
    app = create_app(settings)
    app.state.sandbox_backend = backend
    app.state.limiters.joins.limit = 10_000  # a class joins from one address
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def remove_instance(settings: Settings) -> None:
    """Every sandbox (and engine volume) of the bench instance, then its registry and network."""
    lab.remove_instance(settings, BENCH_LABELS)


class ChildPortal:
    """``serve_portal`` in a child process; on the way out it is stopped, then everything its
    instance made is removed (also when it failed to start or died)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.settings = Settings(
            instance=f"bench-term-{os.getpid()}",
            data_dir=data_dir,
            host="127.0.0.1",
            port=self.port,
            registry_port=free_port(),
            warm_pool_size=0,
        )
        self.env = {
            **os.environ,
            "LABDECK_INSTANCE": self.settings.instance,
            "LABDECK_DATA_DIR": str(data_dir),
            "LABDECK_HOST": self.settings.host,
            "LABDECK_PORT": str(self.port),
            "LABDECK_REGISTRY_PORT": str(self.settings.registry_port),
            "LABDECK_WARM_POOL_SIZE": "0",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChildPortal:
        command = [sys.executable, "-m", "app.bench.terminal"]
        self.process = subprocess.Popen(command, env=self.env)
        try:
            self._wait_until_it_answers()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_until_it_answers(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the portal exited at start-up; its output is above")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url + "/healthz", timeout=1)
                return
            time.sleep(0.2)
        raise RuntimeError("the portal did not answer within 120 s")

    def __exit__(self, *exc: object) -> None:
        lab.stop_portal(self.process)
        remove_instance(self.settings)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the portal process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def join(self, name: str) -> str:
        """A new attendee's session cookie."""
        response = httpx.post(self.url + "/join", data={"name": name}, follow_redirects=False)
        if response.status_code != 303:
            raise RuntimeError(f"joining failed: {response.status_code} {response.text[:200]}")
        return response.cookies[COOKIE_NAME]


# -- the client --------------------------------------------------------------------------------


class Terminal:
    """One attendee's terminal socket, as the page drives it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received = 0

    async def until(self, pattern: re.Pattern[bytes], timeout: float = 60) -> None:
        """Read output until ``pattern`` shows up (searching only the tail, floods are long)."""
        tail = b""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, str):
                    continue
                self.received += len(frame)
                tail = tail[-TAIL_BYTES:] + frame
                if pattern.search(tail):
                    return

    async def run(self, command: str, marker: str, timeout: float = 60) -> float:
        started = time.perf_counter()
        await self.ws.send(command.encode() + b"\r")
        await self.until(re.compile(re.escape(marker.encode())), timeout)
        return time.perf_counter() - started

    async def echo_times(self, count: int, interval: float = 0.0) -> list[float]:
        """Milliseconds per key from send to echo; keys are erased afterwards."""
        times = []
        for index in range(count):
            key = KEYS[index % len(KEYS) : index % len(KEYS) + 1]
            started = time.perf_counter()
            await self.ws.send(key)
            await self.until(re.compile(re.escape(key)), timeout=30)
            elapsed = time.perf_counter() - started
            times.append(elapsed * 1000)
            if interval > elapsed:
                await asyncio.sleep(interval - elapsed)
        await self.ws.send(ERASE_LINE)
        return times


async def open_terminal(portal: ChildPortal, cookie: str, timeout: float) -> Terminal:
    ws = await connect(
        portal.ws_url + "/ws/terminal",
        additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}"},
        max_size=None,
        ping_interval=None,  # the idle measurement should hear nothing from us
    )
    await ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
    terminal = Terminal(ws)
    await terminal.until(PROMPT, timeout)
    return terminal


async def typing_together(terminals: list[Terminal], keys_each: int) -> list[float]:
    async def one(terminal: Terminal) -> list[float]:
        await asyncio.sleep(random.uniform(0, KEY_INTERVAL))  # not all in step
        return await terminal.echo_times(keys_each, KEY_INTERVAL)

    results = await asyncio.gather(*(one(terminal) for terminal in terminals))
    return [value for result in results for value in result]


async def cat_throughput(terminal: Terminal, megabytes: int) -> dict[str, float]:
    path = f"/tmp/labdeck-bench-{megabytes}m"
    size = megabytes * 1024 * 1024
    make = f"base64 -w 120 /dev/urandom | head -c {size} > {path}; echo made-$((40+2))"
    await terminal.run(make, "made-42", timeout=300)
    await terminal.run("clear", "$ ")
    before = terminal.received
    seconds = await terminal.run(f"cat {path}; echo cat-$((6*7))-done", "cat-42-done", 600)
    return {
        "file_mb": megabytes,
        "seconds": round(seconds, 3),
        "mb_per_s": round(megabytes / seconds, 1),
        "bytes_to_the_page": terminal.received - before,
    }


async def idle_cpu_percent(portal: ChildPortal) -> float:
    await asyncio.sleep(2)  # let the last output settle
    before, started = portal.cpu_seconds(), time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    used = portal.cpu_seconds() - before
    return round(100 * used / (time.monotonic() - started), 2)


async def measure(portal: ChildPortal, count: int, samples: int, megabytes: int) -> dict[str, Any]:
    idle_alone = await idle_cpu_percent(portal)  # uvicorn's own housekeeping, for comparison
    cookies = [portal.join(f"bench-{n}") for n in range(count)]
    started = time.monotonic()
    terminals = await asyncio.gather(*(open_terminal(portal, c, 900) for c in cookies))
    ready_seconds = time.monotonic() - started
    try:
        await terminals[0].echo_times(20)  # warm-up
        alone = await terminals[0].echo_times(samples)
        cpu_before, started = portal.cpu_seconds(), time.monotonic()
        together = await typing_together(terminals, max(samples // count, 20))
        typing_cpu = (portal.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        throughput = await cat_throughput(terminals[0], megabytes)
        idle = await idle_cpu_percent(portal)
    finally:
        await asyncio.gather(*(terminal.ws.close() for terminal in terminals))
    return {
        "terminals_ready_seconds": round(ready_seconds, 1),
        "echo_ms_1_active": summarize(alone),
        f"echo_ms_{count}_active": summarize(together),
        f"portal_cpu_percent_while_{count}_type": round(100 * typing_cpu, 1),
        "cat": throughput,
        "idle_cpu_percent": idle,
        "idle_cpu_percent_without_terminals": idle_alone,
    }


def verdicts(result: dict[str, Any], count: int) -> dict[str, bool]:
    crowd = result[f"echo_ms_{count}_active"]
    return {
        "echo_p50": crowd["p50"] <= TARGET_ECHO_P50_MS,
        "echo_p99": crowd["p99"] <= TARGET_ECHO_P99_MS,
        "throughput": result["cat"]["mb_per_s"] >= TARGET_MB_PER_S,
    }


def run_bench(count: int, samples: int, megabytes: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="labdeck-bench-terminal-") as data_dir,
        ChildPortal(Path(data_dir)) as portal,
    ):
        result = asyncio.run(measure(portal, count, samples, megabytes))
    return {
        "benchmark": "terminal",
        "terminals": count,
        # how busy the machine was (2 cores here): read the figures against it
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **result,
        "targets": {
            f"echo_ms_{count}_active_p50": TARGET_ECHO_P50_MS,
            f"echo_ms_{count}_active_p99": TARGET_ECHO_P99_MS,
            "cat_mb_per_s": TARGET_MB_PER_S,
        },
        "met": verdicts(result, count),
    }


def register(app: typer.Typer) -> None:
    @app.command("terminal")
    def terminal(
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON (the only format).")
        ] = True,
        output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
        terminals: Annotated[int, typer.Option(min=1, help="Terminals open at once.")] = 30,
        samples: Annotated[int, typer.Option(min=20, help="Echo samples with one typing.")] = 300,
        file_mb: Annotated[int, typer.Option(min=1, help="Size of the file to `cat`.")] = 50,
    ) -> None:
        """Keystroke echo (1 and N terminals), `cat` throughput and idle CPU over loopback."""
        emit(run_bench(terminals, samples, file_mb), output)


if __name__ == "__main__":
    serve_portal()

"""`labdeck bench dashboard`: how fast the instructor's dashboard renders for a big class, and how
soon a check result reaches open dashboards.

Everything real but the sandboxes: a generated workshop on disk, a SQLite file seeded with a class
in mid-workshop, the portal under uvicorn on 127.0.0.1, and dashboards as websocket clients.
Sandboxes run on FakeBackend: this measures the dashboard, not Docker.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from sqlalchemy import insert
from sqlmodel import Session, col, select

from app import db
from app.bench.cli import emit, summarize
from app.checks import publish, store
from app.checks.runner import CheckResult
from app.config import Settings
from app.instructor.dashboard import load_dashboard
from app.models import Attendee, Sandbox, TaskProgress, utcnow
from app.ports import free_port
from app.sandboxes.fake import FakeBackend
from app.workshops import select_workshop

TARGET_RENDER_P95_MS = 150.0
TARGET_DELIVERY_P95_MS = 200.0
TASKS_PER_LESSON = 5
SEED = 7


def write_workshop(content: Path, tasks: int) -> None:
    """A workshop of ``tasks`` tasks, five per lesson, in the format authors write."""
    folder = content / "bench"
    folder.mkdir(parents=True)
    meta = {"title": "Dashboard bench", "description": "Generated for labdeck bench dashboard."}
    (folder / "workshop.yaml").write_text(json.dumps(meta))
    for lesson in range((tasks + TASKS_PER_LESSON - 1) // TASKS_PER_LESSON):
        first = lesson * TASKS_PER_LESSON
        blocks = [_task_block(n) for n in range(first, min(tasks, first + TASKS_PER_LESSON))]
        header = f"---\ntitle: Lesson {lesson + 1}\nminutes: 10\n---\n\n# Lesson {lesson + 1}\n\n"
        (folder / f"{lesson + 1:02d}-lesson-{lesson + 1}.md").write_text(header + "\n".join(blocks))


def _task_block(number: int) -> str:
    task = {
        "id": f"task-{number + 1}",
        "title": f"Task number {number + 1}",
        "instructions": "Generated.",
        "checks": [{"name": "It is done", "run": "true", "message": "Not yet."}],
    }
    return f"````task\n{json.dumps(task)}\n````\n"


def seed_class(settings: Settings, attendees: int, tasks: int) -> list[int]:
    """A class in mid-workshop: each attendee passed a few tasks, is failing the next one,
    has not tried the rest. Returns the attendee ids."""
    rng = random.Random(SEED)
    db.upgrade(settings.database_path)
    engine = db.make_engine(settings.database_path)
    start = utcnow() - timedelta(hours=2)
    lessons = max(1, tasks // TASKS_PER_LESSON)
    try:
        with Session(engine) as session:
            for number in range(attendees):
                session.add(
                    Attendee(
                        workshop="bench",
                        name=f"Attendee {number + 1}",
                        resume_key=secrets.token_urlsafe(16),
                        joined_at=start,
                        current_lesson=f"lesson-{rng.randint(1, lessons)}",
                    )
                )
            session.commit()
            found = session.exec(select(Attendee.id).order_by(col(Attendee.id)))
            ids = [attendee_id for attendee_id in found if attendee_id is not None]
            progress, sandboxes = [], []
            for attendee_id in ids:
                passed = rng.randint(0, tasks - 2)
                moment = start
                for task in range(passed):
                    moment += timedelta(seconds=rng.randint(60, 600))
                    progress.append(_progress(attendee_id, task, rng.randint(1, 4), moment))
                progress.append(_progress(attendee_id, passed, rng.randint(1, 6), None))
                state = rng.choice(["ready"] * 8 + ["stopped", "starting"])
                sandboxes.append(
                    {
                        "workshop": "bench",
                        "attendee_id": attendee_id,
                        "container_name": f"bench-{attendee_id}",
                        "state": state,
                        "created_at": start,
                        "last_activity_at": moment,
                    }
                )
            session.connection().execute(insert(TaskProgress), progress)
            session.connection().execute(insert(Sandbox), sandboxes)
            session.commit()
            return ids
    finally:
        engine.dispose()


def _progress(attendee_id: int, task: int, attempts: int, passed_at: Any) -> dict[str, Any]:
    return {
        "attendee_id": attendee_id,
        "task_id": f"task-{task + 1}",
        "attempts": attempts,
        "first_passed_at": passed_at,
        "last_failed_check": None if passed_at else "It is done",
        "solution_shown": False,
        "updated_at": passed_at or utcnow(),
    }


def bench_environment(root: Path, token: str) -> dict[str, str]:
    """The portal's settings, as environment variables for the server process."""
    return {
        "LABDECK_DATA_DIR": str(root / "data"),
        "LABDECK_CONTENT_DIR": str(root / "content"),
        "LABDECK_INSTRUCTOR_TOKEN": token,
        "LABDECK_SECRET_KEY": secrets.token_urlsafe(24),
        "LABDECK_INSTANCE": "bench-dashboard",
        "LABDECK_WARM_POOL_SIZE": "0",
        "LABDECK_LOG_LEVEL": "warning",
    }


class ServerProcess:
    """The portal in a process of its own (as in a class: dashboards are other machines), under
    uvicorn on 127.0.0.1, sandboxes on FakeBackend. Told on stdin to publish a check result, it
    answers with the moment it published (perf_counter: CLOCK_MONOTONIC, the same in every
    process of the machine)."""

    def __init__(self, root: Path, token: str, port: int) -> None:
        self.environment = {**os.environ, **bench_environment(root, token)}
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> ServerProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.bench.dashboard", str(self.port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=self.environment,
        )  # fmt: skip
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    await client.get(self.url + "/healthz", timeout=1)
                    return self
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("the portal did not start within 60 s")

    async def publish(self, attendee_id: int, task_id: str) -> float:
        assert self.process and self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{attendee_id} {task_id}\n".encode())
        await self.process.stdin.drain()
        return float((await self.process.stdout.readline()).decode())

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()  # the server stops at the end of its input
            await asyncio.wait_for(self.process.wait(), 30)


def serve_for_bench(port: int) -> None:
    """The server process: the portal, plus publishing check results when told on stdin."""
    from app.main import create_app

    app = create_app(Settings(_env_file=None))
    app.state.sandbox_backend = FakeBackend()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            attendee_id, task_id = line.split()
            published = await publish_result(app, int(attendee_id), task_id)
            sys.stdout.write(f"{published}\n")
            sys.stdout.flush()
        server.should_exit = True
        await serving

    asyncio.run(main())


async def measure_render(settings: Settings, url: str, token: str, rounds: int) -> dict[str, Any]:
    """GET /instructor over HTTP (model, template and transfer), and the model alone."""
    headers = {"Authorization": f"Bearer {token}"}
    pages, models, size = [], [], 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for round_number in range(rounds + 2):
            started = time.perf_counter()
            response = await client.get("/instructor")
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            size = len(response.content)
            if round_number >= 2:  # the first two warm caches up
                pages.append(elapsed)
    workshop = select_workshop(settings)
    engine = db.make_engine(settings.database_path)
    try:
        for _ in range(rounds):
            with Session(engine) as session:
                started = time.perf_counter()
                load_dashboard(session, workshop)
                models.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    return {"render_ms": summarize(pages), "model_ms": summarize(models), "page_bytes": size}


async def publish_result(app: Any, attendee_id: int, task_id: str) -> float:
    """What the checks do when a run ends: store the attempt, then publish the result.
    Returns the moment of publishing (perf_counter)."""
    found = app.state.services.workshop.task(task_id)
    assert found is not None
    results = [CheckResult(0, "It is done", "passed")]

    def save() -> TaskProgress:
        with Session(app.state.services.db.engine) as session:
            return store.record_attempt(
                session, attendee_id, task_id, results, started_at=utcnow(), duration_ms=5
            )

    progress = await asyncio.to_thread(save)
    summary = {
        "task_id": task_id,
        "passed": True,
        "status": "passed",
        "attempts": progress.attempts,
    }
    card = publish.task_card_html(found[1], "passed", results)
    published = time.perf_counter()
    publish.publish_task(app.state.services.events, attendee_id, summary, card)
    return published


async def measure_delivery(
    server: ServerProcess, token: str, work: list[tuple[int, str]], dashboards: int, interval: float
) -> dict[str, Any]:
    """Open ``dashboards`` websockets, publish one result per item of ``work``, time arrivals."""
    from websockets.asyncio.client import connect

    received: list[dict[tuple[int, str], float]] = [{} for _ in range(dashboards)]
    url = server.url.replace("http", "ws", 1) + "/ws/instructor"
    headers = {"Authorization": f"Bearer {token}"}
    sockets = [
        await connect(url, additional_headers=headers, max_size=None) for _ in range(dashboards)
    ]

    async def listen(index: int) -> None:
        async for text in sockets[index]:
            arrived = time.perf_counter()
            cause = json.loads(text).get("cause") or {}
            if cause.get("type") == "task":
                received[index][(cause["attendee_id"], cause["task_id"])] = arrived

    listeners = [asyncio.create_task(listen(i)) for i in range(dashboards)]
    sent: dict[tuple[int, str], float] = {}
    try:
        for key in work:
            sent[key] = await server.publish(*key)
            await asyncio.sleep(interval)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(len(r) < len(sent) for r in received):
            await asyncio.sleep(0.05)
    finally:
        for listener in listeners:
            listener.cancel()
        for socket in sockets:
            await socket.close()
    delays = [(r[key] - sent[key]) * 1000 for r in received for key in sent if key in r]
    return {"delivery_ms": summarize(delays), "lost": dashboards * len(sent) - len(delays)}


def work_items(ids: list[int], tasks: int, events: int) -> list[tuple[int, str]]:
    """Distinct (attendee, task) pairs, so that every arrival names its result."""
    return [(ids[n % len(ids)], f"task-{tasks - (n // len(ids)) % tasks}") for n in range(events)]


def cpu_calibration_ms() -> float:
    """How long this machine takes for a fixed bit of Python (a 2020s laptop: about 40 ms);
    read the other figures against it on a slow or busy machine."""
    started = time.process_time()
    total = 0
    for number in range(1_000_000):
        total += number
    return round((time.process_time() - started) * 1000, 1)


async def run_bench(
    attendees: int, tasks: int, dashboards: int, events: int, interval: float, rounds: int
) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="labdeck-bench-dashboard-") as folder:
        root = Path(folder)
        write_workshop(root / "content", tasks)
        settings = Settings(_env_file=None, **_settings_fields(root, token))
        ids = seed_class(settings, attendees, tasks)
        async with ServerProcess(root, token, free_port()) as server:
            render = await measure_render(settings, server.url, token, rounds)
            work = work_items(ids, tasks, events)
            delivery = await measure_delivery(server, token, work, dashboards, interval)
    met_delivery = delivery["delivery_ms"]["p95"] <= TARGET_DELIVERY_P95_MS and not delivery["lost"]
    return {
        "benchmark": "dashboard",
        "attendees": attendees,
        "tasks": tasks,
        "dashboards": dashboards,
        "events": events,
        "interval_ms": round(interval * 1000),
        **render,
        **delivery,
        "cpu_calibration_ms": cpu_calibration_ms(),
        "load_average": round(os.getloadavg()[0], 2),
        "targets": {
            "render_p95_ms": TARGET_RENDER_P95_MS,
            "delivery_p95_ms": TARGET_DELIVERY_P95_MS,
        },
        "met": {
            "render_p95_ms": render["render_ms"]["p95"] <= TARGET_RENDER_P95_MS,
            "delivery_p95_ms": met_delivery,
        },
    }


def _settings_fields(root: Path, token: str) -> dict[str, Any]:
    return {
        "data_dir": root / "data",
        "content_dir": root / "content",
        "instructor_token": token,
        "secret_key": secrets.token_urlsafe(24),
        "warm_pool_size": 0,
    }


def register(app: typer.Typer) -> None:
    @app.command("dashboard")
    def dashboard_command(
        attendees: Annotated[int, typer.Option(min=1, help="Attendees in the class.")] = 200,
        tasks: Annotated[int, typer.Option(min=2, help="Tasks in the workshop.")] = 30,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON.")
        ] = True,
        output: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
        dashboards: Annotated[int, typer.Option(min=1, help="Open dashboards (websockets).")] = 5,
        events: Annotated[int, typer.Option(min=1, help="Check results published.")] = 100,
        interval: Annotated[float, typer.Option(help="Seconds between two results.")] = 0.05,
        rounds: Annotated[int, typer.Option(min=1, help="Dashboard renders timed.")] = 20,
    ) -> None:
        """Dashboard render time (ms) with a big class, and check-result delivery to dashboards."""
        result = asyncio.run(run_bench(attendees, tasks, dashboards, events, interval, rounds))
        emit(result, output)


if __name__ == "__main__":  # the server process of ServerProcess
    serve_for_bench(int(sys.argv[1]))

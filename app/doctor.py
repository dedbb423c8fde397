"""`labdeck doctor`: every thing a class needs, checked, each failure with the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app import db
from app.config import Settings
from app.sandboxes.docker.engine import EngineUnavailable, docker_client, unavailable_message

MIN_FREE_GB = 5.0


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_engine() -> Finding:
    try:
        client = docker_client(timeout=10)
    except EngineUnavailable:
        return Finding("engine", False, "not answering", unavailable_message())
    version = client.version()
    info = client.info()
    detail = f"Docker {version.get('Version')} ({info.get('Driver')}, cgroup v{info.get('CgroupVersion')})"
    return Finding("engine", True, detail)


def check_sandbox_engine() -> Finding:
    """Where sandboxes run: LabDeck's dedicated engine (user namespaces), or why not."""
    from app.sandboxes.docker import sandbox_engine

    name, address = "sandbox engine", sandbox_engine.selected_address()
    if address is None:
        reason = sandbox_engine.why_impossible()
        if sandbox_engine.selection() == "host" or reason:
            why = reason or "LABDECK_SANDBOX_ENGINE=host"
            return Finding(name, True, f"the host's engine ({why})")
        return Finding(
            name, False, "the dedicated engine is not running", "`./labdeck up` starts it."
        )
    if not sandbox_engine.answers(address):
        return Finding(name, False, f"{address} does not answer", "`./labdeck up` starts it.")
    return Finding(name, True, f"dedicated, user namespaces remapped, at {address}")


def check_runtime(settings: Settings) -> Finding:
    from app.sandboxes.docker.runtime import describe_runtime

    try:
        client = docker_client(timeout=30)
    except EngineUnavailable:
        return Finding("sandbox runtime", False, "engine down", "Start the engine first.")
    ok, detail = describe_runtime(client, settings)
    fix = (
        ""
        if ok
        else (
            "No safe profile can run an inner Docker engine here. Run `./labdeck up` as root (it "
            "starts a dedicated engine with user namespaces) or install sysbox; see the README's "
            "security model."
        )
    )
    return Finding("sandbox runtime", ok, detail, fix)


def check_images(settings: Settings) -> Finding:
    from app.sandboxes.docker.images.builder import image_status

    try:
        client = docker_client(timeout=30)
    except EngineUnavailable:
        return Finding("images", False, "engine down", "Start the engine first.")
    statuses = image_status(client)
    stale = [s.tag for s in statuses if not (s.present and s.up_to_date)]
    if stale:
        return Finding(
            "images",
            False,
            "missing or outdated: " + ", ".join(stale),
            "Build them with `./labdeck images build` (offline: about 3 minutes).",
        )
    return Finding("images", True, f"{len(statuses)} images up to date")


def check_database(settings: Settings) -> Finding:
    path = settings.database_path
    if not path.exists():  # a fresh checkout: the first start makes it, nothing to fix
        return Finding("database", True, f"{path} is created at the first start (not yet)")
    engine = db.make_engine(path)
    try:
        revision = db.current_revision(engine)
    finally:
        engine.dispose()
    head = db.head_revision(path)
    if revision != head:
        return Finding(
            "database",
            False,
            f"at revision {revision}, code expects {head}",
            "Run `./labdeck db upgrade` (a backup is made first).",
        )
    return Finding("database", True, f"{path} at revision {head}")


def check_disk(settings: Settings, docker_root: Path = Path("/var/lib/docker")) -> Finding:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    places = [settings.data_dir] + ([docker_root] if docker_root.exists() else [])
    lowest = min((shutil.disk_usage(p).free / 1e9, str(p)) for p in places)
    if lowest[0] < MIN_FREE_GB:
        return Finding(
            "disk",
            False,
            f"{lowest[0]:.1f} GB free under {lowest[1]}",
            f"Free at least {MIN_FREE_GB:.0f} GB: `./labdeck sandboxes prune`, "
            "`docker image prune`, or move LABDECK_DATA_DIR.",
        )
    return Finding(
        "disk", True, f"{lowest[0]:.0f} GB free (lowest of {', '.join(map(str, places))})"
    )


def check_content(settings: Settings) -> Finding:
    from app.lessons.loader import find_workshops
    from app.lessons.validate import check_workshop

    workshops = find_workshops(settings.content_dir)
    if not workshops:
        return Finding(
            "content",
            False,
            f"no workshop under {settings.content_dir}",
            "Add one (see content/README.md) or set LABDECK_CONTENT_DIR.",
        )
    problems = [p for path in workshops for p in check_workshop(path)]
    if problems:
        return Finding(
            "content",
            False,
            f"{len(problems)} problems, first: {problems[0]}",
            "Run `./labdeck content check` for the full list.",
        )
    return Finding("content", True, f"{len(workshops)} workshop(s) valid")


def run_doctor(settings: Settings) -> list[Finding]:
    checks: list[Callable[[], Finding]] = [
        check_engine,
        check_sandbox_engine,
        lambda: check_runtime(settings),
        lambda: check_images(settings),
        lambda: check_database(settings),
        lambda: check_disk(settings),
        lambda: check_content(settings),
    ]
    findings = []
    for check in checks:
        try:
            findings.append(check())
        except Exception as error:  # a doctor reports, it does not crash
            name = getattr(check, "__name__", "check").removeprefix("check_")
            findings.append(
                Finding(name, False, f"{error.__class__.__name__}: {error}", "See the log above.")
            )
    return findings

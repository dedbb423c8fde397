"""`labdeck doctor`: every thing a class needs, checked, each failure with the fix. What the
sandbox backend needs (Docker: engine, runtime profile, images) its own module checks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from app import db
from app.backup import damage_report
from app.config import Settings
from app.sandboxes import backends
from app.sandboxes.base import Finding

MIN_FREE_GB = 5.0


def check_database(settings: Settings) -> Finding:
    path = settings.database_path
    if not path.exists():  # a fresh checkout: the first start makes it, nothing to fix
        return Finding("database", True, f"{path} is created at the first start (not yet)")
    damage = damage_report(settings)
    if damage is not None:  # a corrupt file: say which backup to restore, and how
        return Finding("database", False, *damage)
    engine = db.make_engine(path)
    try:
        revision = db.current_revision(engine)
    finally:
        engine.dispose()
    head = db.head_revision()
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
        *backends.doctor_checks(settings),  # the engine, its runtime, its images
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

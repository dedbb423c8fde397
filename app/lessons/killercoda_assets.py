"""Killercoda's ``assets``: which files of the scenario's assets/ folder go where in the sandbox.

``{"file": "greet.sh", "target": "/usr/local/bin/", "chmod": "+x"}`` under ``host01``: ``file`` is
a name or a glob (a folder brings its files), ``target`` the folder they go in, ``chmod`` an
optional mode. They become the workshop's setup ``files`` (issue 15).
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from typing import Any

from pydantic import ValidationError

from app.lessons.killercoda_report import ImportReport
from app.lessons.schema import ASSETS_DIR, SetupFile

_CHMOD = re.compile(r"^([0-7]{3,4}|[ugoa]*[-+=][rwxXst]+)$")


def setup_files(assets: Any, found: list[str], report: ImportReport) -> list[dict[str, str]]:
    """host01's asset entries ({"file": glob, "target": folder, "chmod": mode}) as setup files."""
    entries = assets.get("host01") if isinstance(assets, dict) else None
    files: dict[str, dict[str, str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        pattern, target = str(entry.get("file") or ""), str(entry.get("target") or "")
        matched = [name for name in found if _matches(name, pattern)]
        if not target.startswith("/") or not matched:
            report.add(f"asset {json.dumps(entry)}: no file or no absolute target; not copied")
            continue
        mode = str(entry.get("chmod") or "")
        if mode and not _CHMOD.match(mode):
            report.add(
                f"asset {pattern}: chmod `{mode}` is not a mode LabDeck understands; dropped"
            )
            mode = ""
        for name in matched:
            destination = posixpath.join(target, _below_match(name, pattern))
            files[destination] = {"source": f"{ASSETS_DIR}/{name}", "target": destination}
            if mode:
                files[destination]["mode"] = mode
    if any(target.startswith("/root/") for target in files):
        report.add(
            "assets copied to /root, as Killercoda does: the attendee (`learner`) reads them "
            "there with sudo"
        )
    return [spec for spec in files.values() if _valid(spec, report)]


def _valid(spec: dict[str, str], report: ImportReport) -> bool:
    try:
        SetupFile.model_validate(spec)
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        report.add(f"asset {spec['source']} to {spec['target']}: {reason}; not copied")
        return False
    return True


def _matches(name: str, pattern: str) -> bool:
    """Killercoda's `file`: a name or a glob of the assets folder; a folder brings its files."""
    if not pattern:
        return False
    parts = name.split("/")
    return any(fnmatch.fnmatch("/".join(parts[:end]), pattern) for end in range(1, len(parts) + 1))


def _below_match(name: str, pattern: str) -> str:
    """What of ``name`` goes below the target folder: the matched file or folder, with its
    contents' paths, as `cp -r` would copy it."""
    parts = name.split("/")
    for end in range(1, len(parts) + 1):
        if fnmatch.fnmatch("/".join(parts[:end]), pattern):
            return "/".join(parts[end - 1 :])
    return parts[-1]

"""A workshop's ``assets/`` folder: the one folder of a workshop the page may load files from.

Lessons refer to its files as authors (and Killercoda) write them, relative to the lesson file:
``![diagram](assets/flow.png)`` or ``./assets/flow.png``. A lesson is served at
``/lessons/<slug>``, where such a path would lead nowhere, so the renderer points them at
``/workshop/assets/...`` (``asset_url``), which ``GET /workshop/assets/{path}`` serves through
``asset_file``: files inside assets/ only (never workshop.yaml, a lesson or proofs.yaml, which
hold the join code, checks and solutions), no way out of it.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from pathlib import Path

from app.lessons.schema import ASSETS_DIR

ASSETS_URL = "/workshop/assets/"
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# Served as themselves (SVG too: the route's Content-Security-Policy keeps its scripts from
# running); other types that a browser could run in the portal's origin are sent as text.
_SAFE_TYPES = re.compile(r"^(image/|video/|audio/|application/pdf$)")
# Sent with every asset: nothing in it runs script or loads anything, even opened on its own.
ASSET_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


def asset_path(href: str) -> str | None:
    """``assets/...`` for a relative link into the assets folder (``./`` and ``a/../`` allowed);
    None for anything else (another site, an absolute path, a lesson, a way out)."""
    if not href or href.startswith(("/", "#", "?")) or _URL_SCHEME.match(href):
        return None
    path = re.split(r"[?#]", href, maxsplit=1)[0]
    normal = posixpath.normpath(path)
    if normal.split("/")[0] != ASSETS_DIR or normal == ASSETS_DIR:
        return None
    return normal


def asset_url(href: str) -> str | None:
    """Where the page loads ``href`` from, when it is a file of the assets folder."""
    path = asset_path(href)
    if path is None:
        return None
    rest = href[len(re.split(r"[?#]", href, maxsplit=1)[0]) :]
    return ASSETS_URL + path.removeprefix(ASSETS_DIR + "/") + rest


def asset_file(workshop_dir: Path, relative: str) -> Path | None:
    """The file at ``relative`` inside the workshop's assets folder; None when there is none,
    or when the path (or a symbolic link on it) leads out of that folder."""
    folder = (workshop_dir / ASSETS_DIR).resolve()
    if not relative or "\0" in relative or relative.startswith("/"):
        return None
    file = (folder / relative).resolve()
    if not file.is_relative_to(folder) or not file.is_file():
        return None
    return file


def media_type(file: Path) -> str:
    """Images (SVG too), audio, video and PDF as what they are; text files (scripts, configs,
    HTML, which could run script in the portal's origin) as plain text; the rest as bytes."""
    guessed, _ = mimetypes.guess_type(file.name)
    if guessed and _SAFE_TYPES.match(guessed):
        return guessed
    if guessed and (guessed.startswith("text/") or guessed.endswith(("+xml", "/json", "/xml"))):
        return "text/plain; charset=utf-8"
    if file.suffix in (".sh", ".yaml", ".yml", ".md", ".py", ".conf", ".txt", ".toml", ".ini", ""):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"

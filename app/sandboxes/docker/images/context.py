"""What goes into a build: the recipe's files, the host's extra CA certificates, and the
content hash over both (plus the build arguments) that tells whether an image is current."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

# Debian's place for local CA certificates; users behind a TLS-inspecting proxy put its CA here.
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
# The folder a build context carries them in (unless its recipe says otherwise); Dockerfiles
# COPY it to HOST_CA_DIR.
CONTEXT_CA_DIR = "extra-ca"
# Editor and Python leftovers must not make an image look outdated.
_IGNORED_NAMES = {"__pycache__", ".DS_Store"}
_IGNORED_SUFFIXES = (".pyc", ".swp", "~")


def find_extra_ca_files(ca_dir: Path = HOST_CA_DIR) -> list[Path]:
    """The host's extra CA certificates (``*.crt``, recursively), in a stable order."""
    if not ca_dir.is_dir():
        return []
    return sorted(path for path in ca_dir.rglob("*.crt") if path.is_file())


def recipe_files(recipe_dir: Path) -> list[Path]:
    """Every file of a recipe folder, relative to it, sorted."""
    files = []
    for path in recipe_dir.rglob("*"):
        relative = path.relative_to(recipe_dir)
        if not path.is_file() or _is_ignored(relative):
            continue
        files.append(relative)
    return sorted(files)


def _is_ignored(relative: Path) -> bool:
    return any(part in _IGNORED_NAMES for part in relative.parts) or relative.name.endswith(
        _IGNORED_SUFFIXES
    )


def content_hash(
    recipe_dir: Path,
    build_args: Mapping[str, str],
    ca_files: Iterable[Path] = (),
    ca_dir: Path = HOST_CA_DIR,
) -> str:
    """sha256 over the recipe's files, the build arguments and the extra CA files."""
    digest = hashlib.sha256()

    def add(kind: str, name: str, data: bytes) -> None:
        # Length-prefixed fields: no two different inputs can produce the same byte stream.
        for field in (kind.encode(), name.encode(), data):
            digest.update(len(field).to_bytes(8, "big"))
            digest.update(field)

    for relative in recipe_files(recipe_dir):
        add("file", relative.as_posix(), (recipe_dir / relative).read_bytes())
    add("build-args", "", json.dumps(dict(build_args), sort_keys=True).encode())
    for ca_file in ca_files:
        add("ca", _ca_name(ca_file, ca_dir), ca_file.read_bytes())
    return "sha256:" + digest.hexdigest()


def _ca_name(ca_file: Path, ca_dir: Path) -> str:
    try:
        return ca_file.relative_to(ca_dir).as_posix()
    except ValueError:
        return ca_file.name


def assemble_context(
    recipe_dir: Path,
    destination: Path,
    ca_files: Iterable[Path] = (),
    ca_dir: Path = HOST_CA_DIR,
    ca_folder: str = CONTEXT_CA_DIR,
) -> Path:
    """Copy the recipe and the CA files (into ``ca_folder``) into ``destination``; returns it."""
    for relative in recipe_files(recipe_dir):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(recipe_dir / relative, target)
    ca_target = destination / ca_folder
    ca_target.mkdir(parents=True, exist_ok=True)
    for ca_file in ca_files:
        target = ca_target / _ca_name(ca_file, ca_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_file, target)
    return destination

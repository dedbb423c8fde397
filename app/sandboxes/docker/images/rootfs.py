"""The offline base image: a debootstrap'd Debian bookworm, imported into the engine.

No registry answers offline, so nothing can start ``FROM debian``. debootstrap needs only the
Debian mirror the machine's apt already uses; the imported image is the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import docker

SUITE = "bookworm"
VARIANT = "minbase"
# Part of the base image's content hash: bump it when _finish_rootfs changes.
LAYOUT_VERSION = "slim-1"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
_CHUNK = 1 << 20
SLIM_EXCLUDED_DIRS = (
    "usr/share/doc",
    "usr/share/groff",
    "usr/share/info",
    "usr/share/linda",
    "usr/share/lintian/overrides",
    "usr/share/locale",
    "usr/share/man",
)

LineCallback = Callable[[str], None]


class RootfsError(RuntimeError):
    """The base rootfs could not be made; the message says what to do."""


def detect_mirror(
    sources_list: Path = APT_SOURCES, sources_dir: Path = APT_SOURCES_DIR, path_name: str = "debian"
) -> str | None:
    """The first http(s) ``.../debian`` URI of the machine's apt sources, if any."""
    files = [sources_list] if sources_list.is_file() else []
    if sources_dir.is_dir():
        files += sorted(sources_dir.glob("*.list")) + sorted(sources_dir.glob("*.sources"))
    for path in files:
        uris = _deb822_uris(path) if path.suffix == ".sources" else _one_line_uris(path)
        for uri in uris:
            parsed = urlparse(uri)
            if parsed.scheme in ("http", "https") and parsed.path.rstrip("/").endswith(
                "/" + path_name
            ):
                return uri.rstrip("/")
    return None


def _one_line_uris(path: Path) -> Iterator[str]:
    for line in path.read_text(errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options such as [signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if words:
            yield words[0]


def _deb822_uris(path: Path) -> Iterator[str]:
    for stanza in path.read_text(errors="replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            yield from fields.get("uris", "").split()


def debootstrap_path() -> str:
    # /usr/sbin may be missing from PATH for a non-login shell.
    found = shutil.which("debootstrap") or shutil.which(
        "debootstrap", path="/usr/sbin:/sbin:/usr/local/sbin"
    )
    if not found:
        raise RootfsError(
            "debootstrap is not installed, and the offline base image needs it. "
            "Install it with `apt-get install debootstrap` (./labdeck up does this), "
            "or build online with `labdeck images build --online`."
        )
    if os.geteuid() != 0:
        raise RootfsError(
            "debootstrap must run as root to make the offline base image. "
            "Run `labdeck images build` as root, or build online with --online."
        )
    return found


def make_base_image(
    client: docker.DockerClient,
    mirror: str,
    security_mirror: str | None,
    repository: str,
    tag: str,
    changes: list[str],
    on_line: LineCallback,
    overlay: Path | None = None,
) -> str:
    """debootstrap a rootfs into a temp dir, lay ``overlay`` over it, import it; returns the
    new image id."""
    debootstrap = debootstrap_path()
    workdir = Path(tempfile.mkdtemp(prefix="labdeck-rootfs-"))
    rootfs = workdir / "rootfs"
    try:
        _run_debootstrap(debootstrap, rootfs, mirror, on_line)
        _finish_rootfs(rootfs, mirror, security_mirror, overlay)
        on_line("importing the rootfs into the engine")
        return _import_rootfs(client, rootfs, repository, tag, changes)
    finally:
        _remove_rootfs(workdir)


def _run_debootstrap(debootstrap: str, rootfs: Path, mirror: str, on_line: LineCallback) -> None:
    command = [debootstrap, f"--variant={VARIANT}", SUITE, str(rootfs), mirror]
    last_lines: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            last_lines = [*last_lines[-14:], line]
            on_line(line)
    if process.returncode != 0:
        log = "\n".join(last_lines)
        raise RootfsError(
            f"debootstrap failed (exit {process.returncode}) with mirror {mirror}. Check that the "
            f"mirror answers (`curl -I {mirror}/dists/{SUITE}/Release`). Last output:\n{log}"
        )


def _finish_rootfs(
    rootfs: Path, mirror: str, security_mirror: str | None, overlay: Path | None
) -> None:
    """Make the rootfs look like the official slim image: all bookworm suites, the overlay's
    apt and dpkg settings, no documentation, no apt caches."""
    if overlay and overlay.is_dir():
        shutil.copytree(overlay, rootfs, dirs_exist_ok=True)
    _remove_documentation(rootfs)
    suites = f"{SUITE} {SUITE}-updates"
    stanzas = [_sources_stanza(mirror, suites)]
    if security_mirror:
        stanzas.append(_sources_stanza(security_mirror, f"{SUITE}-security"))
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text("\n".join(stanzas))
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / cache).glob("*"):
            if entry.is_file():
                entry.unlink()


def _remove_documentation(rootfs: Path) -> None:
    # What the overlay's dpkg path-excludes keep out from now on; copyright files stay.
    for folder in SLIM_EXCLUDED_DIRS:
        for entry in sorted((rootfs / folder).glob("*"), reverse=True):
            if folder == "usr/share/doc" and entry.is_dir() and (entry / "copyright").exists():
                for item in entry.iterdir():
                    if item.name != "copyright":
                        _remove(item)
            else:
                _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _sources_stanza(uri: str, suites: str) -> str:
    return (
        f"Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def _import_rootfs(
    client: docker.DockerClient, rootfs: Path, repository: str, tag: str, changes: list[str]
) -> str:
    command = ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        stream = tar.stdout

        def chunks() -> Iterator[bytes]:
            while chunk := stream.read(_CHUNK):
                yield chunk

        answer = client.api.import_image(
            src=chunks(), repository=repository, tag=tag, changes=changes, stream_src=True
        )
    if '"error"' in str(answer):
        raise RootfsError(f"the engine refused the rootfs import: {answer}")
    if tar.returncode != 0:
        raise RootfsError(f"tar of the rootfs failed (exit {tar.returncode})")
    image = client.images.get(f"{repository}:{tag}")
    return str(image.id)


def _remove_rootfs(workdir: Path) -> None:
    # debootstrap mounts /proc (and /sys) inside the target; never delete through a mount.
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(workdir) + "/")
    ]
    for mount_point in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False)
    shutil.rmtree(workdir, ignore_errors=True)

"""Build LabDeck's images from the recipes, idempotently.

Every image carries a content hash label over its inputs; an image that is present with the
expected hash is not built again (unless forced). Offline, the recipes build on a debootstrap
base (see ``rootfs``); online, on the official ``debian:bookworm-slim``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from app.sandboxes.docker.images import rootfs
from app.sandboxes.docker.images.catalog import (
    BASE_RECIPE,
    OFFLINE_BASE_TAG,
    RECIPES,
    Recipe,
    get_recipe,
)
from app.sandboxes.docker.images.context import assemble_context, content_hash, find_extra_ca_files
from app.sandboxes.docker.images.mode import Mode, ModeSetting, detect_mode, resolve_mode

# (recipe name, one line of build output)
ProgressCallback = Callable[[str, str], None]

__all__ = [
    "BuildResult",
    "ImageBuildError",
    "ImageStatus",
    "build_all",
    "build_recipe",
    "detect_mode",
    "ensure_base",
    "image_status",
]

LABEL_BUILT_LOCALLY = "io.labdeck.built-locally"
LABEL_RECIPE = "io.labdeck.recipe"
LABEL_HASH = "io.labdeck.content-hash"
LABEL_MODE = "io.labdeck.mode"
# Set by the recipes' build stages (multi-stage Dockerfiles), whose images stay behind.
LABEL_BUILD_STAGE = "io.labdeck.build-stage"
_LOG_LINES_KEPT = 20


class ImageBuildError(RuntimeError):
    """A recipe failed to build; ``log_lines`` are the last lines of its output."""

    def __init__(self, recipe: str, reason: str, log_lines: Iterable[str] = ()) -> None:
        self.recipe = recipe
        self.log_lines = list(log_lines)
        tail = "\n".join(f"  | {line}" for line in self.log_lines)
        super().__init__(
            f"Building image {recipe!r} failed: {reason}" + (f"\n{tail}" if tail else "")
        )


@dataclass(frozen=True)
class BuildResult:
    recipe: str
    tag: str
    image_id: str
    built: bool
    seconds: float
    mode: Mode


@dataclass(frozen=True)
class ImageStatus:
    recipe: str
    tag: str
    present: bool
    up_to_date: bool
    size: int | None
    created: str | None
    mode: str | None


def labels_for(recipe: str, digest: str, mode: Mode) -> dict[str, str]:
    return {LABEL_BUILT_LOCALLY: "true", LABEL_RECIPE: recipe, LABEL_HASH: digest, LABEL_MODE: mode}


def _inspect(client: docker.DockerClient, tag: str) -> dict[str, Any] | None:
    try:
        return client.api.inspect_image(tag)
    except ImageNotFound:
        return None


def _labels(inspected: dict[str, Any] | None) -> dict[str, str]:
    if inspected is None:
        return {}
    return (inspected.get("Config") or {}).get("Labels") or {}


def _mirrors(mirror: str | None) -> tuple[str, str | None]:
    main = mirror or rootfs.detect_mirror() or rootfs.DEFAULT_MIRROR
    return main, rootfs.detect_mirror(path_name="debian-security")


def base_hash(mirror: str | None = None) -> str:
    main, security = _mirrors(mirror)
    inputs = {"MIRROR": main, "SECURITY_MIRROR": security or "", "SUITE": rootfs.SUITE}
    # LAYOUT: bump when rootfs.py changes what it does to the debootstrap'd tree.
    inputs |= {"VARIANT": rootfs.VARIANT, "LAYOUT": rootfs.LAYOUT_VERSION}
    return content_hash(get_recipe(BASE_RECIPE).folder, inputs)


def _build_args(mode: Mode) -> dict[str, str]:
    return {"BASE": OFFLINE_BASE_TAG} if mode == "offline" else {}


def expected_hash(client: docker.DockerClient, recipe: Recipe, mode: Mode) -> str:
    """The hash an up-to-date image of ``recipe`` carries in ``mode``."""
    if recipe.name == BASE_RECIPE and mode == "offline":
        return base_hash()
    hashed_args = _build_args(mode) | ({"target": recipe.target} if recipe.target else {})
    if mode == "offline":
        # A rebuilt base must rebuild everything on top of it.
        base = _inspect(client, OFFLINE_BASE_TAG)
        hashed_args["base-image-id"] = base["Id"] if base else ""
    return content_hash(recipe.folder, hashed_args, find_extra_ca_files())


def _tag_all(client: docker.DockerClient, image_id: str, tags: Iterable[str]) -> None:
    for tag in tags:
        repository, _, name = tag.rpartition(":")
        client.api.tag(image_id, repository, name)


def _remove_if_dangling(client: docker.DockerClient, image_id: str | None) -> None:
    """Drop the image a rebuild replaced, unless something still uses it."""
    if not image_id:
        return
    try:
        if not client.api.inspect_image(image_id).get("RepoTags"):
            client.api.remove_image(image_id)
    except (APIError, ImageNotFound):
        pass  # in use by a container or a child image, or already gone


def _remove_old_images(client: docker.DockerClient, recipe: str) -> None:
    """Drop untagged leftovers of ``recipe``: images replaced while a container still used
    them, and all but the newest build stage (which is the next build's cache)."""
    replaced = client.api.images(filters={"dangling": True, "label": f"{LABEL_RECIPE}={recipe}"})
    for image in replaced:
        # Build stages inherit the base's labels; they are handled below.
        if LABEL_BUILD_STAGE not in (image.get("Labels") or {}):
            _remove_if_dangling(client, image["Id"])
    filters = {"dangling": True, "label": f"{LABEL_BUILD_STAGE}={recipe}"}
    stages = sorted(client.api.images(filters=filters), key=lambda image: image["Created"])
    for stage in stages[:-1]:
        _remove_if_dangling(client, stage["Id"])


def ensure_base(
    client: docker.DockerClient,
    mirror: str | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> BuildResult:
    """The offline base (debootstrap + import), tagged as the base and as the workshop debian."""
    started = time.monotonic()
    recipe = get_recipe(BASE_RECIPE)
    digest = base_hash(mirror)
    current = _inspect(client, OFFLINE_BASE_TAG)
    if current and not force and _labels(current).get(LABEL_HASH) == digest:
        _tag_all(client, current["Id"], [recipe.tag])
        return BuildResult(
            recipe.name, recipe.tag, current["Id"], False, _since(started), "offline"
        )
    main, security = _mirrors(mirror)
    label_text = " ".join(
        f'{key}="{value}"' for key, value in labels_for(recipe.name, digest, "offline").items()
    )
    changes = [f"LABEL {label_text}", 'CMD ["bash"]']
    repository, _, tag = OFFLINE_BASE_TAG.rpartition(":")

    def on_line(line: str) -> None:
        if progress:
            progress(recipe.name, line)

    try:
        image_id = rootfs.make_base_image(
            client, main, security, repository, tag, changes, on_line, recipe.folder / "rootfs"
        )
    except (rootfs.RootfsError, DockerException) as error:
        raise ImageBuildError(recipe.name, str(error)) from error
    _tag_all(client, image_id, [recipe.tag])
    _remove_if_dangling(client, current["Id"] if current else None)
    return BuildResult(recipe.name, recipe.tag, image_id, True, _since(started), "offline")


def build_recipe(
    client: docker.DockerClient,
    recipe: Recipe | str,
    mode: Mode,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    """Build one recipe unless an up-to-date image is present; offline, the base comes first."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if mode == "offline":
        base = ensure_base(client, progress=progress, force=force and recipe.name == BASE_RECIPE)
        if recipe.name == BASE_RECIPE:
            return base
    started = time.monotonic()
    digest = expected_hash(client, recipe, mode)
    current = _inspect(client, recipe.tag)
    if current and not force and _labels(current).get(LABEL_HASH) == digest:
        _remove_old_images(client, recipe.name)
        return BuildResult(recipe.name, recipe.tag, current["Id"], False, _since(started), mode)
    with tempfile.TemporaryDirectory(prefix=f"labdeck-build-{recipe.name}-") as workdir:
        context = assemble_context(
            recipe.folder, Path(workdir), find_extra_ca_files(), ca_folder=recipe.extra_ca_folder
        )
        image_id = _stream_build(client, recipe, context, mode, digest, force, progress)
    _remove_if_dangling(client, current["Id"] if current else None)
    _remove_old_images(client, recipe.name)
    return BuildResult(recipe.name, recipe.tag, image_id, True, _since(started), mode)


def _stream_build(
    client: docker.DockerClient,
    recipe: Recipe,
    context: Path,
    mode: Mode,
    digest: str,
    no_cache: bool,
    progress: ProgressCallback | None,
) -> str:
    last_lines: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(context),
            dockerfile=recipe.dockerfile,
            target=recipe.target,
            tag=recipe.tag,
            labels=labels_for(recipe.name, digest, mode),
            buildargs=_build_args(mode),
            decode=True,
            rm=True,
            forcerm=True,
            pull=False,
            nocache=no_cache,
        ):
            if "error" in chunk:
                raise ImageBuildError(recipe.name, str(chunk["error"]).strip(), last_lines)
            for line in str(chunk.get("stream") or chunk.get("status") or "").splitlines():
                if line.strip():
                    last_lines = [*last_lines[-(_LOG_LINES_KEPT - 1) :], line.rstrip()]
                    if progress:
                        progress(recipe.name, line.rstrip())
    except DockerException as error:
        raise ImageBuildError(recipe.name, str(error), last_lines) from error
    built = _inspect(client, recipe.tag)
    if built is None:
        raise ImageBuildError(
            recipe.name, "the engine reported no error but made no image", last_lines
        )
    return str(built["Id"])


def build_all(
    client: docker.DockerClient,
    mode: ModeSetting = "auto",
    force: bool = False,
    only: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
) -> list[BuildResult]:
    """Build every recipe (or those named in ``only``) in catalog order."""
    resolved = resolve_mode(mode)
    wanted = set(only) if only else None
    for name in wanted or ():
        get_recipe(name)  # unknown names fail before anything is built
    recipes = [recipe for recipe in RECIPES if wanted is None or recipe.name in wanted]
    return [build_recipe(client, recipe, resolved, force, progress) for recipe in recipes]


def image_status(client: docker.DockerClient) -> list[ImageStatus]:
    """Each recipe's image: present, built from the current recipe, size, mode."""
    statuses = []
    for recipe in RECIPES:
        inspected = _inspect(client, recipe.tag)
        labels = _labels(inspected)
        mode = labels.get(LABEL_MODE)
        up_to_date = (
            inspected is not None
            and mode in ("offline", "online")
            and labels.get(LABEL_HASH)
            == expected_hash(client, recipe, "offline" if mode == "offline" else "online")
        )
        statuses.append(
            ImageStatus(
                recipe.name,
                recipe.tag,
                inspected is not None,
                up_to_date,
                inspected.get("Size") if inspected else None,
                inspected.get("Created") if inspected else None,
                mode,
            )
        )
    return statuses


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)

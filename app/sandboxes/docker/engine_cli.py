"""`labdeck engine`: start LabDeck's dedicated sandbox engine (``sandbox_engine.py``) and give it
the images, or say why sandboxes run on the host's engine instead."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from app.config import Settings
from app.sandboxes.docker import sandbox_engine
from app.sandboxes.docker.engine import EngineUnavailable, docker_client, host_address
from app.sandboxes.docker.images.catalog import OFFLINE_BASE_TAG, RECIPES

console = Console(stderr=True)
engine_app = typer.Typer(help="The dedicated sandbox engine.", no_args_is_help=True)


def image_tags() -> list[str]:
    return [OFFLINE_BASE_TAG, *(recipe.tag for recipe in RECIPES)]


@engine_app.command()
def up() -> None:
    """Start the dedicated engine unless it runs (idempotent); copy the host engine's images."""
    choice, reason = sandbox_engine.selection(), sandbox_engine.why_impossible()
    if choice == "host" or (choice == "auto" and reason):
        why = "LABDECK_SANDBOX_ENGINE=host" if choice == "host" else reason
        console.print(
            f"Sandboxes run on the host's engine ({why}); the userns profile needs the dedicated one."
        )
        return
    try:
        where = sandbox_engine.ensure_running(Settings().data_dir)
    except sandbox_engine.SandboxEngineError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
    console.print(f"Dedicated sandbox engine: {where.address} (log: {where.log})")
    _warn_when_uncapped(where.address)
    _copy_images_from_host(where.address)


@engine_app.command()
def run(
    bridge: str = typer.Option(..., help="The engine's own bridge (at most 15 characters)."),
    bridge_address: str = typer.Option(
        ..., help="Its address with prefix, e.g. 10.215.0.1/24 (the registry listens there)."
    ),
    exec_root: Path = typer.Option(Path("/run/labdeck-engine"), help="dockerd's exec root."),
    build_images: bool = typer.Option(True, help="Build missing or outdated images first."),
) -> None:
    """Run the dedicated engine in the foreground until SIGTERM, as compose.yaml's engine
    service does: images, cgroup delegation, and nothing left on the host when it stops."""
    import logging

    from docker.errors import DockerException

    from app.sandboxes.docker import engine_service
    from app.sandboxes.docker.images.builder import ImageBuildError
    from app.sandboxes.docker.network import FirewallError

    logging.basicConfig(level=logging.INFO, format="labdeck engine: %(message)s")
    service = engine_service.EngineService(
        socket=sandbox_engine.socket_path(),
        data_root=sandbox_engine.places(Path(".")).data_root,
        exec_root=exec_root,
        bridge=bridge,
        bridge_address=bridge_address,
        build_images=build_images,
    )
    try:
        code = engine_service.run(service, Settings())
    except (
        engine_service.EngineServiceError,
        sandbox_engine.SandboxEngineError,  # the disk cap cannot be had
        ImageBuildError,
        FirewallError,
        DockerException,
        OSError,
    ) as error:
        # One line, however long: the container's log has no terminal width to wrap at.
        console.print(f"[red]The sandbox engine stopped: {error}[/]", soft_wrap=True)
        raise typer.Exit(1) from error
    raise typer.Exit(code)


@engine_app.command()
def stop() -> None:
    """Stop the dedicated engine (its sandboxes stop with it; `up` starts it again)."""
    stopped = sandbox_engine.stop(Settings().data_dir)
    console.print("Stopped the dedicated sandbox engine." if stopped else "It was not running.")


def _warn_when_uncapped(address: str) -> None:
    import docker

    from app.sandboxes.docker import disk

    client = docker.DockerClient(base_url=address, timeout=30)
    try:
        driver = client.info().get("Driver")
    finally:
        client.close()
    root = sandbox_engine.places(Settings().data_dir).data_root
    if driver == disk.STORAGE_DRIVER and disk.rescan_if_inconsistent(root):
        console.print("Rescanned the disk cap's quota groups (btrfs had marked them inconsistent).")
    if disk.wanted() and driver != disk.STORAGE_DRIVER:
        console.print(
            "[yellow]This engine was started without the disk cap; `labdeck engine stop`, "
            "then `labdeck engine up`, applies it (sandboxes stop meanwhile).[/]"
        )


def _copy_images_from_host(address: str) -> None:
    import docker

    try:
        host = docker_client(timeout=600, address=host_address())
    except EngineUnavailable:
        return  # nothing to copy: `labdeck images build` builds them there
    target = docker.DockerClient(base_url=address, timeout=600)
    try:
        copied = sandbox_engine.copy_images(host, target, image_tags())
    finally:
        host.close()
        target.close()
    if copied:
        console.print("Copied from the host engine: " + ", ".join(copied))

"""Connect the sandbox service to a Docker engine: runtime profile, sandbox network, workshop
registry, then a ``DockerBackend``. This is the one door from engine-neutral code into Docker:
``app/sandboxes/backends.py`` names it and lists the functions it keeps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import typer
from docker.errors import DockerException

from app.config import Settings
from app.lessons.schema import Workshop
from app.sandboxes import naming
from app.sandboxes.base import Connection, SandboxError
from app.sandboxes.docker.backend import DockerBackend, DockerBackendConfig
from app.sandboxes.docker.doctor import doctor_checks as doctor_checks
from app.sandboxes.docker.engine import EngineUnavailable, docker_client, engine_address
from app.sandboxes.docker.images import catalog
from app.sandboxes.docker.images.catalog import get_recipe
from app.sandboxes.docker.network import guard_sandbox_network, teardown_network
from app.sandboxes.docker.registry import RegistryError, WorkshopRegistry, remove_registry
from app.sandboxes.docker.runtime import detect_runtime, risk_of

log = logging.getLogger("labdeck.sandboxes")
REGISTRY_CHECK_SECONDS = 60.0


def workshop_images(workshop: Workshop | None) -> list[tuple[str, str]]:
    """``(local tag, name attendees pull)`` for each image the workshop lists with a recipe (one
    without is pulled from upstream by a pull-through registry, or not at all offline)."""
    images = []
    for ref in workshop.meta.images if workshop else []:
        if ref.recipe is None:
            continue
        try:
            local_tag = get_recipe(ref.recipe).tag
        except ValueError:
            local_tag = f"labdeck/workshop/{ref.name}"
        images.append((local_tag, ref.name))
    return images


def image_recipes() -> dict[str, str]:
    """The images the workshop registry can carry offline: name attendees pull -> recipe."""
    return {
        recipe.workshop_name: recipe.name
        for recipe in catalog.workshop_images()
        if recipe.workshop_name
    }


def prepare_docker(
    settings: Settings, extra_labels: Mapping[str, str] | None = None
) -> tuple[DockerBackend, WorkshopRegistry]:
    """Runtime profile, sandbox network and the registry's place: what a DockerBackend needs.
    Blocks; raises (EngineUnavailable, RuntimeUnavailable, FirewallError...) with a sentence."""
    client = docker_client()
    profile = detect_runtime(
        client, settings.sandbox_image, settings.data_dir, settings.sandbox_runtime
    )
    log.info("sandboxes run under the %s runtime profile on %s", profile, engine_address())
    if risk_of(profile):
        log.warning("runtime profile %s: %s", profile, risk_of(profile))
    network = guard_sandbox_network(client, settings, extra_labels)
    beside = settings.registry_address is not None  # compose.yaml's registry service
    registry = WorkshopRegistry(
        client,
        settings.instance,
        network,
        settings.registry_port,
        settings.registry_proxy_remoteurl,
        extra_labels=extra_labels,
        seed_port=settings.registry_seed_port if beside else None,
    )
    config = DockerBackendConfig.from_settings(
        settings,
        runtime=profile,
        registry_mirror=registry.mirror_url(),
        network=network.name,
        extra_labels=extra_labels,
    )
    return DockerBackend(config), registry


def remove_docker_setup(settings: Settings, extra_labels: Mapping[str, str] | None = None) -> None:
    """Undo ``prepare_docker`` for a throw-away instance (benchmarks, tests): its registry with
    its data, and its network. Missing ones count as removed. Blocks."""
    client = docker_client()
    try:
        remove_registry(client, settings.instance, data=True)
        teardown_network(
            client, settings.instance, guard_image=settings.sandbox_image, extra_labels=extra_labels
        )
    finally:
        client.close()


async def connect(
    settings: Settings,
    workshop: Callable[[], Workshop | None],
    extra_labels: Mapping[str, str] | None = None,
) -> Connection:
    """A DockerBackend, with the workshop registry started, seeded and watched beside it; it
    carries the images of the workshop ``workshop()`` serves, reloaded or not."""
    backend, registry = await asyncio.to_thread(prepare_docker, settings, extra_labels)
    backend.registry = registry
    backend.sandbox_image = settings.sandbox_image

    def images() -> list[tuple[str, str]]:
        return workshop_images(workshop())

    return Connection(
        backend=backend,
        background=[lambda: keep_registry(backend, registry, images)],
        close=backend.aclose,
    )


async def connect_throwaway(
    settings: Settings, workshop: Workshop, extra_labels: Mapping[str, str] | None = None
) -> Connection:
    """A DockerBackend for a throw-away instance, its registry running and seeded before it
    returns (a sandbox's first pull must not race the seeding); ``close`` removes the registry
    and the network, once the caller removed its sandboxes."""
    try:
        backend, registry = await asyncio.to_thread(prepare_docker, settings, extra_labels)
    except BaseException:
        await asyncio.to_thread(remove_docker_setup, settings, extra_labels)
        raise

    async def close() -> None:
        await backend.aclose()
        await asyncio.to_thread(remove_docker_setup, settings, extra_labels)

    try:
        await asyncio.to_thread(registry.ensure_running)
        await asyncio.to_thread(registry.seed, workshop_images(workshop))
    except BaseException:
        await close()
        raise
    return Connection(backend=backend, close=close)


async def connect_for_maintenance(settings: Settings) -> Connection:
    """A DockerBackend that lists, stops and removes this instance's sandboxes: it needs neither
    the runtime profile nor the network, and changes nothing on the engine by connecting."""
    try:
        await asyncio.to_thread(lambda: docker_client(timeout=10).close())
    except EngineUnavailable as error:
        raise SandboxError(str(error)) from error
    config = DockerBackendConfig(
        instance=settings.instance, runtime="caps", network=naming.network_name(settings.instance)
    )
    backend = DockerBackend(config)
    return Connection(backend=backend, close=backend.aclose)


async def keep_registry(
    backend: DockerBackend, registry: WorkshopRegistry, images: Callable[[], list[tuple[str, str]]]
) -> None:
    """Start and seed the workshop registry, then check it every minute and restart it when
    it stops answering; seed it again when the workshop's images change (a reload). Sandboxes
    work meanwhile; only their pulls wait for it."""
    seeded: list[tuple[str, str]] | None = None
    while True:
        try:
            if seeded is None or not await asyncio.to_thread(registry.healthy):
                await asyncio.to_thread(registry.ensure_running)
            if (wanted := images()) != seeded:
                results = await asyncio.to_thread(registry.seed, wanted)
                log.info("workshop registry seeded: %s", [r.reference for r in results])
                seeded = wanted
            backend.registry_problem = None
        except (RegistryError, DockerException, OSError) as error:
            backend.registry_problem = str(error)
            log.warning("workshop registry: %s", error)
        await asyncio.sleep(REGISTRY_CHECK_SECONDS if seeded is not None else 15)


def add_commands(cli: typer.Typer, wanted: Callable[[str], bool]) -> None:
    """`labdeck images` and `labdeck engine`, each imported only when that command runs."""
    if wanted("images"):
        from app.sandboxes.docker.images.cli import images_app

        cli.add_typer(images_app, name="images")
    if wanted("engine"):
        from app.sandboxes.docker.engine_cli import engine_app

        cli.add_typer(engine_app, name="engine")


def build_images(settings: Settings) -> None:
    """Build the images that are missing or outdated, in the mode LABDECK_IMAGES_MODE says."""
    from app.sandboxes.docker.images.cli import build

    build(offline=False, online=False, force=False, only=[])


def teardown(settings: Settings, instance: str, *, dry_run: bool = False) -> list[str]:
    """Containers, volumes, network, registry and firewall rules of ``instance`` (teardown.py)."""
    from app.sandboxes.docker import teardown as teardown_module

    image = settings.sandbox_image
    if dry_run:
        return teardown_module.plan(instance, image)
    return teardown_module.teardown(instance, image)


def teardown_stale(settings: Settings, *, dry_run: bool = False) -> list[str]:
    """Firewall rules of instances whose network is gone, and chains of bridges that are gone."""
    from app.sandboxes.docker import teardown as teardown_module

    image = settings.sandbox_image
    if dry_run:
        stale = teardown_module.stale_instances(image)
        return [f"firewall rules of {instance} (no network left)" for instance in stale]
    return teardown_module.teardown_stale(image)

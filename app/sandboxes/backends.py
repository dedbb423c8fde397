"""The sandbox backend chosen by name, as JupyterHub chooses its spawner class.

Each backend is a package (or module) with these functions:

- ``async def connect(settings, workshop) -> Connection``: everything the portal needs to make
  sandboxes; ``workshop()`` gives the workshop served at the time of asking (an author's edit
  reloads it), so what the backend keeps for it (the registry's images) follows;
- ``async def connect_for_maintenance(settings) -> Connection``: enough to list, stop and remove
  them, as the CLI does; raises ``SandboxError`` with a sentence when the engine does not answer;
- ``async def connect_throwaway(settings, workshop, labels) -> Connection``: for a throw-away
  instance (`content verify`, benchmarks, proofs; app/sandboxes/lab.py): everything set up
  before it returns, ``labels`` on all it makes, and its ``close`` removes what it set up;
  when it fails, it leaves nothing behind;
- ``def doctor_checks(settings) -> list[Callable[[], Finding]]``: what `labdeck doctor` checks
  of it (its engine, images...), each check blocking and returning one ``Finding``;
- ``def add_commands(cli, wanted) -> None``: its own `labdeck` sub-commands, if any (Docker's
  `images` and `engine`), added to ``cli`` only when ``wanted(name)``, so a command pays only
  for its own imports;
- ``def build_images(settings) -> None``: what `serve --build-images` does (blocks).
- ``def image_recipes() -> dict[str, str]``: the images its registry carries offline, each
  name attendees pull with the recipe that builds it (what workshop.yaml's ``images`` lists).
- ``def teardown(settings, instance, *, dry_run) -> list[str]``: remove everything that
  instance made (on the engines and the host), one line per thing removed; with ``dry_run``
  what would be; ``teardown_stale(settings, *, dry_run)`` the same for what instances that no
  longer exist left behind (firewall rules). Both block and are idempotent.

Adding a backend means a package and a line in ``BACKENDS``; nothing else changes. Nothing
outside a backend's package imports it (``tests/test_layout.py``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType

import typer

from app.config import Settings
from app.lessons.schema import Workshop
from app.sandboxes.base import Connection, Finding

BACKENDS = {
    "docker": "app.sandboxes.docker.connect",
    "fake": "app.sandboxes.fake",
}


def backend_module(name: str) -> ModuleType:
    return importlib.import_module(BACKENDS[name])


async def connect(settings: Settings, workshop: Callable[[], Workshop | None]) -> Connection:
    """Connect the backend named by ``settings.sandbox_backend``; raises with a sentence when
    its engine cannot be reached (the service retries)."""
    module = backend_module(settings.sandbox_backend)
    connection: Connection = await module.connect(settings, workshop)
    return connection


async def connect_for_maintenance(settings: Settings) -> Connection:
    module = backend_module(settings.sandbox_backend)
    connection: Connection = await module.connect_for_maintenance(settings)
    return connection


async def connect_throwaway(
    settings: Settings, workshop: Workshop, labels: Mapping[str, str]
) -> Connection:
    module = backend_module(settings.sandbox_backend)
    connection: Connection = await module.connect_throwaway(settings, workshop, labels)
    return connection


def doctor_checks(settings: Settings) -> list[Callable[[], Finding]]:
    checks: list[Callable[[], Finding]] = backend_module(settings.sandbox_backend).doctor_checks(
        settings
    )
    return checks


def add_commands(cli: typer.Typer, wanted: Callable[[str], bool]) -> None:
    """Every backend's own sub-commands, whichever backend serves: `labdeck images build` is
    run before any portal (by `./labdeck up`), and `--help` should list them all."""
    for name in BACKENDS:
        backend_module(name).add_commands(cli, wanted)


def build_images(settings: Settings) -> None:
    backend_module(settings.sandbox_backend).build_images(settings)


def image_recipes(settings: Settings) -> dict[str, str]:
    recipes: dict[str, str] = backend_module(settings.sandbox_backend).image_recipes()
    return recipes


def teardown(settings: Settings, instance: str, *, dry_run: bool = False) -> list[str]:
    module = backend_module(settings.sandbox_backend)
    removed: list[str] = module.teardown(settings, instance, dry_run=dry_run)
    return removed


def teardown_stale(settings: Settings, *, dry_run: bool = False) -> list[str]:
    module = backend_module(settings.sandbox_backend)
    removed: list[str] = module.teardown_stale(settings, dry_run=dry_run)
    return removed

"""What `labdeck doctor` checks of the Docker backend: the engine, where sandboxes run, the
runtime profile and the images, each failure with its fix."""

from __future__ import annotations

from collections.abc import Callable

from app.config import Settings
from app.sandboxes.base import Finding
from app.sandboxes.docker import sandbox_engine
from app.sandboxes.docker.engine import EngineUnavailable, docker_client, unavailable_message

NO_SAFE_PROFILE = (
    "No safe profile can run an inner Docker engine here. Run `./labdeck up` as root (it "
    "starts a dedicated engine with user namespaces) or install sysbox; see the README's "
    "security model."
)


def doctor_checks(settings: Settings) -> list[Callable[[], Finding]]:
    return [
        check_engine,
        check_sandbox_engine,
        lambda: check_runtime(settings),
        lambda: check_disk_cap(settings),
        check_images,
    ]


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
    return Finding("sandbox runtime", ok, detail, "" if ok else NO_SAFE_PROFILE)


def check_disk_cap(settings: Settings) -> Finding:
    """Whether one attendee filling their disk fills only their own sandbox. An uncapped
    engine can still serve a class, so this never fails the doctor: it says what is missing."""
    from app.sandboxes.docker import disk

    name, quota = "disk cap", settings.sandbox_disk_quota
    if not quota:
        return Finding(
            name,
            True,
            "off (LABDECK_SANDBOX_DISK_QUOTA is empty): an attendee can fill the host's disk",
        )
    try:
        client = docker_client(timeout=30)
    except EngineUnavailable:
        return Finding(name, False, "engine down", "`./labdeck up` starts it.")
    try:
        driver = client.info().get("Driver")
    finally:
        client.close()
    if driver != disk.STORAGE_DRIVER:
        return Finding(
            name,
            True,
            f"{quota} wanted, but the sandbox engine runs on {driver} without it: "
            "`./labdeck engine stop`, then `./labdeck up`, applies it",
        )
    root = sandbox_engine.places(settings.data_dir).data_root
    kind = "simple quotas" if disk.has_simple_quotas(root) else "full quota groups"
    return Finding(name, True, f"{quota} per sandbox (btrfs {kind} at {root})")


def check_images() -> Finding:
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

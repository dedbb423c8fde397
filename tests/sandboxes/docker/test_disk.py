"""The disk cap (issue 13): on the dedicated engine's btrfs data root, an attendee who fills
their sandbox gets "Disk quota exceeded" there, while a neighbour and the host carry on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandboxes.base import Limits
from app.sandboxes.docker import disk, sandbox_engine
from app.sandboxes.docker.containers import storage_supports_quota
from app.sandboxes.docker.engine import docker_client
from tests.support.docker_lab import Lab, open_lab, run

pytestmark = pytest.mark.docker
CAP = Limits(disk_quota="2g")  # the sandbox image's 0.5 GB counts too


def test_btrfs_takes_a_quota_and_overlay2_on_ext4_does_not() -> None:
    assert storage_supports_quota({"Driver": "btrfs"})
    ext4 = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}
    assert not storage_supports_quota(ext4)


def test_the_image_lives_beside_the_data_root() -> None:
    assert disk.image_path(Path("/var/lib/labdeck/engine")) == Path("/var/lib/labdeck/engine.btrfs")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    address = sandbox_engine.selected_address()
    if not disk.wanted():
        pytest.skip("the disk cap is opt-in: set LABDECK_SANDBOX_DISK_QUOTA (e.g. 10g)")
    if address is None:
        pytest.fail("The disk cap needs the dedicated engine: ./labdeck test starts it.")
    client = docker_client(timeout=600, address=address)
    if client.info()["Driver"] != disk.STORAGE_DRIVER:
        pytest.fail("The dedicated engine runs without its capped btrfs data root: restart it.")
    disk.rescan_if_inconsistent(sandbox_engine.places(Path("data")).data_root)
    made = open_lab(client, "userns", "disk")  # seeded: the inner engine pulls busybox
    yield made
    made.close()


def test_filling_the_disk_stops_at_the_cap_in_that_sandbox_only(lab: Lab) -> None:
    filler, neighbour = run(lab.ready_sandbox("filler", CAP)), run(lab.ready_sandbox("next", CAP))
    fill = "fallocate -l 1G ~/one && echo first-ok; sudo fallocate -l 1G /two 2>&1"
    output = run(lab.backend.exec(filler, fill)).output
    assert "first-ok" in output and "Disk quota exceeded" in output, output
    to_the_brim = "sudo dd if=/dev/zero of=/fill bs=1M 2>&1"
    assert "Disk quota exceeded" in run(lab.backend.exec(filler, to_the_brim, timeout=120)).output
    inner = run(lab.backend.exec(filler, "docker run --rm busybox true 2>&1", timeout=60)).output
    assert "quota" in inner.lower() or "space" in inner.lower(), inner
    room = run(lab.backend.exec(neighbour, "fallocate -l 1G ~/one && echo ok")).output
    assert "ok" in room, room


def test_the_inner_engine_keeps_its_images_inside_the_cap(lab: Lab) -> None:
    name = run(lab.ready_sandbox("inner", CAP))
    info = "stat -f -c %T /var/lib/docker; docker info --format '{{.Driver}}'"
    assert run(lab.backend.exec(name, info)).output.split() == ["btrfs", "overlay2"]
    pulled = run(lab.backend.exec(name, "docker run --rm busybox echo inner-ok", timeout=120))
    assert "inner-ok" in pulled.output, pulled.output

"""The disk cap (issue 13): on the dedicated engine's btrfs data root, an attendee who fills
their sandbox gets "Disk quota exceeded" there, while a neighbour and the host carry on."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandboxes.base import Limits
from app.sandboxes.docker import disk, sandbox_engine
from app.sandboxes.docker.containers import storage_supports_quota
from app.sandboxes.docker.engine import docker_client
from tests.support.docker_lab import Lab, open_lab, run

pytestmark = pytest.mark.docker
# Under simple quotas only what the sandbox writes counts (under full quota groups, on kernels
# before 6.7, the sandbox image's 0.5 GB counts too): 1 GB fits, a second one cannot.
CAP = Limits(disk_quota="2g")


def test_btrfs_takes_a_quota_and_overlay2_on_ext4_does_not() -> None:
    assert storage_supports_quota({"Driver": "btrfs"})
    ext4 = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}
    assert not storage_supports_quota(ext4)


def test_the_image_lives_beside_the_data_root() -> None:
    assert disk.image_path(Path("/var/lib/labdeck/engine")) == Path("/var/lib/labdeck/engine.btrfs")


@pytest.fixture
def btrfs_mount(tmp_path: Path) -> Iterator[Path]:
    """A small btrfs file system on a sparse image, mounted under ``tmp_path``, with the full
    quota groups Docker would have turned on (what an engine made before simple quotas has)."""
    if shutil.which("mkfs.btrfs") is None:
        pytest.skip("mkfs.btrfs is missing (btrfs-progs)")
    image, mount = tmp_path / "fs.img", tmp_path / "fs"
    with image.open("wb") as sparse:
        sparse.truncate(1 << 30)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    mount.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        subprocess.run(["btrfs", "quota", "enable", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def btrfs(*arguments: str) -> None:
    subprocess.run(["btrfs", *arguments], check=True, capture_output=True)


def test_simple_quotas_replace_full_ones_and_hold_after_a_subvolume_goes(btrfs_mount: Path) -> None:
    assert not disk.has_simple_quotas(btrfs_mount)
    assert disk.ensure_simple_quotas(btrfs_mount)
    assert disk.ensure_simple_quotas(btrfs_mount)  # idempotent
    base, layer = btrfs_mount / "image", btrfs_mount / "sandbox"
    btrfs("subvolume", "create", str(base))
    (base / "shared").write_bytes(b"x" * (40 << 20))
    btrfs("subvolume", "snapshot", str(base), str(layer))  # as Docker makes a container's layer
    btrfs("qgroup", "limit", "30M", str(layer))
    btrfs("subvolume", "delete", str(base))  # what made full quota groups inconsistent
    # The 40 MB shared with the image do not count against the layer; its own writes do.
    (layer / "fits").write_bytes(b"y" * (20 << 20))
    with pytest.raises(OSError, match="quota"), (layer / "too-much").open("wb") as out:
        for _ in range(20):
            out.write(b"z" * (1 << 20))
            out.flush()  # each megabyte reaches the file system, and its quota, at once


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    address = sandbox_engine.selected_address()
    if not disk.wanted():
        pytest.skip("the disk cap is turned off: LABDECK_SANDBOX_DISK_QUOTA is empty")
    if address is None:
        pytest.fail("The disk cap needs the dedicated engine: ./labdeck test starts it.")
    client = docker_client(timeout=600, address=address)
    if client.info()["Driver"] != disk.STORAGE_DRIVER:
        pytest.fail("The dedicated engine runs without its capped btrfs data root: restart it.")
    root = sandbox_engine.places(Path("data")).data_root
    assert disk.has_simple_quotas(root), "the capped engine should run on simple quotas"
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

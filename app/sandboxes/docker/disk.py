"""A disk cap per sandbox that holds on an ordinary ext4 host (issue 13).

When ``LABDECK_SANDBOX_DISK_QUOTA`` is set, the dedicated engine keeps its data on a btrfs file
system in a sparse image beside its data root (``<root>.btrfs``, loop-mounted at every engine
start) and uses Docker's btrfs storage driver. There ``--storage-opt size=`` is a btrfs quota
group on the sandbox's own subvolume, and the sandbox's inner engine keeps its images in that
same subvolume (no separate volume: its rootfs is a plain btrfs directory, where overlay2
works), so the one limit covers its home, everything written with sudo, and every image and
container the attendee makes. Reaching it, the attendee gets "Disk quota exceeded" in their own
sandbox; the host and the other sandboxes carry on. The image is sized at 80 % of the free space
when it is made, so the sandboxes together cannot fill the host's file system either.

Why btrfs: this kernel has no quota support for xfs or ext4 (``XFS: quota support not available
in this kernel``), while btrfs quota groups need none.

Simple quotas (Linux 6.7 and later; measured here on 6.18): the file system is switched to them
before the engine starts. With btrfs's full quota groups, deleting a container's subvolume could
mark them inconsistent ("qgroup marked inconsistent" in dmesg), and then no limit held until a
rescan (19 s here under load); simple quotas never need one, and they count only what the sandbox
itself writes, not the image data its subvolume shares with the sandbox image. Debian 12's
btrfs-progs (6.2) cannot switch them on, so this does it with the kernel's ioctl. On an older
kernel the full quota groups remain, with the rescan at every ``labdeck engine up``.

Everything here blocks and needs root.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_SHARE_OF_FREE_SPACE = 0.8
DEFAULT_QUOTA = "10g"  # the workshop's images and builds fit with room to spare
STORAGE_DRIVER = "btrfs"
# BTRFS_IOC_QUOTA_CTL = _IOWR(0x94, 40, struct {u64 cmd; u64 status}), and its command that
# turns simple quotas on (include/uapi/linux/btrfs.h).
QUOTA_CTL = 0xC0109428
ENABLE_SIMPLE_QUOTA = 4


class DiskCapError(RuntimeError):
    """The capped data root cannot be made; the message says what is missing."""


def wanted() -> bool:
    """Whether sandboxes get a disk cap (read before any Settings, as the engine starts)."""
    return bool(os.environ.get("LABDECK_SANDBOX_DISK_QUOTA", DEFAULT_QUOTA).strip())


def image_path(root: Path) -> Path:
    return root.with_name(root.name + ".btrfs")


def is_btrfs_mount(root: Path) -> bool:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == str(root) and fields[2] == "btrfs":
            return True
    return False


def ensure_capped_root(root: Path) -> None:
    """Mount ``root`` as btrfs from its image, made once. A data root made earlier on the host's
    file system is moved aside (``<root>.uncapped``; remove it to get the space back). Idempotent."""
    if is_btrfs_mount(root):
        ensure_simple_quotas(root)
        return
    if shutil.which("mkfs.btrfs") is None:
        raise DiskCapError("mkfs.btrfs is missing (Debian: apt-get install btrfs-progs)")
    image = image_path(root)
    if not image.exists():
        _make_image(image)
    _unmount_below(root)  # a stopped dockerd leaves its data root's bind mount behind
    if root.exists() and any(root.iterdir()):
        aside = root.with_name(root.name + ".uncapped")
        root.rename(aside)
        log.warning("the uncapped data root was moved aside to %s", aside)
    root.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-o", "loop", str(image), str(root)])
    ensure_simple_quotas(root)


def ensure_simple_quotas(root: Path) -> bool:
    """Switch the mounted btrfs at ``root`` to simple quotas, before the engine starts; whether
    they are on. Full quota groups found there are turned off first (the kernel keeps them
    otherwise): the sandboxes made under them lose their cap until they are made again.
    False when this kernel has none (older than 6.7): Docker then turns full ones on itself."""
    if has_simple_quotas(root):
        return True
    if _full_quotas_on(root):
        log.warning("switching %s from full quota groups to simple quotas", root)
        _run(["btrfs", "quota", "disable", str(root)])
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(descriptor, QUOTA_CTL, bytearray(struct.pack("QQ", ENABLE_SIMPLE_QUOTA, 0)))
    except OSError as error:
        log.warning("this kernel has no btrfs simple quotas (%s): full quota groups it is", error)
        return False
    finally:
        os.close(descriptor)
    return has_simple_quotas(root)


def has_simple_quotas(root: Path) -> bool:
    """Whether the btrfs mounted at ``root`` carries the simple-quota feature (its sysfs flag)."""
    found = subprocess.run(["findmnt", "-no", "UUID", str(root)], capture_output=True, text=True)
    uuid = found.stdout.strip()
    return bool(uuid) and Path(f"/sys/fs/btrfs/{uuid}/features/simple_quota").exists()


def _full_quotas_on(root: Path) -> bool:
    shown = subprocess.run(["btrfs", "qgroup", "show", str(root)], capture_output=True, text=True)
    return shown.returncode == 0


def rescan_if_inconsistent(root: Path) -> bool:
    """Rescan the quota groups when btrfs says they are inconsistent (full quota groups only:
    simple ones never are); whether it did."""
    shown = subprocess.run(["btrfs", "qgroup", "show", str(root)], capture_output=True, text=True)
    if "inconsistent" not in shown.stderr + shown.stdout:
        return False
    _run(["btrfs", "quota", "rescan", "-w", str(root)])
    return True


def _unmount_below(root: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        _run(["umount", "-l", point])


def _make_image(image: Path) -> None:
    image.parent.mkdir(parents=True, exist_ok=True)
    size = int(shutil.disk_usage(image.parent).free * IMAGE_SHARE_OF_FREE_SPACE)
    with image.open("wb") as sparse:
        sparse.truncate(size)
    _run(["mkfs.btrfs", "-q", str(image)])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = " ".join(done.stderr.split())  # one line: the engine's error is one line
        raise DiskCapError(f"{' '.join(command)} failed: {said}")

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
in this kernel``), while btrfs quota groups need none. The limit counts the sandbox image's
shared data (about 0.5 GB) too.

Known limit (measured here, kernel 6.18): deleting a container's subvolume can mark the quota
groups inconsistent ("qgroup marked inconsistent" in dmesg), and then no limit is enforced until
a rescan (``btrfs quota rescan -w``, 19 s here under load). ``labdeck engine up`` rescans when it
finds them so; a portal running for hours does not yet. So the cap is opt-in.

Everything here blocks and needs root.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_SHARE_OF_FREE_SPACE = 0.8
DEFAULT_QUOTA = ""  # opt-in: see "Known limit" above
STORAGE_DRIVER = "btrfs"


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


def rescan_if_inconsistent(root: Path) -> bool:
    """Rescan the quota groups when btrfs says they are inconsistent; whether it did."""
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
        raise DiskCapError(f"{' '.join(command)} failed: {done.stderr.strip()}")

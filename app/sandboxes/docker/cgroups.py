"""Cgroup delegation: hand a sandbox's own cgroup directories to its (remapped) root, so that the
inner engine's runc can make cgroups for inner containers (issue 13).

Under the ``userns`` profile the sandbox's root is an unprivileged host uid, and the cgroup
directories Docker makes for the sandbox belong to the host's root: runc inside cannot create
child cgroups until they are chowned to the remapped root. The sandbox's init waits for this
(``labdeck-init``, ``wait_for_cgroup_delegation``) before it starts the inner engine.

- cgroup v1 (this host): every hierarchy's ``<mount>/<path>`` from ``/proc/<pid>/cgroup``, with
  its ``cgroup.procs`` and ``tasks``. Tested here.
- cgroup v2: the container's directory and its ``cgroup.procs``, ``cgroup.threads`` and
  ``cgroup.subtree_control`` (the kernel's delegation model); the init then moves itself into a
  leaf. Untested here: this kernel mounts v1.

Limits set from outside stay in force: their files in the sandbox's directory stay the host
root's, and a child cgroup can only narrow them. Blocks; needs root on the host.
"""

from __future__ import annotations

import os
from pathlib import Path

# An engine label (``docker info``): the engine delegates its containers' cgroups itself
# (``engine_service.py``), so the portal need not, and in another container cannot.
ENGINE_DELEGATES = "io.labdeck.delegates-cgroups=true"
V2_DELEGATED_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")
V1_DELEGATED_FILES = ("cgroup.procs", "tasks")


def cgroup_mounts(mounts_text: str) -> list[tuple[str, frozenset[str]]]:
    """``(mount point, options)`` of each cgroup hierarchy in ``/proc/mounts`` text; cgroup2's
    options are the empty set."""
    found = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            options = frozenset(fields[3].split(",")) if fields[2] == "cgroup" else frozenset()
            found.append((fields[1], options))
    return found


def cgroup_dirs(cgroup_text: str, mounts_text: str) -> list[tuple[Path, bool]]:
    """``(directory, is_v2)`` of each hierarchy a process is in, from its ``/proc/<pid>/cgroup``."""
    mounts = cgroup_mounts(mounts_text)
    found = []
    for line in cgroup_text.splitlines():
        _hierarchy, controllers, path = line.split(":", 2)
        if not path.strip("/"):
            continue  # at a hierarchy's root: never hand that out
        wanted = frozenset(controllers.split(",")) if controllers else frozenset()
        for mount_point, options in mounts:
            if (wanted and wanted <= options) or (not wanted and not options):
                found.append((Path(mount_point + path.rstrip("/")), not wanted))
                break
    return found


def delegate(pid: int, uid: int, gid: int) -> list[Path]:
    """Chown the cgroup directories of process ``pid`` to ``uid:gid``; the directories done."""
    cgroup_text = Path(f"/proc/{pid}/cgroup").read_text()
    mounts_text = Path("/proc/self/mounts").read_text()
    done = []
    for directory, is_v2 in cgroup_dirs(cgroup_text, mounts_text):
        _chown_delegated(directory, uid, gid, v2=is_v2)
        done.append(directory)
    return done


def _chown_delegated(directory: Path, uid: int, gid: int, *, v2: bool) -> None:
    """The directory (so runc inside can make child cgroups) and the files that move processes,
    never the limit files: the sandbox's root must not raise its own limits."""
    os.chown(directory, uid, gid)
    for name in V2_DELEGATED_FILES if v2 else V1_DELEGATED_FILES:
        entry = directory / name
        if entry.is_file():
            os.chown(entry, uid, gid)


# Every sandbox of LabDeck's engine lives under this cgroup (dockerd's --cgroup-parent), whose CPU
# weight is a quarter of Docker's default: when the machine is full, the portal, the engines and
# the host come first. Measured with 100 attendees arriving in 30 s on 2 cores, the portal got
# about half a core and a join took 1.7 s (p95) while the sandboxes took the rest; sandboxes
# among themselves still share equally, and an idle machine gives them everything.
SANDBOX_PARENT = "labdeck-sandboxes"
SANDBOX_CPU_SHARES = 256  # cgroup v1; Docker's default for a container is 1024
SANDBOX_CPU_WEIGHT = 25  # cgroup v2: the same share of its default of 100


def ensure_sandbox_parent(mounts_text: str | None = None) -> list[Path]:
    """Make the sandboxes' parent cgroup with its low CPU weight, in the hierarchies that weigh
    CPU (v1 ``cpu``, or v2 with the cpu controller); the weight files written. Idempotent."""
    if mounts_text is None:
        mounts_text = Path("/proc/self/mounts").read_text()
    written = []
    for mount_point, options in cgroup_mounts(mounts_text):
        v2 = not options
        if not v2 and "cpu" not in options:
            continue
        root = Path(mount_point)
        if v2 and "cpu" not in _v2_controllers(root):
            continue
        parent = root / SANDBOX_PARENT
        parent.mkdir(exist_ok=True)
        weight_file = parent / ("cpu.weight" if v2 else "cpu.shares")
        weight_file.write_text(f"{SANDBOX_CPU_WEIGHT if v2 else SANDBOX_CPU_SHARES}\n")
        written.append(weight_file)
    return written


def _v2_controllers(root: Path) -> set[str]:
    controllers = root / "cgroup.subtree_control"
    return set(controllers.read_text().split()) if controllers.is_file() else set()

"""Cgroup delegation: which directories a sandbox gets, parsed from /proc text; then for real,
an inner container's limits under the userns profile while the sandbox's own limits hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.sandboxes.docker import cgroups
from app.sandboxes.docker.containers import remapped_root_of

V1_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
V1_PROCESS = """\
9:name=systemd:/docker/abc
4:memory:/docker/abc
1:cpu:/docker/abc
0::/docker/abc
"""


def test_v1_every_hierarchy_and_the_hybrid_unified_one() -> None:
    assert cgroups.cgroup_dirs(V1_PROCESS, V1_MOUNTS) == [
        (Path("/sys/fs/cgroup/systemd/docker/abc"), False),
        (Path("/sys/fs/cgroup/memory/docker/abc"), False),
        (Path("/sys/fs/cgroup/cpu/docker/abc"), False),
        (Path("/sys/fs/cgroup/unified/docker/abc"), True),
    ]


def test_v2_the_container_s_directory() -> None:
    mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
    assert cgroups.cgroup_dirs("0::/system.slice/docker-abc.scope\n", mounts) == [
        (Path("/sys/fs/cgroup/system.slice/docker-abc.scope"), True)
    ]


def test_a_hierarchy_root_is_never_handed_out() -> None:
    assert cgroups.cgroup_dirs("4:memory:/\n0::/\n", V1_MOUNTS) == []


def test_joined_controllers_match_their_joined_mount() -> None:
    mounts = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
    assert cgroups.cgroup_dirs("2:cpu,cpuacct:/docker/x\n", mounts) == [
        (Path("/sys/fs/cgroup/cpu,cpuacct/docker/x"), False)
    ]


def test_chown_hands_v2_only_the_delegation_files(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    for name in ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "memory.max"):
        (tmp_path / name).write_text("")
    cgroups._chown_delegated(tmp_path, 100000, 100000, v2=True)
    owners = {entry.name: entry.stat().st_uid for entry in tmp_path.iterdir()}
    assert owners == {
        "cgroup.procs": 100000,
        "cgroup.threads": 100000,
        "cgroup.subtree_control": 100000,
        "memory.max": 0,  # the limit set from outside stays the host root's
    }
    assert tmp_path.stat().st_uid == 100000


def test_remapped_root_of_this_process_is_root() -> None:
    assert remapped_root_of(os.getpid()) == (0, 0)

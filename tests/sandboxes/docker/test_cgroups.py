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


def test_v1_hands_over_the_directory_and_process_files_never_the_limits(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    for name in ("cgroup.procs", "tasks", "memory.limit_in_bytes"):
        (tmp_path / name).write_text("")
    cgroups._chown_delegated(tmp_path, 100000, 100000, v2=False)
    owners = {entry.name: entry.stat().st_uid for entry in tmp_path.iterdir()}
    assert owners == {"cgroup.procs": 100000, "tasks": 100000, "memory.limit_in_bytes": 0}


@pytest.mark.docker
def test_limits_hold_from_outside_and_inner_limits_work() -> None:
    from app.sandboxes.base import Limits
    from app.sandboxes.docker import sandbox_engine
    from app.sandboxes.docker.engine import docker_client
    from tests.support.docker_lab import open_lab, run

    address = sandbox_engine.selected_address()
    if address is None:
        pytest.fail("./labdeck test starts the dedicated engine; it is not running")
    lab = open_lab(docker_client(timeout=600, address=address), "userns", "cgroups")
    try:
        name = run(lab.ready_sandbox("limits", Limits(memory="768m", pids=300)))
        raise_own = (
            "sudo sh -c 'echo -1 > /sys/fs/cgroup/memory/memory.limit_in_bytes' 2>&1; "
            "sudo sh -c 'echo max > /sys/fs/cgroup/pids/pids.max' 2>&1; "
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
        )
        output = run(lab.backend.exec(name, raise_own)).output
        assert output.split()[-2:] == [str(768 * 1024**2), "300"], output
        inner = "docker run --rm -m 64m busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        assert str(64 * 1024**2) in run(lab.backend.exec(name, inner, timeout=120)).output
    finally:
        lab.close()


def test_the_sandboxes_parent_weighs_less_in_every_cpu_hierarchy(tmp_path: Path) -> None:
    (tmp_path / "cpu,cpuacct").mkdir()
    (tmp_path / "memory").mkdir()
    (tmp_path / "unified").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    mounts = (
        f"cgroup {tmp_path}/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n"
        f"cgroup {tmp_path}/memory cgroup rw,relatime,memory 0 0\n"
        f"cgroup2 {tmp_path}/unified cgroup2 rw,relatime 0 0\n"  # hybrid: no cpu controller
        f"cgroup2 {tmp_path}/v2 cgroup2 rw,relatime 0 0\n"
    )
    written = cgroups.ensure_sandbox_parent(mounts)
    parent = cgroups.SANDBOX_PARENT
    assert written == [
        tmp_path / "cpu,cpuacct" / parent / "cpu.shares",
        tmp_path / "v2" / parent / "cpu.weight",
    ]
    assert written[0].read_text() == "256\n" and written[1].read_text() == "25\n"
    assert cgroups.ensure_sandbox_parent(mounts) == written  # idempotent


@pytest.mark.docker
def test_sandboxes_of_the_running_engine_sit_in_the_low_weight_parent() -> None:
    """Under load the portal must come first (measured: a join took 1.7 s at p95 with 100
    attendees arriving in 30 s on 2 cores when sandboxes weighed as much as the portal)."""
    import docker

    from app.sandboxes.docker import sandbox_engine
    from app.sandboxes.docker.images.catalog import get_recipe
    from tests.support.docker_lab import TEST_LABELS

    address = sandbox_engine.selected_address()
    if address is None:
        pytest.fail("./labdeck test starts the dedicated engine; it is not running")
    client = docker.DockerClient(base_url=address, timeout=120)
    image = get_recipe("busybox").tag
    container = client.containers.run(
        image, ["sleep", "30"], detach=True, labels=TEST_LABELS, auto_remove=True
    )
    try:
        container.reload()
        cgroup_text = Path(f"/proc/{container.attrs['State']['Pid']}/cgroup").read_text()
        cpu_line = next(line for line in cgroup_text.splitlines() if ":cpu" in line)
        assert cpu_line.split(":", 2)[2].startswith(f"/{cgroups.SANDBOX_PARENT}/"), cgroup_text
        shares = next(
            Path(mount) / cgroups.SANDBOX_PARENT / "cpu.shares"
            for mount, options in cgroups.cgroup_mounts(Path("/proc/self/mounts").read_text())
            if "cpu" in options
        )
        assert int(shares.read_text()) == cgroups.SANDBOX_CPU_SHARES
    finally:
        container.remove(force=True)

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import aclosing

import docker
import pytest
from docker.errors import NotFound

from app.sandboxes.base import (
    OUTPUT_LIMIT,
    Limits,
    SandboxBackend,
    SandboxError,
    SandboxGone,
    SandboxSpec,
    SandboxState,
)
from app.sandboxes.docker.backend import DockerBackend, DockerBackendConfig
from app.sandboxes.docker.containers import ignore_done, limits_host_config, storage_supports_quota
from app.sandboxes.docker.exec import READY_PROBE, OutputTail, guarded
from app.sandboxes.docker.status import stats_from_cgroup, stats_from_docker
from tests.support.docker_lab import SANDBOX_IMAGE, TEST_LABELS, Lab, run

pytestmark = pytest.mark.anyio
S = SandboxState


# -- without an engine ---------------------------------------------------------------------


def test_docker_backend_keeps_the_contract() -> None:
    backend = DockerBackend(DockerBackendConfig("test-x", "caps", "test-x-sandboxes"))
    assert isinstance(backend, SandboxBackend)


def test_mirror_host_is_an_insecure_registry() -> None:
    config = DockerBackendConfig("i", "caps", "n", registry_mirror="http://172.18.0.1:5055")
    assert config.insecure_registries == ["172.18.0.1:5055"]
    assert DockerBackendConfig("i", "caps", "n").insecure_registries == []


def test_limits_become_host_config_and_quota_only_when_supported() -> None:
    limits = Limits(memory="512m", cpus=0.5, pids=300, log_size="1m", disk_quota="5g")
    config = limits_host_config(limits, disk_quota=False)
    assert config["nano_cpus"] == 500_000_000 and config["pids_limit"] == 300
    assert config["log_config"]["Config"] == {"max-size": "1m", "max-file": "1"}
    assert "storage_opt" not in config
    assert limits_host_config(limits, disk_quota=True)["storage_opt"] == {"size": "5g"}


def test_quota_needs_overlay2_on_xfs() -> None:
    xfs = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "xfs"]]}
    ext4 = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}
    assert storage_supports_quota(xfs) and not storage_supports_quota(ext4)


def test_commands_run_in_a_guarded_login_shell() -> None:
    argv = guarded(2.5, "echo hi")
    assert argv[:2] == ["sh", "-c"] and argv[-2:] == ["2.5", "echo hi"]
    assert 'setsid bash -lc "$2"' in argv[2]


def test_output_tail_keeps_the_end() -> None:
    tail = OutputTail(limit=4)
    for chunk in (b"ab", b"cd", b"ef"):
        tail.add(chunk)
    assert tail.text() == "cdef"


def test_stats_conversions() -> None:
    raw = {
        "memory_stats": {"usage": 300, "limit": 1000, "stats": {"total_inactive_file": 100}},
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300},
            "system_cpu_usage": 2000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "pids_stats": {"current": 7},
    }
    stats = stats_from_docker("s", raw)
    assert (stats.memory_bytes, stats.memory_limit_bytes, stats.pids) == (200, 1000, 7)
    assert stats.cpu_percent == 40.0
    output = "memory=300 limit=max inactive=100 pids=7\ncpu_ns=250 wall_ns=1000\n"
    assert stats_from_cgroup("s", output).cpu_percent == 25.0
    assert stats_from_cgroup("s", output).memory_limit_bytes == 0


# -- on the real engine --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(lab: Lab) -> Iterator[str]:
    """One READY sandbox for this module; creating it is timed and printed."""
    spec = lab.spec("main")

    async def create() -> list[tuple[SandboxState, float]]:
        started = time.monotonic()
        return [(state, time.monotonic() - started) async for state in lab.backend.create(spec)]

    stages = run(create())
    assert [state for state, _ in stages] == [S.CREATING, S.STARTING, S.READY]
    print(f"\ncreate -> READY: {stages[-1][1]:.2f} s")
    yield spec.name
    run(lab.backend.remove(spec.name))


def volume_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.api.inspect_volume(name)
    except NotFound:
        return False
    return True


@pytest.mark.docker
async def test_inner_engine_pulls_hello_world_through_the_offline_mirror(
    lab: Lab, sandbox: str
) -> None:
    info = await lab.backend.exec(
        sandbox, "docker info --format '{{.Name}} {{.RegistryConfig.Mirrors}}'"
    )
    assert info.exit_code == 0 and lab.registry.mirror_url() in info.output
    hello = await lab.backend.exec(sandbox, "docker run --rm hello-world", timeout=60)
    assert hello.exit_code == 0, hello.output
    assert "Hello from LabDeck" in hello.output


@pytest.mark.docker
async def test_buildkit_builds_from_an_image_only_the_offline_mirror_has(
    lab: Lab, sandbox: str
) -> None:
    # The sandbox's Docker 26 builds with BuildKit (buildx installed: no deprecation notice),
    # and BuildKit pulls the base image through the plain-http workshop mirror (20.10's asked
    # it over HTTPS and failed).
    built = await lab.backend.exec(
        sandbox,
        "mkdir -p ~/bk && printf 'FROM busybox\\nRUN echo built >/x\\n'"
        " >~/bk/Dockerfile && docker build --progress=plain -t bk-test ~/bk 2>&1"
        " && docker run --rm bk-test cat /x && docker rmi bk-test >/dev/null",
        timeout=120,
    )
    assert built.exit_code == 0, built.output
    assert built.output.rstrip().endswith("built")
    assert "DEPRECATED" not in built.output and "[2/2] RUN echo built" in built.output


@pytest.mark.docker
async def test_inner_engine_uses_legacy_iptables_when_offered_and_publishes_ports(
    lab: Lab, sandbox: str
) -> None:
    backend = await lab.backend.exec(
        sandbox,
        "cat /etc/labdeck/iptables-backend; sudo iptables --version;"
        " sudo iptables-legacy -t filter -S >/dev/null 2>&1 && echo kernel-has-legacy;"
        " sudo iptables -t nat -S POSTROUTING",
    )
    assert backend.exit_code == 0, backend.output
    if "kernel-has-legacy" in backend.output:  # as on the development VM
        assert backend.output.startswith("legacy\n") and "(legacy)" in backend.output
    assert "MASQUERADE" in backend.output  # the inner engine wrote its rules there
    published = await lab.backend.exec(
        sandbox,
        "docker run -d --name published -p 8080:80 busybox httpd -f -h /etc >/dev/null"
        " && address=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)"
        " && for _ in $(seq 50); do curl -sf http://$address:8080/hostname && break;"
        " sleep 0.1; done; docker rm -f published >/dev/null",
        timeout=60,
    )
    assert published.exit_code == 0 and published.output.strip(), published.output


@pytest.mark.docker
def test_container_carries_limits_labels_name_and_volume(lab: Lab, sandbox: str) -> None:
    attrs = lab.client.api.inspect_container(sandbox)
    host = attrs["HostConfig"]
    assert host["Memory"] == 1 << 30 and host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 1024
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-file": "1", "max-size": "10m"},
    }
    assert attrs["Config"]["Hostname"] == sandbox
    labels = attrs["Config"]["Labels"]
    assert labels["io.labdeck.instance"] == lab.instance and labels["io.labdeck.role"] == "sandbox"
    assert labels["io.labdeck.attendee"] == "" and labels["io.labdeck.test"] == "1"
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    assert env["LABDECK_SANDBOX_NAME"] == sandbox
    assert env["LABDECK_REGISTRY_MIRROR"] == lab.registry.mirror_url()
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert mounts["/var/lib/docker"]["Name"] == f"{sandbox}-docker"
    volume = lab.client.api.inspect_volume(f"{sandbox}-docker")
    assert volume["Labels"]["io.labdeck.instance"] == lab.instance


@pytest.mark.docker
async def test_exec_runs_as_learner_at_home_and_keeps_the_tail(lab: Lab, sandbox: str) -> None:
    who = await lab.backend.exec(sandbox, "echo $(id -un) $PWD; echo oops >&2; exit 4")
    # stdout and stderr are separate pipes: their relative order is not kept.
    assert who.exit_code == 4
    assert sorted(who.output.splitlines()) == ["learner /home/learner", "oops"]
    big = await lab.backend.exec(sandbox, "head -c 200000 /dev/zero | tr '\\0' a; echo END")
    assert len(big.output) == OUTPUT_LIMIT and big.output.endswith("aEND\n")


@pytest.mark.docker
async def test_exec_timeout_kills_the_command(lab: Lab, sandbox: str) -> None:
    started = time.monotonic()
    result = await lab.backend.exec(sandbox, "sleep 101 & sleep 102", timeout=2)
    assert result.timed_out and 1.9 < time.monotonic() - started < 4
    # [12] keeps pgrep's own command line from matching.
    left = await lab.backend.exec(sandbox, "pgrep -f 'sleep 10[12]' || echo none")
    assert left.output.strip() == "none"


@pytest.mark.docker
async def test_exec_stream_hands_out_output_as_it_comes(lab: Lab, sandbox: str) -> None:
    stream = lab.backend.exec_stream(sandbox, "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 3")
    arrivals = []
    async for chunk in stream:
        arrivals.append((chunk, time.monotonic()))
    assert b"".join(chunk for chunk, _ in arrivals) == b"1\n2\n3\n"
    assert arrivals[-1][1] - arrivals[0][1] > 0.5  # not all at the end
    assert stream.result.exit_code == 3 and not stream.result.timed_out


async def read_until(tty: object, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            chunk = await tty.read()  # type: ignore[attr-defined]
            assert chunk, f"the terminal ended before {needle!r}: {seen!r}"
            seen += chunk
    return seen


@pytest.mark.docker
async def test_tty_echoes_and_resizes(lab: Lab, sandbox: str) -> None:
    tty = await lab.backend.open_tty(sandbox, ["bash", "-l"])
    try:
        await tty.write(b"echo hi\n")
        await read_until(tty, b"hi\r\n")
        await tty.resize(cols=101, rows=37)
        await tty.write(b"stty size\n")
        await read_until(tty, b"37 101")
    finally:
        await tty.close()
    assert await tty.read() == b""


@pytest.mark.docker
async def test_status_list_and_idle_stats(lab: Lab, sandbox: str) -> None:
    info = await lab.backend.status(sandbox)
    assert (info.state, info.workshop, info.attendee) == (S.READY, "test", "")
    assert info.created_at is not None
    assert sandbox in [listed.name for listed in await lab.backend.list()]
    stats = await lab.backend.stats(sandbox)
    print(f"\nidle sandbox: {stats.memory_bytes / 2**20:.1f} MiB, {stats.pids} pids")
    assert 0 < stats.memory_bytes < stats.memory_limit_bytes == 1 << 30 and stats.pids > 0


@pytest.mark.docker
async def test_missing_and_foreign_names(lab: Lab) -> None:
    missing = f"{lab.instance}-sbx-nope"
    assert (await lab.backend.status(missing)).state is S.MISSING
    assert (await lab.backend.status("Not A Name")).state is S.MISSING
    assert (await lab.backend.status(lab.registry.name)).state is S.MISSING  # not a sandbox
    with pytest.raises(SandboxGone):
        await lab.backend.exec(missing, "true")
    with pytest.raises(SandboxGone):
        [state async for state in lab.backend.start(missing)]
    await lab.backend.stop(missing)
    await lab.backend.remove(missing)
    await lab.backend.remove(lab.registry.name)  # refuses silently: not ours to remove
    assert lab.registry.healthy()


@pytest.mark.docker
async def test_stop_start_keeps_files_and_images_remove_drops_everything(lab: Lab) -> None:
    name = await lab.ready_sandbox("keep")
    setup = "echo kept > ~/note && docker pull -q busybox"
    assert (await lab.backend.exec(name, setup, timeout=60)).exit_code == 0
    await lab.backend.stop(name)
    assert (await lab.backend.status(name)).state is S.STOPPED
    await lab.backend.stop(name)
    with pytest.raises(SandboxGone):
        await lab.backend.exec(name, "true")
    assert [state async for state in lab.backend.start(name)] == [S.STARTING, S.READY]
    check = await lab.backend.exec(name, "cat ~/note && docker image ls -q busybox | wc -l")
    assert check.output.split() == ["kept", "1"]
    await lab.backend.remove(name)
    await lab.backend.remove(name)
    assert (await lab.backend.status(name)).state is S.MISSING
    assert not volume_exists(lab.client, f"{name}-docker")


@pytest.mark.docker
async def test_failed_create_cleans_up_and_says_why(lab: Lab) -> None:
    # busybox has no engine: its shell exits at once and the readiness probe cannot run.
    spec = lab.spec("broken", image="labdeck/workshop/busybox:latest")
    with pytest.raises(SandboxError, match=spec.name):
        [state async for state in lab.backend.create(spec)]
    assert (await lab.backend.status(spec.name)).state is S.MISSING
    assert not volume_exists(lab.client, f"{spec.name}-docker")


@pytest.mark.docker
def test_ready_probe_waits_cheaply_and_gives_up_when_no_engine_runs(lab: Lab) -> None:
    # A sandbox-image container given a command runs it alone: no engine will ever start.
    container = lab.client.containers.run(
        SANDBOX_IMAGE, ["sleep", "60"], detach=True, labels=TEST_LABELS
    )
    try:
        timed = 'TIMEFORMAT="cpu %U %S"; time bash -c "$1"'
        code, output = container.exec_run(["bash", "-c", timed, "timed", READY_PROBE])
    finally:
        ignore_done(
            container.remove, force=True, v=True
        )  # with its anonymous /var/lib/docker volume
    text = output.decode()
    assert code == 3 and "dockerd is not running" in text, text
    # Five-odd seconds of waiting: builtins and sleeps, not a process every 50 ms.
    user, system = (float(value) for value in text.rsplit("cpu ", 1)[1].split())
    assert user + system < 0.3, text


@pytest.mark.docker
async def test_cancelled_create_leaves_nothing(lab: Lab) -> None:
    spec = lab.spec("cancelled")

    async def consume() -> None:
        async with aclosing(lab.backend.create(spec)) as stages:
            async for state in stages:
                if state is S.STARTING:
                    await asyncio.sleep(30)

    for delay in (0.01, 0.5):  # while creating the container, then while its engine starts
        task = asyncio.create_task(consume())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await lab.backend.status(spec.name)).state is S.MISSING
        assert not volume_exists(lab.client, f"{spec.name}-docker")


@pytest.mark.docker
async def test_fork_bomb_is_contained_and_the_engine_stays_responsive(lab: Lab) -> None:
    name = await lab.ready_sandbox("bomb", Limits(pids=256))
    assert lab.client.api.inspect_container(name)["HostConfig"]["PidsLimit"] == 256
    bomb = asyncio.create_task(lab.backend.exec(name, ":(){ :|:& };:", timeout=6))
    slowest = 0.0
    while not bomb.done():
        started = time.monotonic()
        assert await asyncio.to_thread(lab.client.ping)
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.sleep(0.2)
    # Killed at the timeout, or died out sooner when every fork failed: never runs on.
    assert (await bomb).seconds < 6 + 3
    assert slowest < 1.0, f"the engine took {slowest:.2f} s to answer a ping"
    after = await lab.backend.exec(name, "echo alive", timeout=10)
    assert after.output == "alive\n"
    await lab.backend.remove(name)


@pytest.mark.docker
@pytest.mark.skipif(not os.environ.get("LABDECK_BENCH"), reason="set LABDECK_BENCH=1: 10 sandboxes")
async def test_ten_sandboxes_at_once(lab: Lab) -> None:
    specs = [lab.spec(f"many{index}") for index in range(10)]
    started = time.monotonic()

    async def ready(spec: SandboxSpec) -> float:
        states = [state async for state in lab.backend.create(spec)]
        assert states[-1] is SandboxState.READY, spec.name
        return time.monotonic() - started

    times = await asyncio.gather(*(ready(spec) for spec in specs))
    assert len(times) == 10
    print(f"\n10 at once: first READY {min(times):.2f} s, last {max(times):.2f} s")
    await asyncio.gather(*(lab.backend.remove(spec.name) for spec in specs))

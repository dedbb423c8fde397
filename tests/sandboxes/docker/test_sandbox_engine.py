"""The dedicated sandbox engine: its command line, when it is chosen, and the real one."""

from __future__ import annotations

import socket
from pathlib import Path

import docker
import pytest

from app.sandboxes.docker import sandbox_engine
from app.sandboxes.docker.engine import engine_address, host_address
from app.sandboxes.docker.runtime import _remaps_users

WHERE = sandbox_engine.EnginePlaces(Path("/run/x/engine.sock"), Path("/data/root"), Path("/l"))


def test_dockerd_command_has_its_own_places_and_never_bridge_none() -> None:
    command = sandbox_engine.dockerd_command(WHERE)
    assert "--userns-remap=default" in command
    assert "--host=unix:///run/x/engine.sock" in command
    assert "--data-root=/data/root" in command
    assert f"--bridge={sandbox_engine.BRIDGE}" in command
    assert not any(arg.startswith(("--bridge=none", "-b")) for arg in command)
    assert any(arg.startswith("--exec-root=") for arg in command)
    assert any(arg.startswith("--pidfile=") for arg in command)


def test_without_a_disk_cap_the_data_root_is_a_plain_folder_for_overlay2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABDECK_SANDBOX_DISK_QUOTA", "")
    assert sandbox_engine.prepare_data_root(tmp_path / "root") == "overlay2"
    assert (tmp_path / "root").is_dir()


def test_dockerd_command_without_a_pool_names_none() -> None:
    """compose.yaml's engine: a pool would make a restart delete docker0 (engine_service.py)."""
    command = sandbox_engine.dockerd_command(
        WHERE, bridge="ldx0", address_pool=None, labels=("a=b",)
    )
    assert not any(arg.startswith("--default-address-pool") for arg in command)
    assert "--bridge=ldx0" in command and "--label=a=b" in command
    assert f"--default-address-pool={sandbox_engine.ADDRESS_POOL}" in (
        sandbox_engine.dockerd_command(WHERE)
    )


@pytest.mark.parametrize(
    ("choice", "socket_exists", "expected"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("dedicated", False, True),
        ("host", True, False),
    ],
)
def test_selection(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    choice: str,
    socket_exists: bool,
    expected: bool,
) -> None:
    path = tmp_path / "engine.sock"
    if socket_exists:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))  # the file stays after the close
    monkeypatch.setenv("LABDECK_SANDBOX_ENGINE", choice)
    monkeypatch.setenv("LABDECK_SANDBOX_ENGINE_SOCKET", str(path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert (sandbox_engine.selected_address() == f"unix://{path}") is expected
    assert (engine_address() == f"unix://{path}") is expected
    assert host_address() == "unix:///var/run/docker.sock"


def test_docker_host_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    monkeypatch.setenv("LABDECK_SANDBOX_ENGINE", "dedicated")
    assert engine_address() == "tcp://127.0.0.1:9"


def test_restore_bridge_leaves_an_existing_one_and_a_missing_one_alone() -> None:
    sandbox_engine.restore_bridge("lo", ["127.0.0.1/8"])  # exists: untouched
    sandbox_engine.restore_bridge("labdeck-none", None)  # never existed: not made
    assert Path("/sys/class/net/lo").exists()
    assert not Path("/sys/class/net/labdeck-none").exists()


@pytest.mark.docker
def test_the_running_dedicated_engine_remaps_users_and_keeps_docker0() -> None:
    address = sandbox_engine.selected_address()
    if address is None:
        pytest.fail("./labdeck test starts the dedicated engine; it is not running")
    where = sandbox_engine.ensure_running(Path("data"))  # idempotent: answers at once
    assert where.address == address
    client = docker.DockerClient(base_url=address, timeout=30)
    info = client.info()
    assert _remaps_users(info)
    assert info["DockerRootDir"].startswith(str(where.data_root))
    assert (
        Path("/sys/class/net/docker0").exists()
        or sandbox_engine.bridge_addresses("docker0") is None
    )
    assert Path(f"/sys/class/net/{sandbox_engine.BRIDGE}").exists()


def test_key_quotas_are_raised_never_lowered(tmp_path: Path) -> None:
    (tmp_path / "maxkeys").write_text("200\n")
    (tmp_path / "maxbytes").write_text("50000000\n")  # higher than wanted: left alone
    raised = sandbox_engine.raise_key_quotas(tmp_path)
    assert raised == {"maxkeys": sandbox_engine.KEY_QUOTAS["maxkeys"]}
    assert int((tmp_path / "maxkeys").read_text()) == sandbox_engine.KEY_QUOTAS["maxkeys"]
    assert (tmp_path / "maxbytes").read_text() == "50000000\n"


def test_a_read_only_sysctl_is_no_failure(tmp_path: Path) -> None:
    assert sandbox_engine.raise_key_quotas(tmp_path / "missing") == {}


@pytest.mark.docker
def test_the_running_engine_s_sandboxes_share_a_key_quota_large_enough_for_a_class() -> None:
    """All sandboxes' roots are one remapped uid: 200 keys (the kernel's default) ran out at
    30 sandboxes in `bench class` (runc makes a session keyring per container)."""
    sandbox_engine.ensure_running(Path("data"))
    for name, wanted in sandbox_engine.KEY_QUOTAS.items():
        assert int(Path(f"/proc/sys/kernel/keys/{name}").read_text()) >= wanted

"""The sandbox engine as compose.yaml runs it (engine_service.py), without an engine: its
command line, what it refuses, the socket it publishes, and the rules it sweeps. The stack run
for real is tests/test_compose.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.sandboxes.docker import cgroups, sandbox_engine
from app.sandboxes.docker.engine_service import (
    STOP_SIGNALS,
    EngineService,
    EngineServiceError,
    StopRequested,
    check_bridge,
    docker_rules_script,
    publish,
    stop_on_signals,
    unpublish,
)


def service(tmp_path: Path, bridge: str = "ldtest0") -> EngineService:
    return EngineService(
        socket=tmp_path / "engine.sock",
        data_root=tmp_path / "root",
        exec_root=tmp_path / "exec",
        bridge=bridge,
        bridge_address="10.230.0.1/24",
    )


def test_dockerd_listens_privately_remaps_users_and_says_it_delegates(tmp_path: Path) -> None:
    command = service(tmp_path).dockerd_command()
    assert f"--host=unix://{tmp_path}/{'.dockerd.sock'}" in command
    assert "--userns-remap=default" in command
    assert f"--label={cgroups.ENGINE_DELEGATES}" in command
    assert f"--exec-root={tmp_path}/exec" in command
    assert "--bridge=ldtest0" in command
    assert not any(arg.startswith("--default-address-pool") for arg in command)


@pytest.mark.parametrize(
    "bridge", [sandbox_engine.HOST_BRIDGE, sandbox_engine.BRIDGE, "", "a-name-too-long-x"]
)
def test_the_hosts_bridges_and_bad_names_are_refused(bridge: str) -> None:
    with pytest.raises(EngineServiceError):
        check_bridge(bridge)


def test_the_portals_socket_appears_only_when_published(tmp_path: Path) -> None:
    engine = service(tmp_path)
    engine.private_socket.touch()  # stands in for dockerd's socket
    assert not engine.socket.exists()
    publish(engine)
    assert engine.socket.is_symlink() and engine.socket.resolve() == engine.private_socket
    unpublish(engine)
    unpublish(engine)  # idempotent
    assert not engine.socket.exists() and engine.private_socket.exists()


def matching(bridges: list[str], lines: list[str]) -> list[str]:
    """The lines the sweep's pattern picks, run through the same grep."""
    pattern = docker_rules_script(bridges).split("grep -E -e ", 1)[1].split(" | sed", 1)[0]
    grep = subprocess.run(
        ["sh", "-c", f"grep -E -e {pattern}"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return grep.stdout.splitlines()


def test_the_sweep_takes_dockers_rules_for_its_bridges_and_nothing_else() -> None:
    ours = [
        "-A FORWARD -o ldtest0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -i ldtest0 ! -o ldtest0 -j ACCEPT",
        "-A DOCKER-ISOLATION-STAGE-2 -o ld-0123456789ab -j DROP",
        "-A POSTROUTING -s 10.230.0.0/24 ! -o ldtest0 -j MASQUERADE",
        "-A DOCKER -i ld-0123456789ab -j RETURN",
    ]
    others = [
        "-A FORWARD -o docker0 -j DOCKER",
        "-A POSTROUTING -s 10.213.0.0/24 ! -o labdeck0 -j MASQUERADE",
        "-A FORWARD -o ldtest01 -j DOCKER",
    ]
    assert matching(["ldtest0", "ld-0123456789ab"], ours + others) == ours


def test_a_stop_signal_interrupts_whatever_runs_once() -> None:
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    try:
        stop_on_signals()
        with pytest.raises(StopRequested):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here, as it does in a build or dockerd.wait()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the clean-up runs in peace
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

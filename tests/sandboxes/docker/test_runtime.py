"""The sandbox runtime profile: host configs, probing, and a real Docker-in-Docker sandbox."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.utils.socket import consume_socket_output, frames_iter

from app.sandboxes.docker import engine as docker_engine
from app.sandboxes.docker import runtime
from app.sandboxes.docker.containers import start_container
from app.sandboxes.docker.images.builder import build_recipe
from app.sandboxes.docker.images.catalog import get_recipe
from app.sandboxes.docker.images.mode import detect_mode
from app.sandboxes.docker.runtime import (
    PROFILE_FILE,
    create_host_config,
    detect_runtime,
    host_config_for,
    resolve_runtime,
)

RUN_ID = uuid.uuid4().hex[:12]
TEST_LABELS = {"io.labdeck.test": "1", "io.labdeck.test.run": RUN_ID}
MIRROR = "http://10.11.12.13:5000"
SANDBOX = get_recipe("sandbox").tag
OFFLINE_API = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")


# --- host configs: no engine needed ---------------------------------------------------------


def test_caps_profile_grants_what_dockerd_needs_and_keeps_sys_resource_out() -> None:
    config = host_config_for("caps", apparmor=False)
    assert config["cap_add"] == ["ALL"]
    assert config["cap_drop"] == ["SYS_RESOURCE"]
    assert config["security_opt"] == ["seccomp=unconfined"]
    assert config["device_cgroup_rules"] == ["a *:* rwm"]
    assert config["MaskedPaths"] == [] and config["ReadonlyPaths"] == []
    assert "privileged" not in config


def test_caps_profile_unconfines_apparmor_only_when_it_is_enabled() -> None:
    assert "apparmor=unconfined" in host_config_for("caps", apparmor=True)["security_opt"]
    assert "apparmor=unconfined" not in host_config_for("caps", apparmor=False)["security_opt"]


def test_sysbox_and_privileged_profiles() -> None:
    assert host_config_for("sysbox") == {"runtime": "sysbox-runc"}
    assert host_config_for("privileged") == {"privileged": True}
    with pytest.raises(ValueError, match="Unknown sandbox runtime profile"):
        host_config_for("root")  # type: ignore[arg-type]


def test_create_host_config_applies_raw_keys_and_joins_lists() -> None:
    config = create_host_config(
        OFFLINE_API, "caps", apparmor=False, security_opt=["no-new-privileges"], mem_limit="1g"
    )
    assert config["SecurityOpt"] == ["seccomp=unconfined", "no-new-privileges"]
    assert config["CapAdd"] == ["ALL"] and config["CapDrop"] == ["SYS_RESOURCE"]
    assert config["DeviceCgroupRules"] == ["a *:* rwm"]
    assert config["MaskedPaths"] == [] and config["ReadonlyPaths"] == []
    assert config["Memory"] == 1024**3


def test_unknown_setting_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="auto, sysbox, userns, privileged or caps"):
        runtime.parse_setting("rootful")


def test_userns_profile_has_the_caps_rights_held_inside_a_user_namespace() -> None:
    userns, caps = (
        host_config_for("userns", apparmor=False),
        host_config_for("caps", apparmor=False),
    )
    assert userns["security_opt"] == [f"seccomp={runtime.KEY_QUOTA_SECCOMP}"]
    assert {**userns, "security_opt": None} == {**caps, "security_opt": None}
    assert runtime.AUTO_PROFILES == ("sysbox", "userns")
    assert set(runtime.UNSAFE_PROFILES) == {"caps", "privileged"}


def test_unsafe_profiles_state_their_risk_in_one_sentence() -> None:
    for profile in ("caps", "privileged"):
        assert "root on the host" in runtime.risk_of(profile)  # type: ignore[arg-type]
    assert runtime.risk_of("userns") == runtime.risk_of("sysbox") == ""
    report = runtime.RuntimeReport("caps", "caps", "set by LABDECK_SANDBOX_RUNTIME")
    assert report.summary().endswith(runtime.UNSAFE_RISK)


def test_userns_chosen_by_name_is_refused_on_an_engine_without_remapping(tmp_path: Path) -> None:
    engine = SimpleNamespace(info=lambda: {"SecurityOptions": ["name=seccomp,profile=default"]})
    report = resolve_runtime(engine, SANDBOX, tmp_path, setting="userns")  # type: ignore[arg-type]
    assert report.profile is None and "does not remap user namespaces" in report.reason


def test_production_refuses_unsafe_profiles_unless_the_host_is_disposable() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    secrets = {"instructor_token": "x" * 20, "secret_key": "y" * 20, "env": "production"}
    with pytest.raises(ValidationError, match="LABDECK_SANDBOX_HOST_DISPOSABLE"):
        Settings(sandbox_runtime="caps", **secrets)  # type: ignore[arg-type]
    assert Settings(sandbox_runtime="caps", sandbox_host_disposable=True, **secrets)  # type: ignore[arg-type]
    assert Settings(sandbox_runtime="auto", **secrets)  # type: ignore[arg-type]


# --- against the engine ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        engine = docker_engine.docker_client(
            timeout=600
        )  # where sandboxes run: the dedicated engine as root
    except docker_engine.EngineUnavailable as error:
        pytest.fail(f"These tests need a Docker engine (./labdeck test starts one): {error}")
    mode = detect_mode()
    for recipe in ("hello-world", "busybox", "sandbox"):
        build_recipe(engine, recipe, mode)  # reused when up to date
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def profile(docker_client: docker.DockerClient, profile_dir: Path) -> runtime.Profile:
    started = time.monotonic()
    chosen = detect_runtime(docker_client, SANDBOX, profile_dir, setting="auto", labels=TEST_LABELS)
    print(f"\nruntime profile {chosen} detected in {time.monotonic() - started:.1f}s")
    return chosen


@pytest.mark.docker
def test_auto_detection_is_remembered_per_engine_and_kernel(
    docker_client: docker.DockerClient, profile: runtime.Profile, profile_dir: Path
) -> None:
    saved = json.loads((profile_dir / PROFILE_FILE).read_text())
    info = docker_client.info()
    assert saved["profile"] == profile
    assert saved["engine"] == {
        "engine_id": info["ID"],
        "kernel": info["KernelVersion"],
        "data_root": info["DockerRootDir"],
    }
    started = time.monotonic()
    again = resolve_runtime(docker_client, SANDBOX, profile_dir, setting="auto", labels=TEST_LABELS)
    assert again.profile == profile and "remembered" in again.reason
    assert time.monotonic() - started < 1
    attempts = {attempt.profile: attempt for attempt in again.attempts}
    assert attempts[profile].ok
    assert all(
        not attempts[earlier].ok and attempts[earlier].detail
        for earlier in runtime.PROFILES[: runtime.PROFILES.index(profile)]
    )


@pytest.mark.docker
def test_doctor_description_names_the_profile_and_what_failed(
    docker_client: docker.DockerClient, profile: runtime.Profile, profile_dir: Path
) -> None:
    settings = SimpleNamespace(sandbox_runtime="auto", sandbox_image=SANDBOX, data_dir=profile_dir)
    ok, detail = runtime.describe_runtime(docker_client, settings)
    assert ok and detail.startswith(f"profile {profile} (auto: remembered")
    missing = SimpleNamespace(
        sandbox_runtime="caps", sandbox_image="labdeck/none:missing", data_dir=profile_dir
    )
    ok, detail = runtime.describe_runtime(docker_client, missing)
    assert not ok and "labdeck images build" in detail


@pytest.mark.docker
def test_explicit_setting_wins_over_detection(
    docker_client: docker.DockerClient, profile_dir: Path
) -> None:
    report = resolve_runtime(docker_client, SANDBOX, profile_dir, setting="sysbox")
    assert (report.profile, report.reason) == ("sysbox", "set by LABDECK_SANDBOX_RUNTIME")


@pytest.mark.docker
def test_probe_explains_a_failing_profile(docker_client: docker.DockerClient) -> None:
    result = runtime.probe_profile(docker_client, SANDBOX, "sysbox", TEST_LABELS)
    if "sysbox-runc" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this engine has sysbox")
    assert not result.ok and "sysbox-runc is not installed" in result.detail


# --- a real sandbox ------------------------------------------------------------------------------


def exec_in(
    docker_client: docker.DockerClient, container: str, command: str, user: str = "learner"
) -> tuple[int, str]:
    api = docker_client.api
    exec_id = api.exec_create(container, ["bash", "-c", command], user=user)["Id"]
    output = api.exec_start(exec_id)
    return api.exec_inspect(exec_id)["ExitCode"], bytes(output).decode(errors="replace")


def load_into_inner_engine(
    docker_client: docker.DockerClient, container: str, image: str, name: str
) -> None:
    """`docker save` through the host API, streamed into `docker load` inside the sandbox."""
    api = docker_client.api
    exec_id = api.exec_create(container, ["docker", "load"], stdin=True)["Id"]
    stream: Any = api.exec_start(exec_id, socket=True)
    raw = stream._sock
    for chunk in api.get_image(image):
        raw.sendall(chunk)
    raw.shutdown(socket.SHUT_WR)  # EOF for docker load
    out, err = consume_socket_output(frames_iter(stream, tty=False), demux=True)
    stream.close()
    raw.close()
    assert api.exec_inspect(exec_id)["ExitCode"] == 0, (out, err)
    code, output = exec_in(docker_client, container, f"docker tag {image} {name}", user="root")
    assert code == 0, output


def wait_for_inner_engine(
    docker_client: docker.DockerClient, container: str, seconds: float = 90
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if exec_in(docker_client, container, "docker info >/dev/null 2>&1")[0] == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    logs = exec_in(docker_client, container, "tail -n 30 /var/log/docker.log", user="root")[1]
    pytest.fail(f"the inner engine did not answer within {seconds}s:\n{logs}")


@pytest.fixture
def sandbox(docker_client: docker.DockerClient, profile: runtime.Profile) -> Iterator[str]:
    api = docker_client.api
    volume = docker_client.volumes.create(f"labdeck-test-{RUN_ID}-engine", labels=TEST_LABELS)
    host_config = create_host_config(
        api,
        profile,
        apparmor=runtime.apparmor_enabled(docker_client),
        binds={volume.name: {"bind": "/var/lib/docker", "mode": "rw"}},
    )
    container = api.create_container(
        SANDBOX,
        name=f"labdeck-test-{RUN_ID}-sandbox",
        host_config=host_config,
        labels=TEST_LABELS,
        environment={"LABDECK_REGISTRY_MIRROR": MIRROR, "LABDECK_SANDBOX_NAME": "alice"},
    )["Id"]
    try:
        start_container(api, container, profile)
        yield container
    finally:
        _remove(lambda: api.remove_container(container, v=True, force=True))
        _remove(volume.remove)
    label = f"io.labdeck.test.run={RUN_ID}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.volumes.list(filters={"label": label}) == []
    assert docker_client.networks.list(filters={"label": label}) == []


def _remove(action: Any) -> None:
    try:
        action()
    except (NotFound, APIError) as error:
        if getattr(error, "status_code", None) not in (404, 409):
            raise


@pytest.mark.docker
def test_sandbox_runs_an_inner_engine_end_to_end(
    docker_client: docker.DockerClient, sandbox: str
) -> None:
    startup = wait_for_inner_engine(docker_client, sandbox)
    print(f"\ncontainer start to inner `docker info`: {startup:.1f}s")
    assert (
        exec_in(docker_client, sandbox, "docker info --format '{{.Driver}}'")[1].strip()
        == "overlay2"
    )

    load_into_inner_engine(
        docker_client, sandbox, get_recipe("hello-world").tag, "hello-world:latest"
    )
    code, output = exec_in(docker_client, sandbox, "docker run --rm hello-world")
    assert code == 0 and "Hello from LabDeck" in output, output

    load_into_inner_engine(docker_client, sandbox, get_recipe("busybox").tag, "busybox:latest")
    dockerfile = "FROM busybox\\nRUN echo built-inside > /proof\\n"
    build = f"mkdir -p ~/proof && cd ~/proof && printf '{dockerfile}' > Dockerfile"
    build += " && docker build -t proof . && docker run --rm proof cat /proof"
    code, output = exec_in(docker_client, sandbox, build)
    assert code == 0 and "built-inside" in output, output


@pytest.mark.docker
def test_attendee_restarts_the_engine_and_keeps_the_managed_mirror(
    docker_client: docker.DockerClient, sandbox: str
) -> None:
    wait_for_inner_engine(docker_client, sandbox)
    add_registry = '."insecure-registries" += ["class.example:5000"]'
    config = "/etc/docker/daemon.json"
    edit = f"jq '{add_registry}' {config} > /tmp/d && sudo cp /tmp/d {config}"
    code, output = exec_in(docker_client, sandbox, f"{edit} && sudo service docker restart")
    assert code == 0, output
    wait_for_inner_engine(docker_client, sandbox)
    registries = json.loads(
        exec_in(docker_client, sandbox, "docker info --format '{{json .RegistryConfig}}'")[1]
    )
    assert f"{MIRROR}/" in registries["Mirrors"]
    assert "class.example:5000" in registries["IndexConfigs"]
    code, pids = exec_in(docker_client, sandbox, "ps -o comm= -p 1; pgrep -x dockerd", user="root")
    init_name, dockerd_pid = pids.split()
    assert (init_name, code) == ("tini", 0) and dockerd_pid != "1"
    assert exec_in(docker_client, sandbox, "test -s /var/log/docker.log")[0] == 0


@pytest.mark.docker
def test_broken_daemon_json_keeps_the_engine_running_and_says_why(
    docker_client: docker.DockerClient, sandbox: str
) -> None:
    wait_for_inner_engine(docker_client, sandbox)
    broken = "echo '{\"debug\": tru' | sudo tee /etc/docker/daemon.json >/dev/null"
    code, output = exec_in(docker_client, sandbox, f"{broken} && sudo service docker restart")
    assert code != 0
    assert "not valid JSON" in output and "sudo service docker restart" in output
    assert exec_in(docker_client, sandbox, "docker info >/dev/null")[0] == 0
    assert "not valid JSON" in exec_in(docker_client, sandbox, "tail -n 5 /var/log/docker.log")[1]


@pytest.mark.docker
def test_sandbox_stops_gracefully(docker_client: docker.DockerClient, sandbox: str) -> None:
    wait_for_inner_engine(docker_client, sandbox)
    started = time.monotonic()
    docker_client.api.stop(sandbox, timeout=30)
    assert docker_client.api.inspect_container(sandbox)["State"]["ExitCode"] == 0
    assert time.monotonic() - started < 15


def test_userns_seccomp_refuses_only_what_makes_or_pins_keys() -> None:
    profile = runtime.key_quota_seccomp("x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "SCMP_ARCH_X86" in profile["architectures"]  # 32-bit calls cannot go around it
    rules = profile["syscalls"]
    assert {"add_key", "request_key"} <= set(rules[0]["names"])
    assert all(rule["action"] == "SCMP_ACT_ERRNO" for rule in rules)
    refused = {
        arg["valueTwo"] for rule in rules for arg in rule.get("args", []) if "valueTwo" in arg
    }
    (at_least,) = [
        arg["value"] for rule in rules for arg in rule.get("args", []) if "valueTwo" not in arg
    ]
    what_runc_uses = set(runtime.KEYCTL_ALLOWED.values())
    assert what_runc_uses == {0, 1, 5, 6} and not what_runc_uses & refused
    assert refused | set(range(at_least, 40)) | what_runc_uses >= set(range(40))
    assert json.loads(runtime.KEY_QUOTA_SECCOMP)["syscalls"] == profile["syscalls"]
    assert "architectures" not in runtime.key_quota_seccomp("riscv64")

"""The hosted deployment: compose.yaml is sound, its images build here (offline when no registry
answers), and the whole stack, brought up with Debian's `docker-compose`, takes an attendee
through Caddy from joining to a passed task; `docker-compose down -v` then leaves nothing on
the host.

The images are built like LabDeck's own (app/sandboxes/docker/images/builder.py): a
content-hash label over the build context, so a run with nothing changed builds nothing; they
are tagged :test, never compose's :latest. The engine keeps the sandbox and workshop images it
builds in its data root; here that is a folder kept between runs (LABDECK_ENGINE_DATA), so only
the first run builds them."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from docker.utils.build import exclude_paths
from websockets.sync.client import connect

from app.config import Settings
from app.sandboxes import naming
from app.sandboxes.docker import sandbox_engine
from app.sandboxes.docker.images.builder import BuildResult, build_recipe
from app.sandboxes.docker.images.mode import detect_mode
from tests.support.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    VARIABLE,
    ComposeProject,
    compose_file,
    copy_build_context,
    dockerignore_patterns,
    firewall_lines,
    image_recipes,
    interpolate,
    services,
)
from tests.support.live_server import free_port
from tests.support.settings import INSTRUCTOR_TOKEN, REPO

HOST_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
SOCKET_VOLUME = "engine-socket:/run/labdeck"
IMAGE_TAG = "test"
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"
# Apart from the test suite's (test-<pid>), a developer's `./labdeck up` (labdeck, labdeck0,
# 10.213/10.214) and compose.yaml's defaults (labdeck1, 10.215/10.216), so both may run meanwhile.
PROJECT = "labdeck-compose-test"
INSTANCE = "compose-test"
ENGINE_BRIDGE = "ldctest0"
ENGINE_ADDRESS = "10.224.0.1"
SANDBOX_SUBNET = "10.225.0.0/24"
# The engine's data root, kept between runs: the images it built (nothing else; see below).
ENGINE_CACHE = Path("/var/lib/labdeck/compose-test-engine")
REMAPPED_ROOT = "100000.100000"  # deploy/portal.Dockerfile's dockremap range
UP_WITHIN = 1800  # cold, the engine builds every image first
TASK = "run-hello-world"
ENGINE = "labdeck engine:"  # how the engine's own log lines start


# -- compose.yaml ------------------------------------------------------------------------------


def volumes_of(service: str) -> list[str]:
    return [str(entry) for entry in services()[service].get("volumes", [])]


def test_the_stack_is_engine_registry_portal_and_an_https_profile() -> None:
    found = services()
    assert set(found) == {"engine", "registry", "portal", "caddy"}
    assert found["caddy"]["profiles"] == ["https"]
    assert all("profiles" not in found[name] for name in ("engine", "registry", "portal"))


def test_every_service_is_health_checked_and_restarts() -> None:
    for name, service in services().items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert service["restart"] == "unless-stopped", name


def test_no_service_gets_the_host_docker_socket() -> None:
    for name in services():
        assert not [v for v in volumes_of(name) if v.split(":")[0] in HOST_SOCKETS], name


def test_the_portal_reaches_the_engine_through_a_shared_socket_volume() -> None:
    portal = services()["portal"]
    assert SOCKET_VOLUME in volumes_of("portal")
    assert SOCKET_VOLUME in volumes_of("engine")
    environment = portal["environment"]
    assert environment["LABDECK_SANDBOX_ENGINE"] == "dedicated"
    assert environment["LABDECK_SANDBOX_ENGINE_SOCKET"] == "/run/labdeck/engine.sock"
    assert environment["LABDECK_SANDBOX_RUNTIME"] == "userns"
    assert {"engine", "registry"} <= set(portal["depends_on"])


def test_the_database_and_the_engine_data_live_in_named_volumes() -> None:
    declared = set(compose_file()["volumes"])
    assert "portal-data:/data" in volumes_of("portal")
    engine_data = interpolate(volumes_of("engine")[0], {}).split(":")[0]
    assert {"portal-data", engine_data, "engine-socket", "registry-data"} <= declared


def test_compose_refuses_to_start_without_the_secrets() -> None:
    environment = services()["portal"]["environment"]
    for missing in ("LABDECK_INSTRUCTOR_TOKEN", "LABDECK_SECRET_KEY"):
        variables = {"LABDECK_INSTRUCTOR_TOKEN": "t" * 20, "LABDECK_SECRET_KEY": "s" * 20}
        del variables[missing]
        with pytest.raises(ValueError, match=missing):
            [interpolate(str(value), variables) for value in environment.values()]


def test_the_portal_runs_production_with_known_settings_only() -> None:
    engine, portal = services()["engine"], services()["portal"]
    assert portal["environment"]["LABDECK_ENV"] == "production"
    names = [*engine["environment"], *portal["environment"]]
    unknown = [n for n in names if n.removeprefix("LABDECK_").lower() not in Settings.model_fields]
    assert unknown == []


def test_every_variable_of_compose_yaml_is_in_env_example() -> None:
    used = {match["name"] for match in VARIABLE.finditer(COMPOSE_FILE.read_text())}
    example = ENV_EXAMPLE.read_text()
    assert sorted(name for name in used if not re.search(rf"\b{name}=", example)) == []


def pins(lock: str) -> set[str]:
    return set(re.findall(r"^([a-z0-9_.-]+==\S+)", (REPO / lock).read_text(), re.MULTILINE))


def test_the_runtime_lock_pins_what_the_full_lock_pins() -> None:
    """The image installs requirements-runtime.lock; it must not drift from the tested lock."""
    runtime, full = pins("requirements-runtime.lock"), pins("requirements.lock")
    assert runtime and runtime <= full, sorted(runtime - full)
    assert not any(name.startswith(("pytest==", "playwright==", "mypy==")) for name in runtime)


def test_the_build_context_leaves_secrets_and_local_state_out(tmp_path: Path) -> None:
    kept = [
        "app/main.py",
        "deploy/extra-ca/proxy.crt",
        "requirements-runtime.lock",
        "static/js/lesson.js",
    ]
    left_out = [".env", "data/labdeck.db", ".venv/bin/python", "static/vendor/htmx/htmx.min.js"]
    for relative in kept + left_out:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    sent = exclude_paths(str(tmp_path), dockerignore_patterns())
    assert sorted(path for path in sent if (tmp_path / path).is_file()) == sorted(kept)


# -- the images ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_engine() -> Iterator[docker.DockerClient]:
    from app.sandboxes.docker.engine import docker_client, host_address

    # compose runs the stack on the host's engine; a cold build streams for minutes.
    client = docker_client(timeout=900, address=host_address())
    yield client
    client.close()


@pytest.fixture(scope="module")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for the module: others editing the checkout meanwhile change nothing here."""
    return copy_build_context(tmp_path_factory.mktemp("compose-context"))


@pytest.fixture(scope="module")
def stack_images(host_engine: docker.DockerClient, build_context: Path) -> dict[str, BuildResult]:
    built = {}
    mode = detect_mode()
    for service, recipe in image_recipes(build_context, IMAGE_TAG).items():
        built[service] = result = build_recipe(host_engine, recipe, mode)
        state = "built" if result.built else "up to date"
        print(f"\n{result.tag} ({result.mode}): {state} in {result.seconds:.1f}s")
    return built


@pytest.mark.docker
def test_a_second_build_is_a_no_op(
    host_engine: docker.DockerClient, stack_images: dict[str, BuildResult], build_context: Path
) -> None:
    for service, recipe in image_recipes(build_context, IMAGE_TAG).items():
        again = build_recipe(host_engine, recipe, detect_mode())
        assert (again.built, again.image_id) == (False, stack_images[service].image_id)
        assert again.seconds < 5, f"an up-to-date {service} image took {again.seconds:.1f}s"


@pytest.mark.docker
def test_the_portal_image_puts_data_and_content_where_compose_mounts_them(
    host_engine: docker.DockerClient, stack_images: dict[str, BuildResult]
) -> None:
    config = host_engine.api.inspect_image(stack_images["portal"].image_id)["Config"]
    assert "LABDECK_DATA_DIR=/data" in config["Env"]
    assert f"./content:{config['WorkingDir']}/content:ro" in volumes_of("portal")


# -- the stack, run for real ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ComposeProject:
    if shutil.which("docker-compose") is None:
        pytest.fail(
            "docker-compose is missing: apt-get install docker-compose (./labdeck test does)"
        )
    port, https_port = free_port(), free_port()
    return ComposeProject(
        PROJECT,
        {
            "LABDECK_IMAGE_TAG": IMAGE_TAG,
            "LABDECK_INSTRUCTOR_TOKEN": INSTRUCTOR_TOKEN,
            "LABDECK_SECRET_KEY": TEST_SECRET_KEY,
            "LABDECK_INSTANCE": INSTANCE,
            "LABDECK_HOST": "127.0.0.1",  # behind Caddy, as .env.example advises
            "LABDECK_PORT": str(port),
            "LABDECK_PUBLIC_URL": f"https://localhost:{https_port}",
            "LABDECK_TRUSTED_PROXIES": "127.0.0.1",
            "LABDECK_WARM_POOL_SIZE": "0",  # the attendee's sandbox is made for them
            "LABDECK_REGISTRY_PORT": str(free_port()),
            "LABDECK_REGISTRY_SEED_PORT": str(free_port()),
            "LABDECK_ENGINE_DATA": str(ENGINE_CACHE),
            "LABDECK_ENGINE_BRIDGE": ENGINE_BRIDGE,
            "LABDECK_ENGINE_ADDRESS": ENGINE_ADDRESS,
            "LABDECK_SANDBOX_SUBNET": SANDBOX_SUBNET,
            "LABDECK_DOMAIN": "localhost",
            "LABDECK_HTTP_PORT": str(free_port()),
            "LABDECK_HTTPS_PORT": str(https_port),
        },
        env_file=no_env_file(tmp_path_factory.mktemp("compose-env")),
        profiles=["https"],
    )


def no_env_file(folder: Path) -> Path:
    (folder / "empty.env").touch()
    return folder / "empty.env"


def public_url(project: ComposeProject) -> str:
    return project.variables["LABDECK_PUBLIC_URL"]


def unverified_tls() -> ssl.SSLContext:
    """Caddy's certificate for localhost comes from its own CA, made in the stack."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_until_ready(http: httpx.Client, seconds: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        me = dict(http.get("/api/me").json())
        if me["sandbox"]["state"] in ("ready", "failed"):
            return me
        time.sleep(1)
    raise AssertionError(f"the sandbox is not ready after {seconds:.0f}s: {me}")


def type_in_terminal(url: str, cookies: httpx.Cookies, line: str, seconds: float = 180) -> str:
    """Type ``line`` into the attendee's terminal (through Caddy) and return what the shell
    printed until the marker typed after it appeared."""
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    marker = 'echo "typed-$((6*7))"'  # the echo of the line shows $((6*7)), its output 42
    output = b""
    with connect(
        url.replace("https://", "wss://") + "/ws/terminal",
        ssl=unverified_tls(),
        additional_headers={"Cookie": cookie},
        open_timeout=60,
    ) as terminal:
        terminal.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        terminal.send(f"{line}; {marker}\r".encode())
        deadline = time.monotonic() + seconds
        while b"typed-42" not in output:
            frame = terminal.recv(timeout=max(0.1, deadline - time.monotonic()))
            output += frame if isinstance(frame, bytes) else b""
    return output.decode(errors="replace")


def attendee_passes_a_task(project: ComposeProject) -> dict[str, float]:
    """POST /join, GET /api/me until ready, the task typed in the terminal, then its check."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    with httpx.Client(base_url=public_url(project), verify=False, timeout=60) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        joined = http.post("/join", data={"name": "Compose Visitor"})
        assert joined.status_code == 303, joined.text
        me = wait_until_ready(http)
        assert me["sandbox"]["state"] == "ready", me
        assert me["tasks"][TASK] == "not_tried"
        timings["join to ready"] = time.monotonic() - started
        output = type_in_terminal(public_url(project), http.cookies, "docker run hello-world")
        assert "Hello from LabDeck!" in output, output[-2000:]
        timings["task typed"] = time.monotonic() - started
        result = http.post(f"/api/tasks/{TASK}/check").json()
        assert result["passed"], result
        assert http.get("/api/me").json()["tasks"][TASK] == "passed"
    timings["task passed"] = time.monotonic() - started
    return timings


def cached_engine_containers() -> list[str]:
    folder = ENGINE_CACHE / REMAPPED_ROOT / "containers"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def inner_engine_logs(project: ComposeProject) -> str:
    """The end of each sandbox's own engine log: why an inner `docker run` failed."""
    engine = ("exec", "-T", "engine", "docker", "-H", "unix:///run/labdeck/engine.sock")
    try:
        names = project.run(*engine, "ps", "--quiet").stdout.split()
        return "\n".join(
            project.run(*engine, "exec", name, "tail", "-n", "25", "/var/log/docker.log").stdout
            for name in names
        )
    except Exception as error:  # a diagnostic only: the failure being reported matters more
        return f"(no inner engine logs: {error})"


def host_leftovers(project: ComposeProject, client: docker.DockerClient) -> list[str]:
    bridges = [ENGINE_BRIDGE, naming.bridge_name(INSTANCE)]
    found = project.leftovers(client)
    found += [f"bridge {b}" for b in bridges if Path(f"/sys/class/net/{b}").exists()]
    tags = [f"labdeck:{INSTANCE}", *bridges, naming.bridge_name(INSTANCE).replace("ld-", "LD-")]
    found += [f"firewall rule {line}" for line in firewall_lines(*tags)]
    found += [f"container {name[:12]} in the engine's data" for name in cached_engine_containers()]
    return found


@pytest.mark.docker
def test_the_stack_takes_an_attendee_to_a_passed_task_and_leaves_nothing(
    host_engine: docker.DockerClient,
    stack_images: dict[str, BuildResult],
    project: ComposeProject,
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        project.run("up", "--detach", "--no-build", timeout=UP_WITHIN)
        for service in ("portal", "caddy"):
            project.wait_healthy(host_engine, service, seconds=600)
        timings["up and healthy"] = time.monotonic() - started
        print("\n" + "\n".join(line for line in project.logs(300).splitlines() if ENGINE in line))
        portal = project.containers(host_engine)["portal"]
        assert not [m for m in portal.attrs["Mounts"] if m["Source"] in HOST_SOCKETS]
        timings |= attendee_passes_a_task(project)
        # The engine's data root is kept between runs: the sandbox goes, as after a class.
        project.run("exec", "-T", "portal", "python", "-m", "app", "sandboxes", "prune", "--all")
    except BaseException:
        print(project.logs(80))
        print(inner_engine_logs(project))
        raise
    finally:
        down_started = time.monotonic()
        project.run("down", "--volumes", timeout=600)
        timings["down -v"] = time.monotonic() - down_started
        print("\n" + ", ".join(f"{what}: {seconds:.0f}s" for what, seconds in timings.items()))
    assert host_leftovers(project, host_engine) == []


def test_the_test_stack_is_apart_from_the_engines_a_developer_runs() -> None:
    """Never the data root, bridge or addresses of the dedicated engine (sandbox_engine.py) or
    of compose.yaml's defaults: the test may run beside either."""
    defaults = services()["engine"]["command"]
    assert Path(sandbox_engine.DEFAULT_ROOT) != ENGINE_CACHE
    assert ENGINE_BRIDGE not in (sandbox_engine.BRIDGE, sandbox_engine.HOST_BRIDGE)
    assert not any(ENGINE_BRIDGE in word or ENGINE_ADDRESS in word for word in defaults)
    taken = [sandbox_engine.BRIDGE_ADDRESS, sandbox_engine.ADDRESS_POOL, *defaults]
    assert not any(SANDBOX_SUBNET.rsplit(".", 2)[0] in word for word in taken)

"""The proof that every task's checks can be trusted, on one real sandbox (issue 6, item 5).

For each task of content/docker-basics, in lesson order, on a sandbox reset to a fresh state
(the lesson's setup run as when the attendee opens the lesson):
  (a) the checks fail, and each failing check carries its message (the hint);
  (b) doing the task as an attendee would (the shell steps below, run through backend.exec as
      `learner`, the terminal's user) makes every check pass;
  (c) a near miss (almost right) fails, at the check named in the table.
Checks run through CheckService.check, the path the Check button takes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.bench.checks import Lab, real_lab
from app.checks.service import TaskRun
from app.lessons.loader import load_workshop
from app.lessons.schema import Lesson, Task
from tests.support.live_server import free_port
from tests.support.settings import REPO, settings_for

pytestmark = pytest.mark.docker

WORKSHOP = load_workshop(REPO / "content" / "docker-basics")
TEST_LABELS = {"io.labdeck.test": "1"}


@dataclass(frozen=True)
class Proof:
    do: str  # what an attendee types to solve the task
    near_miss: str  # almost right
    near_miss_fails: str  # the name of a check the near miss must fail


def build(folder: str, tag: str, dockerfile: str) -> str:
    """The attendee writes ~/<folder>/Dockerfile and builds it as ``tag``."""
    return (
        f"cat > ~/{folder}/Dockerfile <<'EOF'\n{dockerfile.strip()}\nEOF\n"
        f"docker build -q -t {tag} ~/{folder} >/dev/null"
    )


def dockerfile_proof(
    folder: str, tag: str, *, do: str, near_miss: str, near_miss_fails: str
) -> Proof:
    """A task done by writing ~/<folder>/Dockerfile and building it as ``tag``."""
    return Proof(build(folder, tag, do), build(folder, tag, near_miss), near_miss_fails)


def healthy_web(probed_port: int) -> str:
    """The web image whose HEALTHCHECK probes ``probed_port`` (it serves on 8080), run."""
    dockerfile = f"""
FROM busybox
COPY index.html /www/index.html
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\
  CMD wget -q -O /dev/null http://127.0.0.1:{probed_port}/ || exit 1
USER 10001:10001
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
    return f"""{build("healthy-web", "healthy-web", dockerfile)}
docker run -d --name healthy-web -p 8080:8080 healthy-web >/dev/null
for i in $(seq 40); do
  status="$(docker inspect -f '{{{{.State.Health.Status}}}}' healthy-web)"
  [ "$status" = starting ] || break
  sleep 1
done"""


WAIT_FOR_REGISTRY = (
    "for i in $(seq 100); do curl -fs localhost:5000/v2/ >/dev/null && break; sleep 0.2; done"
)
START_REGISTRY = (
    f"docker run -d -p 5000:5000 --name registry registry:2 >/dev/null\n{WAIT_FOR_REGISTRY}"
)
TAG_HELLO = f"""{START_REGISTRY}
docker pull -q hello-world >/dev/null
docker tag hello-world localhost:5000/workshop/hello:v1"""
PUSH_HELLO = f"{TAG_HELLO}\ndocker push localhost:5000/workshop/hello:v1 >/dev/null"
# Pushed, then the local tag removed: $DIGEST names what the registry holds.
PUSH_HELLO_AND_FORGET_IT = f"""{PUSH_HELLO}
DIGEST="$(docker image inspect \\
  --format '{{{{range .RepoDigests}}}}{{{{println .}}}}{{{{end}}}}' localhost:5000/workshop/hello:v1 \\
  | grep '^localhost:5000/workshop/hello@' | cut -d@ -f2)"
docker rmi localhost:5000/workshop/hello:v1 >/dev/null"""
# A registry that outlives engine restarts, reached by the sandbox's address and trusted in
# daemon.json; the engine has not read that setting yet.
TRUST_LASTING_REGISTRY = f"""docker run -d --name registry --restart always -p 5000:5000 \\
  -v registry-data:/var/lib/registry registry:2 >/dev/null
{WAIT_FOR_REGISTRY}
ADDR="$(hostname -i | awk '{{print $1}}'):5000"
sudo cat /etc/docker/daemon.json 2>/dev/null | jq -s --arg addr "$ADDR" \\
  '(.[0] // {{}}) | ."insecure-registries" = (((."insecure-registries" // []) + [$addr]) | unique)' \\
  > /tmp/daemon.json
sudo cp /tmp/daemon.json /etc/docker/daemon.json"""
RESTART_ENGINE = f"""sudo service docker restart >/dev/null
for i in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
{WAIT_FOR_REGISTRY}"""

PROOFS: dict[str, Proof] = {
    "run-hello-world": Proof(
        do="docker run hello-world",
        near_miss="docker run --rm hello-world",  # it ran, but nothing is left to see
        near_miss_fails="A hello-world container ran and ended successfully",
    ),
    "busybox-greeter": Proof(
        do='docker run --name greeter busybox echo "Hello from busybox"',
        near_miss='docker run --name greeter busybox echo "Hello busybox"',
        near_miss_fails='It printed "Hello from busybox"',
    ),
    "message-printer": dockerfile_proof(
        "printer",
        "message-printer",
        do="""
FROM busybox
COPY message.txt /message.txt
CMD ["cat", "/message.txt"]
""",
        # The file is in the image, but the container prints its path, not its content.
        near_miss="""
FROM busybox
COPY message.txt /message.txt
CMD ["echo", "/message.txt"]
""",
        near_miss_fails="A container prints exactly the content of ~/printer/message.txt",
    ),
    "labelled-image": dockerfile_proof(
        "labelled",
        "labelled-app",
        do="""
FROM busybox
LABEL workshop="docker-basics"
ENV GREETING="Hello, Docker"
CMD echo "$GREETING"
""",
        # The exec form does not expand variables: it prints "$GREETING".
        near_miss="""
FROM busybox
LABEL workshop="docker-basics"
ENV GREETING="Hello, Docker"
CMD ["echo", "$GREETING"]
""",
        near_miss_fails="A container prints the greeting",
    ),
    "dockerignore": Proof(
        do="""printf '.git\\nauth\\n*.log\\n' > ~/ignore-demo/.dockerignore
docker build -q -t ignore-demo ~/ignore-demo""",
        near_miss="""printf '.git\\n*.log\\n' > ~/ignore-demo/.dockerignore
docker build -q -t ignore-demo ~/ignore-demo""",
        near_miss_fails="The auth folder is not in the image",
    ),
    "non-root-user": dockerfile_proof(
        "non-root",
        "non-root-app",
        do="""
FROM busybox
USER 10001:10001
CMD ["id"]
""",
        # A user is created, but the image never switches to it.
        near_miss="""
FROM busybox
RUN echo 'app:x:10001:10001::/home/app:/bin/sh' >> /etc/passwd
CMD ["id"]
""",
        near_miss_fails="The image declares a user that is not root",
    ),
    "tagged-build": Proof(
        do="""docker build -q -f ~/versioned/docker/release.Dockerfile \\
  -t versioned-app:1.0 -t versioned-app:latest ~/versioned""",
        # Both tags, but built from the development Dockerfile.
        near_miss="docker build -q -t versioned-app:1.0 -t versioned-app:latest ~/versioned",
        near_miss_fails='It is the release image and prints "versioned-app 1.0"',
    ),
    "multi-stage-build": dockerfile_proof(
        "multistage",
        "tiny-greeter",
        do="""
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY greet.sh .
RUN mkdir -p /out \\
 && sed "s/@DEBIAN_VERSION@/$(cat /etc/debian_version)/" greet.sh > /out/greet \\
 && chmod 0755 /out/greet

FROM busybox
COPY --from=build /out/greet /usr/local/bin/greet
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/greet"]
""",
        # It works, but ships all of Debian.
        near_miss="""
FROM debian:bookworm-slim
COPY greet.sh /src/greet.sh
RUN sed "s/@DEBIAN_VERSION@/$(cat /etc/debian_version)/" /src/greet.sh > /usr/local/bin/greet \\
 && chmod 0755 /usr/local/bin/greet
ENTRYPOINT ["/usr/local/bin/greet"]
""",
        near_miss_fails="Debian's tools stayed in the build stage",
    ),
    "detached-service": Proof(
        do="""docker run -d --name ticker --restart unless-stopped -e MESSAGE="still alive" \\
  busybox sh -c 'while true; do echo "$MESSAGE"; sleep 5; done'""",
        near_miss="""docker run -d --name ticker -e MESSAGE="still alive" \\
  busybox sh -c 'while true; do echo "$MESSAGE"; sleep 5; done'""",
        near_miss_fails="Its restart policy is unless-stopped",
    ),
    "memory-limit": Proof(
        do="docker run -d --name capped --memory 64m busybox sleep 3600",
        near_miss="docker run -d --name capped --memory-reservation 64m busybox sleep 3600",
        near_miss_fails="Its memory limit is 64 MiB",
    ),
    "named-volume": Proof(
        do="""docker volume create workshop-data
docker run --rm -v workshop-data:/data busybox sh -c 'echo "hello volume" > /data/greeting.txt'
docker run --rm -v workshop-data:/data busybox cat /data/greeting.txt""",
        # The volume exists, but the file went to a bind-mounted folder of the sandbox.
        near_miss="""docker volume create workshop-data
docker run --rm -v ~/data:/data busybox sh -c 'echo "hello volume" > /data/greeting.txt'""",
        near_miss_fails='It holds greeting.txt with the text "hello volume"',
    ),
    "healthcheck": Proof(
        do=healthy_web(probed_port=8080),
        near_miss=healthy_web(probed_port=80),
        near_miss_fails="The container reports itself healthy",
    ),
    "host-network": Proof(
        do="docker run -d --name hostnet --network host busybox sleep 3600",
        near_miss="docker run -d --name hostnet busybox sleep 3600",
        near_miss_fails="It is in the same network namespace as your sandbox",
    ),
    "shared-pid": Proof(
        do="""docker run -d --name pidns-one busybox sleep 3600
docker run -d --name pidns-two --pid container:pidns-one busybox sleep 7200""",
        # Both run, but each in its own process namespace.
        near_miss="""docker run -d --name pidns-one busybox sleep 3600
docker run -d --name pidns-two busybox sleep 7200""",
        near_miss_fails="Inside pidns-two, PID 1 is the main process of pidns-one",
    ),
    "push-to-registry": Proof(
        do=PUSH_HELLO,
        near_miss=TAG_HELLO,  # the registry runs and the image is tagged for it, never pushed
        near_miss_fails="The registry has the repository workshop/hello",
    ),
    "local-registry": Proof(
        do=f"{TRUST_LASTING_REGISTRY}\n{RESTART_ENGINE}",
        near_miss=TRUST_LASTING_REGISTRY,  # daemon.json is right, but the engine never read it
        near_miss_fails="The engine runs with that setting (restarted after the change)",
    ),
    "pull-by-digest": Proof(
        do=f"""{PUSH_HELLO_AND_FORGET_IT}
docker pull -q "localhost:5000/workshop/hello@$DIGEST" >/dev/null""",
        # Fetched back by its tag, not by its digest.
        near_miss=f"""{PUSH_HELLO_AND_FORGET_IT}
docker pull -q localhost:5000/workshop/hello:v1 >/dev/null""",
        near_miss_fails=(
            "An image carries a digest from your registry, without a tag for that repository"
        ),
    ),
}

# Back to a fresh sandbox between phases: no containers, volumes, networks or images of the
# attendee's (the workshop's base images stay, to save pulls), an empty home, and the engine
# settings the sandbox started with.
RESET = """docker ps -aq | xargs -r docker rm -f >/dev/null
docker volume ls -q | xargs -r docker volume rm -f >/dev/null
docker network prune -f >/dev/null
docker images --format '{{.Repository}}:{{.Tag}}' \\
  | grep -vxE 'busybox:latest|debian:bookworm-slim|registry:2|<none>:<none>' \\
  | grep -v ':<none>$' | xargs -r docker rmi -f >/dev/null
docker image prune -f >/dev/null
find /home/learner -mindepth 1 -maxdepth 1 ! -name .bashrc ! -name .profile \\
  ! -name .bash_logout -exec rm -rf {} +
"""
SAVED_ENGINE_SETTINGS = "/etc/labdeck/proof-daemon.json"
RESTORE_ENGINE_SETTINGS = f"""if ! cmp -s /etc/docker/daemon.json {SAVED_ENGINE_SETTINGS}; then
  cp {SAVED_ENGINE_SETTINGS} /etc/docker/daemon.json
  service docker restart >/dev/null
  for i in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
fi"""


class Proving:
    """One attendee with one real sandbox, and an event loop to drive it from plain tests."""

    def __init__(self, runner: asyncio.Runner, lab: Lab, attendee_id: int, sandbox: str) -> None:
        self.runner = runner
        self.lab = lab
        self.attendee_id = attendee_id
        self.sandbox = sandbox

    def shell(self, script: str, *, user: str = "learner", timeout: float = 300) -> str:
        backend = self.lab.sandboxes.backend
        result = self.runner.run(
            backend.exec(self.sandbox, f"set -e\n{script}", user=user, timeout=timeout)
        )
        assert result.exit_code == 0 and not result.timed_out, (
            f"the steps failed (exit {result.exit_code}):\n{script}\n"
            f"--- output ---\n{result.output}"
        )
        return result.output

    def fresh(self, lesson: Lesson) -> None:
        self.shell(RESTORE_ENGINE_SETTINGS, user="root")
        self.shell(RESET, user="root")  # root: the engine may have left root-owned files
        if lesson.setup:  # as when the attendee opens the lesson
            self.shell(lesson.setup)

    def check(self, lesson: Lesson, task: Task) -> TaskRun:
        return self.runner.run(self.lab.checks.check(self.attendee_id, lesson, task))

    def attempt(self, lesson: Lesson, task: Task, steps: str = "") -> TaskRun:
        """Check ``task`` after ``steps`` on a fresh sandbox (no steps: as it is handed out)."""
        self.fresh(lesson)
        if steps:
            self.shell(steps)
        return self.check(lesson, task)


@pytest.fixture(scope="module")
def proving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proving]:
    settings = settings_for(
        tmp_path_factory.mktemp("proofs"),
        f"test-{os.getpid()}-proof",
        registry_port=free_port(),
        warm_pool_size=0,
    )
    with asyncio.Runner() as runner:
        lab_context = real_lab(settings, WORKSHOP, TEST_LABELS)
        lab = runner.run(lab_context.__aenter__())
        try:
            attendee_id = lab.add_attendee("prover")
            sandbox = runner.run(lab.sandbox_for(attendee_id))
            proving = Proving(runner, lab, attendee_id, sandbox)
            proving.shell(
                "mkdir -p /etc/docker && touch /etc/docker/daemon.json\n"
                f"cp /etc/docker/daemon.json {SAVED_ENGINE_SETTINGS}",
                user="root",
            )
            yield proving
        finally:
            runner.run(lab_context.__aexit__(None, None, None))


def describe(run: TaskRun) -> str:
    return (
        "\n".join(f"  {c.status:9} {c.name}: {c.message}\n{c.output}" for c in run.checks)
        or f"  unavailable: {run.unavailable}"
    )


def test_every_proof_is_for_a_task_of_the_workshop() -> None:
    tasks = {task.id for task in WORKSHOP.all_tasks()}
    assert set(PROOFS) <= tasks, f"proofs for tasks that no longer exist: {set(PROOFS) - tasks}"


@pytest.mark.parametrize("task_id", [task.id for task in WORKSHOP.all_tasks()])
def test_task_checks_fail_fresh_pass_when_done_and_fail_a_near_miss(
    task_id: str, proving: Proving
) -> None:
    proof = PROOFS.get(task_id)
    if proof is None:
        pytest.fail(f"task {task_id} has no proof: add its steps and a near miss to PROOFS")
    found = WORKSHOP.task(task_id)
    assert found is not None
    lesson, task = found
    hints = {check.name: check.message.strip() for check in task.checks}

    fresh = proving.attempt(lesson, task)
    assert fresh.status == "failed", f"(a) a fresh sandbox must fail:\n{describe(fresh)}"
    for result in fresh.checks:
        assert result.passed or result.message.endswith(hints[result.name]), describe(fresh)

    near = proving.attempt(lesson, task, proof.near_miss)
    failed = {c.name for c in near.checks if not c.passed}
    assert near.status == "failed" and proof.near_miss_fails in failed, (
        f"(c) the near miss must fail '{proof.near_miss_fails}':\n{describe(near)}"
    )

    done = proving.attempt(lesson, task, proof.do)
    assert done.passed, f"(b) doing the task must pass:\n{describe(done)}"

"""Which images a Killercoda scenario pulls: what its workshop.yaml must list under ``images:``.

Read from the commands in its text, its scripts and its assets: ``docker run``, ``docker pull``,
``docker create`` and ``FROM`` lines (Dockerfiles), ``image:`` lines (Compose files). Images the
scenario builds or tags itself (``docker build -t x``, ``docker tag a x``, ``FROM a AS x``) are
its own, not pulled; nor is ``scratch``, nor a name made of shell variables.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator

# A reference as Docker reads it: [registry/]path[:tag][@digest], lowercase path.
_REFERENCE = re.compile(
    r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_FROM = re.compile(
    r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.I | re.M
)
_COMPOSE_IMAGE = re.compile(r"^\s*image:\s*[\"']?(?P<image>[^\s\"'#]+)", re.M)
_BUILT_TAG = re.compile(r"(?:^|\s)(?:-t|--tag)[=\s]+(?P<image>[^\s;&|]+)")
_DOCKER_COMMAND = re.compile(
    r"\bdocker\s+(?:container\s+|image\s+)?(?P<verb>run|pull|create|tag|commit)\s+(?P<rest>[^;&|\n]*)"
)
_MARKERS = re.compile(r"\{\{[^{}]*\}\}")
# Options of docker run/create that take a value (the next word when not written with `=`).
_VALUED_OPTIONS = frozenset(
    [
        "-a",
        "-c",
        "-e",
        "-h",
        "-l",
        "-m",
        "-p",
        "-u",
        "-v",
        "-w",
        "--add-host",
        "--attach",
        "--cap-add",
        "--cap-drop",
        "--cgroupns",
        "--cidfile",
        "--cpus",
        "--cpu-shares",
        "--cpuset-cpus",
        "--device",
        "--dns",
        "--entrypoint",
        "--env",
        "--env-file",
        "--expose",
        "--gpus",
        "--health-cmd",
        "--hostname",
        "--ip",
        "--ipc",
        "--label",
        "--link",
        "--log-driver",
        "--log-opt",
        "--memory",
        "--memory-swap",
        "--mount",
        "--name",
        "--network",
        "--network-alias",
        "--pid",
        "--platform",
        "--publish",
        "--pull",
        "--restart",
        "--runtime",
        "--security-opt",
        "--shm-size",
        "--stop-signal",
        "--stop-timeout",
        "--storage-opt",
        "--sysctl",
        "--tmpfs",
        "--ulimit",
        "--user",
        "--userns",
        "--uts",
        "--volume",
        "--volumes-from",
        "--workdir",
    ]
)


def normalized(image: str) -> str:
    """How a registry names it: `nginx` -> `nginx:latest`, `docker.io/library/x:1` -> `x:1`."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "library/"):
        if image.startswith(prefix):
            image = image[len(prefix) :]
            break
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in last else f"{image}:latest"


def images_used(texts: Iterable[str]) -> list[str]:
    """The images pulled by these commands, scripts and files (Markdown too), normalized, in
    order of appearance; the scenario's own images (built, tagged, stages) are left out."""
    texts = [_commands_of(text) for text in texts]
    own = {normalized(name) for text in texts for name in _own_images(text)}
    found: dict[str, None] = {}
    for text in texts:
        for image in _pulled(text):
            if _REFERENCE.match(image) and image != "scratch":
                found.setdefault(normalized(image), None)
    return [image for image in found if image not in own]


def _commands_of(text: str) -> str:
    """Markdown's code spans and Killercoda's markers out of the way: `docker pull x`{{exec}}."""
    return _MARKERS.sub("", text).replace("`", "\n")


def _pulled(text: str) -> Iterator[str]:
    for command in _DOCKER_COMMAND.finditer(text):
        if command["verb"] in ("run", "pull", "create"):
            image = _image_argument(command["rest"], command["verb"] == "pull")
            if image:
                yield image
        elif command["verb"] == "tag" and (words := _words(command["rest"])):
            yield words[0]  # `docker tag SOURCE TARGET`: SOURCE must be there
    yield from (found["image"] for found in _FROM.finditer(text))
    yield from (found["image"] for found in _COMPOSE_IMAGE.finditer(text))


def _own_images(text: str) -> Iterator[str]:
    yield from (found["stage"] for found in _FROM.finditer(text) if found["stage"])
    yield from (found["image"] for found in _BUILT_TAG.finditer(text))
    for command in _DOCKER_COMMAND.finditer(text):
        words = _words(command["rest"])
        if command["verb"] in ("tag", "commit") and len(words) >= 2:
            yield words[-1]


def _image_argument(rest: str, pull: bool) -> str | None:
    """The first word of a docker run/create/pull that is neither an option nor its value."""
    words = iter(_words(rest))
    for word in words:
        if word.startswith("-"):
            if not pull and "=" not in word and word in _VALUED_OPTIONS:
                next(words, None)
            continue
        word = word.strip("\"'")  # the end of a quoted sentence: "try docker run x"
        return None if "$" in word or "<" in word else word
    return None


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: the plain words will do
        return text.split()

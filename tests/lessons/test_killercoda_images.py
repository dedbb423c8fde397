import pytest

from app.lessons.killercoda_images import images_used, normalized


@pytest.mark.parametrize(
    ("text", "images"),
    [
        ("docker run -d --name web -p 8080:80 nginx:alpine", ["nginx:alpine"]),
        ("`docker run hello-world`{{exec}}", ["hello-world:latest"]),
        ('echo "Welcome! Try: docker run hello-world"', ["hello-world:latest"]),
        ("docker pull docker.io/library/busybox:1.36", ["busybox:1.36"]),
        ("docker run -it --rm -e A=b -v x:/y --network=host redis:7 redis-cli", ["redis:7"]),
        ("docker container run --rm -u 1000 alpine id", ["alpine:latest"]),
        (
            "FROM --platform=linux/amd64 golang:1.22 AS build\nFROM build\nFROM scratch",
            ["golang:1.22"],
        ),
        ("services:\n  db:\n    image: postgres:16 # the database\n", ["postgres:16"]),
        ("docker build -t app . && docker run --rm app", []),
        ("docker tag busybox mine && docker run mine", ["busybox:latest"]),
        ("docker run $IMAGE; docker run <image>", []),
        ("docker run ghcr.io/owner/tool:v1 --help", ["ghcr.io/owner/tool:v1"]),
    ],
)
def test_images_used(text: str, images: list[str]) -> None:
    assert images_used([text]) == images


def test_images_are_listed_once_in_order_of_appearance() -> None:
    assert images_used(["docker pull b\ndocker pull a", "docker run b:latest"]) == [
        "b:latest",
        "a:latest",
    ]


def test_normalized() -> None:
    assert normalized("nginx") == "nginx:latest"
    assert normalized("localhost:5000/app") == "localhost:5000/app:latest"
    assert normalized("x@sha256:" + "0" * 64) == "x@sha256:" + "0" * 64

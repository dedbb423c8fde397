"""What an import could not carry over, one line each: settings LabDeck has no use for, and why a
scenario cannot work in a Docker sandbox (a Kubernetes cluster, a second host).

A LabDeck sandbox is one Debian container with its own Docker engine, beside the lesson; a
scenario that needs anything else says so in the report rather than failing in class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# imageid words that mean more than one Docker host (Killercoda's and Katacoda's backends).
_NOT_A_DOCKER_HOST = ("kubernetes", "k8s", "k3s", "kind", "minikube", "openshift", "nodes")
_PAGE_KEYS = {"title", "text", "verify", "background", "foreground", "courseData", "code"}
_DROPPED_PAGE_KEYS = {
    "answer": "the answer file is not imported; the task's solution is its {{exec}} commands",
    "credits": "credits are not shown",
}
_LAYOUT = "LabDeck shows the lesson beside one terminal"
_TOP_LEVEL = {
    "title": None,
    "description": None,
    "details": None,
    "time": "the estimated time is not used (each lesson has its own minutes)",
    "difficulty": "difficulty is not shown",
    "icon": "icons are not shown",
    "pathwayTitle": "pathways are not imported",
    "private": "LabDeck has no private scenarios (who may join is the join code)",
    "files": f"files opened in an editor at start: {_LAYOUT}",
    "interface": f"interface layout: {_LAYOUT}",
    "environment": f"environment (uilayout, dashboards, terminals): {_LAYOUT}",
}


@dataclass
class ImportReport:
    """One line per thing the author should know; ``cannot_work`` lines say why the scenario
    cannot work in a Docker sandbox at all."""

    lines: list[str] = field(default_factory=list)
    cannot_work: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)

    def cannot(self, reason: str) -> None:
        if reason not in self.cannot_work:
            self.cannot_work.append(reason)

    def text(self) -> str:
        cannot = [f"cannot work in a Docker sandbox: {reason}" for reason in self.cannot_work]
        return "".join(f"- {line}\n" for line in [*cannot, *self.lines])


def report_settings(index: dict[str, Any], report: ImportReport) -> None:
    """Report each setting of index.json that the import does not carry over."""
    for key, value in index.items():
        if key == "backend":
            _backend(value, report)
        elif key not in _TOP_LEVEL:
            report.add(f"index.json `{key}`: not a setting LabDeck knows; ignored")
        elif (reason := _TOP_LEVEL[key]) is not None:
            report.add(f"index.json `{key}`: {reason}")
    details = index.get("details") or {}
    for where, page in _pages(details):
        for key in page:
            if key in _DROPPED_PAGE_KEYS:
                report.add(f"{where} `{key}`: {_DROPPED_PAGE_KEYS[key]}")
            elif key not in _PAGE_KEYS:
                report.add(f"{where} `{key}`: not a setting LabDeck knows; ignored")
            elif key in ("courseData", "code"):
                role = "background" if key == "courseData" else "foreground"
                report.add(f"{where} `{key}` (Katacoda): run as its {role} script")
    _other_hosts(details.get("assets") or {}, report)


def _pages(details: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in ("intro", "finish"):
        if isinstance(details.get(name), dict):
            yield name, details[name]
    for number, step in enumerate(details.get("steps") or [], start=1):
        if isinstance(step, dict):
            yield f"step {number}", step


def _backend(backend: Any, report: ImportReport) -> None:
    if not isinstance(backend, dict):
        return
    image = str(backend.get("imageid") or "")
    if any(word in image.lower() for word in _NOT_A_DOCKER_HOST):
        report.cannot(
            f"backend imageid `{image}` is a Kubernetes cluster or several hosts; a LabDeck "
            "sandbox is one container with its own Docker engine, so kubectl and the other "
            "nodes are not there"
        )
    elif image:
        report.add(
            f"backend imageid `{image}`: sandboxes run LabDeck's Debian 12 image with Docker; "
            "the scenario's own image is not used"
        )
    for key in backend:
        if key != "imageid":
            report.add(f"backend `{key}`: not used (sandbox resources are in workshop.yaml)")


def _other_hosts(assets: Any, report: ImportReport) -> None:
    if not isinstance(assets, dict):
        return
    for host in assets:
        if host != "host01":
            report.add(f"assets for `{host}`: not copied; a sandbox is one host (host01)")

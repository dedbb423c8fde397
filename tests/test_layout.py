"""The house's layout, as issue 12 set it: Docker only inside its backend package, no import
loop in app/, tests that share helpers only through tests/support/ and conftest.py, and no
test without an assertion. Read with ``ast``: nothing here is imported to be checked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.imports import cycles, imports_of, module_graph, module_name, python_files
from tests.support.settings import REPO

DOCKER_PACKAGE = "app.sandboxes.docker"
# Modules outside app/sandboxes/docker that may import docker-py or that package. Only
# benchmarks of the Docker backend itself; everything else reaches Docker through the backend
# Protocol or app/sandboxes/backends.py.
DOCKER_OUTSIDE_ITS_PACKAGE = {
    "app.bench.spawn",  # times docker-py's own create against the backend's (raw vs cold)
    "app.bench.capacity",  # reads Docker sandboxes' cgroups, shims and disk (docs/hosting.md)
    "app.bench.terminal",  # a portal child process on real sandboxes, removed afterwards
    "app.bench.class_rehearsal.portal",  # idem, and counts what its instance left behind
    "app.bench.class_rehearsal.floor",  # raw `docker exec`s: the floor the checks are held to
}
# Names that make a test assert without an ``assert`` statement of its own.
ASSERTING_CALLS = {"raises", "warns", "fail", "expect", "assert_that"}
ASSERTING_PREFIXES = ("expect_", "assert_")


def imports_docker(target: str) -> bool:
    return target.split(".")[0] == "docker" or target.startswith(DOCKER_PACKAGE)


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_docker_is_imported_only_inside_its_backend_package() -> None:
    outside = [
        path for path in python_files("app") if not module_name(path).startswith(DOCKER_PACKAGE)
    ]
    found = {
        f"{relative(path)}:{each.line} imports {each.target}"
        for path in outside
        for each in imports_of(path)
        if imports_docker(each.target) and each.module not in DOCKER_OUTSIDE_ITS_PACKAGE
    }
    assert not found, "reach Docker through app/sandboxes/backends.py instead"


def test_the_docker_allow_list_holds_only_modules_that_need_it() -> None:
    needing = {
        module_name(path)
        for path in python_files("app")
        if any(imports_docker(each.target) for each in imports_of(path))
    }
    assert needing >= DOCKER_OUTSIDE_ITS_PACKAGE


def test_app_has_no_import_loop() -> None:
    assert cycles(module_graph("app")) == []


def test_a_test_module_imports_no_other_test_module() -> None:
    """Shared helpers live in tests/support/ (fixtures in conftest.py, registered by pytest)."""
    found = {
        f"{relative(path)}:{each.line} imports {each.target}"
        for path in python_files("tests")
        for each in imports_of(path)
        if each.target.startswith("tests.") and not each.target.startswith("tests.support.")
    }
    assert not found


def test_only_the_bench_s_own_tests_import_the_bench() -> None:
    found = {
        f"{relative(path)}:{each.line} imports {each.target}"
        for path in python_files("tests")
        if not module_name(path).startswith("tests.bench.")
        for each in imports_of(path)
        if each.target.startswith("app.bench")
    }
    assert not found, "move what tests need into app/sandboxes/docker/ or tests/support/"


def asserts(function: ast.AST) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name in ASSERTING_CALLS or name.startswith(ASSERTING_PREFIXES):
                return True
    return False


def missing_assertions(source: str, where: str) -> list[str]:
    tree = ast.parse(source, where)
    return [
        f"{where}:{node.lineno} {node.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not asserts(node)
    ]


def test_every_test_asserts_something() -> None:
    """A helper that asserts for a test is named ``expect_*`` or ``assert_*``."""
    found = [
        line
        for path in python_files("tests")
        for line in missing_assertions(path.read_text(), relative(path))
    ]
    assert found == []


def test_the_assertion_scan_sees_a_test_that_only_runs_code() -> None:
    sample = (
        "def test_runs(): print(1)\n"
        "def test_raises():\n    with pytest.raises(ValueError): int('x')\n"
        "def test_expects(): expect_ready(1)\n"
        "def test_asserts(): assert 1\n"
    )
    assert missing_assertions(sample, "sample.py") == ["sample.py:1 test_runs"]


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_loops_and_only_loops(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(graph) == expected

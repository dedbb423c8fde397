"""Validate a YAML block against a schema model, reporting problems at their line in the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.lessons.problems import ContentProblem

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class YamlBlock:
    """YAML text found in `file`, whose first line is line `first_line` (1-based) of the file."""

    text: str
    file: Path
    first_line: int
    label: str

    def problem(self, message: str, offset: int = 0) -> ContentProblem:
        return ContentProblem(self.file, self.first_line + offset, f"{self.label}: {message}")


def validate_block(
    model: type[Model], block: YamlBlock, problems: list[ContentProblem]
) -> Model | None:
    """The block as a `model`, or None after adding every problem found to `problems`."""
    try:
        data = yaml.safe_load(block.text)
        root = yaml.compose(block.text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        problems.append(_yaml_problem(block, error))
        return None
    if not isinstance(data, dict):
        problems.append(block.problem("must be YAML `key: value` lines"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        for detail in error.errors():
            offset = _line_of(root, detail["loc"])
            problems.append(block.problem(_describe(detail), offset))
        return None


def yaml_line(text: str, loc: tuple[int | str, ...]) -> int:
    """0-based line of the value at `loc` (e.g. ("images", 2, "recipe")) in a YAML text."""
    try:
        return _line_of(yaml.compose(text, Loader=yaml.SafeLoader), loc)
    except yaml.YAMLError:
        return 0


def _yaml_problem(block: YamlBlock, error: yaml.YAMLError) -> ContentProblem:
    mark = getattr(error, "problem_mark", None)
    reason = getattr(error, "problem", None) or str(error)
    return block.problem(f"invalid YAML: {reason}", mark.line if mark else 0)


def _describe(detail: ErrorDetails) -> str:
    where = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    if kind == "missing":
        reason = "field required"
    elif kind == "extra_forbidden":
        reason = "unknown key (check its spelling)"
    elif kind == "value_error":
        reason = str(detail.get("ctx", {}).get("error", detail["msg"]))
    else:
        reason = detail["msg"]
    return f"{where}: {reason}" if where else reason


def _line_of(root: Any, loc: tuple[int | str, ...]) -> int:
    """0-based line of the deepest YAML node on the error's path that exists."""
    node = root
    line = node.start_mark.line if node is not None else 0
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        key_line, node = child
        line = key_line
    return int(line)


def _child(node: Any, part: int | str) -> tuple[int, Any] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                return key.start_mark.line, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item.start_mark.line, item
    return None

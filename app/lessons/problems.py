"""What is wrong with a piece of content, said so an author can jump to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ContentProblem:
    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


class ContentError(Exception):
    """The content cannot be served; `problems` lists every reason found."""

    def __init__(self, problems: list[ContentProblem]) -> None:
        self.problems = problems
        listing = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the workshop content:\n{listing}")

"""The task a Killercoda step's verify script becomes (issue 15): titled and explained from the
step, its check running the script as the sandbox's root as Killercoda does, and a solution that
`content verify` can run on a fresh sandbox: the step's exec commands, after the earlier ones.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from app.lessons.killercoda_markdown import Command, ConvertedPage, fence_for, yaml_text
from app.lessons.killercoda_report import ImportReport

ROOT = "root"
CHECK_TIMEOUT = 30
# In a solution, a command that the next one interrupts (Ctrl-C in Killercoda's terminal) runs
# this long, then is killed, as the attendee would watch it and then press Ctrl-C.
INTERRUPTED_AFTER_SECONDS = 5


def script_body(script: str) -> str:
    """The script without its #! line: LabDeck runs it with bash -lc anyway."""
    lines = script.strip().splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def warn_about_root(where: str, commands: list[Command], report: ImportReport) -> None:
    if any("/root" in command.text for command in commands):
        report.add(
            f"{where}: its commands use /root; Killercoda's terminal is root in /root, "
            "LabDeck's attendee is `learner` in /home/learner (with sudo)"
        )


def task_block(
    slug: str,
    title: str,
    where: str,
    converted: ConvertedPage,
    verify: str,
    before: list[tuple[str, list[Command]]],
    report: ImportReport,
) -> str:
    """The ```task block of a step: its verify script as a root check, its commands as the
    solution (``before``: the earlier pages' titles and commands)."""
    task: dict[str, Any] = {
        "id": slug,
        "title": title,
        "instructions": _instructions(converted.text, title),
        "checks": [
            {
                "name": title,
                # The checker runs `bash -lc <run>`, so the script body runs as it is.
                "run": script_body(verify),
                "message": f"Not done yet: do what “{title}” asks, then check again.",
                "timeout": CHECK_TIMEOUT,
                "user": ROOT,
            }
        ],
    }
    if solution := _solution(converted.commands, before):
        task["solution"] = solution
    else:
        report.add(
            f"{where}: no {{{{exec}}}} commands, so its task has no solution for "
            "`content verify`; write one in the task's `solution` or in proofs.yaml"
        )
    content = yaml_text(task)
    fence = fence_for(content)
    return f"{fence}task\n{content}{fence}\n"


def _instructions(markdown: str, title: str) -> str:
    """The step's first paragraphs of prose: what it asks, in its own words (its code blocks
    are in the lesson above the card)."""
    prose: list[str] = []
    for block in re.split(r"\n\s*\n", markdown):
        text = block.strip()
        if text and not text.startswith(("#", "```", "~~~", "<", "!", ":::", "|", ">")):
            prose.append(re.sub(r":$", " (above).", text))
        if len(prose) == 3 or sum(map(len, prose)) >= 160:
            break
    joined = "\n\n".join(prose)
    if not joined:
        return f"Do the steps of “{title}” above."
    return joined if len(joined) <= 600 else joined[:600].rsplit(" ", 1)[0] + " …"


def _solution(commands: list[Command], before: list[tuple[str, list[Command]]]) -> str | None:
    """The step's exec commands, after those of the steps before (a fresh sandbox has none
    of their work); None when the step runs nothing."""
    if not commands:
        return None
    earlier = [command for _, page_commands in before for command in page_commands]
    script = _as_script([*earlier, *commands])
    own = f"```bash\n{''.join(script[len(earlier) :])}```\n"
    if not earlier:
        return f"The commands of this step:\n\n{own}"
    titles = ", ".join(f"“{title}”" for title, _ in before)
    return (
        f"On a fresh sandbox, first the commands of the steps before ({titles}):\n\n"
        f"```bash\n{''.join(script[: len(earlier)])}```\n\nthen this step's:\n\n{own}"
    )


def _as_script(commands: list[Command]) -> list[str]:
    """The commands as a script types them: one the next interrupts runs a few seconds only."""
    script = [command.text for command in commands]
    for index, command in enumerate(commands[1:], start=1):
        if command.interrupts:
            body = shlex.quote(script[index - 1].rstrip("\n"))
            script[index - 1] = (
                "# runs until the next command's Ctrl-C in the terminal\n"
                f"timeout -s KILL {INTERRUPTED_AFTER_SECONDS} bash -c {body} || true\n"
            )
    return script

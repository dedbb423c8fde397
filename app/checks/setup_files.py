"""Copy files of a workshop's ``assets/`` folder into a sandbox (``setup.files`` in workshop.yaml).

Through the same ``exec`` checks use, so every backend can do it: each file goes in base64
pieces, one exec per piece, because Linux caps one argument at 128 KiB (MAX_ARG_STRLEN) and the
command is one argument of ``bash -lc``. Copied as the sandbox's root (targets such as
/usr/local/bin), then handed to ``learner`` when the target is in its home.
"""

from __future__ import annotations

import asyncio
import base64
import posixpath
import shlex
from pathlib import Path

from app.checks.runner import Executor
from app.lessons.schema import SetupFile
from app.sandboxes.base import ExecResult

PIECE_BYTES = 48 * 1024  # 64 KiB once in base64: half the per-argument limit
COPY_TIMEOUT_SECONDS = 30.0
LEARNER_HOME = "/home/learner"


async def copy_files(
    backend: Executor, sandbox: str, workshop_dir: Path, files: list[SetupFile]
) -> ExecResult:
    """Copy each file in order; the first failure's result (its output says which file), or
    a success."""
    for file in files:
        result = await copy_file(backend, sandbox, workshop_dir, file)
        if result.timed_out or result.exit_code != 0:
            return result
    return ExecResult(0, "")


async def copy_file(
    backend: Executor, sandbox: str, workshop_dir: Path, file: SetupFile
) -> ExecResult:
    source = workshop_dir / file.source
    try:
        data = await asyncio.to_thread(source.read_bytes)
    except OSError as error:
        return ExecResult(2, f"{file.source}: cannot read it ({error.strerror or error})\n")
    for command in copy_commands(data, file):
        result = await backend.exec(sandbox, command, user="root", timeout=COPY_TIMEOUT_SECONDS)
        if result.timed_out or result.exit_code != 0:
            return ExecResult(
                result.exit_code, f"copying {file.source} to {file.target}:\n{result.output}"
            )
    return ExecResult(0, "")


def copy_commands(data: bytes, file: SetupFile) -> list[str]:
    """The shell commands that write ``data`` at ``file.target``, then set its mode and owner."""
    target = shlex.quote(file.target)
    folder = shlex.quote(posixpath.dirname(file.target))
    pieces = [data[start : start + PIECE_BYTES] for start in range(0, len(data), PIECE_BYTES)]
    commands = [f"mkdir -p -- {folder} && : > {target}"]
    commands += [
        f"printf %s {base64.b64encode(piece).decode('ascii')} | base64 -d >> {target}"
        for piece in pieces
    ]
    finish = []
    if file.mode:
        finish.append(f"chmod {shlex.quote(file.mode)} -- {target}")
    if file.target.startswith(LEARNER_HOME + "/"):
        finish.append(f"chown learner:learner -- {target}")
    if finish:
        commands.append(" && ".join(finish))
    return commands

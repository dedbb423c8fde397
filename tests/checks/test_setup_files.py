import os
from pathlib import Path

import pytest

from app.checks.setup_files import PIECE_BYTES, copy_commands, copy_files
from app.lessons.schema import SetupFile
from tests.support.checks import ShellBackend

pytestmark = pytest.mark.anyio


async def test_a_file_larger_than_an_argument_arrives_whole_with_its_mode(tmp_path: Path) -> None:
    workshop = tmp_path / "lab"
    (workshop / "assets").mkdir(parents=True)
    data = os.urandom(3 * PIECE_BYTES + 17)
    (workshop / "assets" / "tool").write_bytes(data)
    target = tmp_path / "sandbox" / "usr" / "local" / "bin" / "tool"
    spec = SetupFile(source="assets/tool", target=str(target), mode="+x")
    backend = ShellBackend(tmp_path / "homes")
    result = await copy_files(backend, "s", workshop, [spec])
    assert (result.exit_code, result.timed_out) == (0, False)
    assert target.read_bytes() == data and os.access(target, os.X_OK)
    assert len(backend.commands) == 1 + 4 + 1  # make it, four pieces, chmod
    assert max(map(len, backend.commands)) < 128 * 1024


async def test_a_missing_source_fails_with_its_name(tmp_path: Path) -> None:
    spec = SetupFile(source="assets/gone.sh", target="/usr/local/bin/gone.sh")
    result = await copy_files(ShellBackend(tmp_path), "s", tmp_path, [spec])
    assert result.exit_code != 0 and result.output.startswith("assets/gone.sh: cannot read it")


def test_files_in_the_learner_s_home_are_handed_to_learner() -> None:
    spec = SetupFile(source="assets/a", target="/home/learner/my file")
    commands = copy_commands(b"", spec)
    assert commands == [
        "mkdir -p -- /home/learner && : > '/home/learner/my file'",
        "chown learner:learner -- '/home/learner/my file'",
    ]

"""The README's quickstart and Python example run as written, on ml-latest-small, in a fresh folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.slow


def block(section: str, language: str) -> str:
    """The first ``language`` code block after the heading ``section``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    found = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert found, f"no {language} block under {section}"
    return found.group(1)


def environment() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # this environment's mfrec
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def test_the_quickstart_commands_run_as_written(tmp_path):
    commands = [line.split("  #")[0].strip() for line in block("Quickstart", "bash").splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) >= 6 and all(c.startswith("mfrec ") for c in commands)
    for command in commands:
        if command.startswith("mfrec serve"):  # blocks; the server has its own tests
            continue
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=environment(), capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr
    served = next(c for c in commands if c.startswith("mfrec serve")).split()[2]
    assert (tmp_path / served / "model.safetensors").is_file()  # what the serve line names exists


def test_the_python_example_runs_as_written(tmp_path):
    code = block("Python", "python")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment(), capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "runs" / "api" / "model.safetensors").is_file()

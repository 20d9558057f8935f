"""Shell completion of `prs` (argcomplete): the installed console script answers a completion
request, the bash code of `prs completion bash` is valid and completes in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PRS = Path(sys.executable).parent / "prs"


@pytest.fixture
def prs() -> Path:
    assert PRS.exists(), f"{PRS}: the console script is missing; run `make venv` (pip install -e .)"
    return PRS


def complete(prs: Path, line: str, tmp_path: Path) -> list[str]:
    """What `prs` answers to argcomplete's request, as a shell makes it."""
    answer = tmp_path / "answer"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(answer), "_ARGCOMPLETE_IFS": "\n"}
    done = subprocess.run([str(prs)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [word.strip() for word in answer.read_text().split("\n") if word.strip()]


@pytest.mark.parametrize(("line", "expected"), [
    ("prs st", ["status"]),  # a command the operator's package registers
    ("prs s", ["status", "submit"]),
    ("prs completion ", ["--help", "-h", "bash", "fish", "zsh"]),
    ("prs status --out", ["--output"]),
    ("prs logs x --ro", ["--role"]),
])
def test_the_console_script_completes(prs: Path, tmp_path: Path, line: str,
                                      expected: list[str]) -> None:
    assert sorted(complete(prs, line, tmp_path)) == expected


def test_the_bash_code_is_valid_and_completes_in_bash(prs: Path) -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed: apt-get install bash"
    code = subprocess.run([str(prs), "completion", "bash"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert "complete" in code and "prs" in code
    syntax = subprocess.run([bash, "-n"], input=code, capture_output=True, text=True, timeout=60)
    assert syntax.returncode == 0, syntax.stderr
    # The function bash calls on <Tab>, with the words bash gives it.
    script = code + ('\nCOMP_LINE="prs st"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(prs st); '
                     'COMP_CWORD=1; _python_argcomplete prs st prs; '
                     'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = {**os.environ, "PATH": f"{prs.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([bash, "-c", script], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert [word.strip() for word in done.stdout.splitlines()] == ["status"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_their_code(prs: Path, shell: str) -> None:
    code = subprocess.run([str(prs), "completion", shell], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    marker = "compdef" if shell == "zsh" else "complete --command prs"
    assert marker in code

"""The README's commands are what a user pastes into a shell: each one must parse there and
be accepted by the command line (a renamed or removed flag shows up here first)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nasforge.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[str]:
    """Every ``nasforge ...`` command of the README's bash blocks, continuation lines joined."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("nasforge "):
                commands.append(line)
    return commands


COMMANDS = _commands()


def test_the_readme_has_commands() -> None:
    assert len(COMMANDS) >= 20
    assert any(c.startswith("nasforge search --task planetoid:Cora") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_readme_command_parses_in_the_shell_and_the_cli(command: str) -> None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    operators = [w for w in words if w and set(w) <= set("<>|&;()")]
    assert not operators, f"the shell would read {operators} as operators in: {command}"
    try:
        build_parser().parse_args(words[1:])
    except SystemExit as exc:
        pytest.fail(f"the CLI refuses a README command (exit {exc.code}): {command}")


def test_the_readme_python_compiles() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for i, code in enumerate(blocks):
        compile(code, f"README.md python block {i}", "exec")

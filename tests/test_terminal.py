"""Output that is not a terminal (a log, a pipe, CI): one whole line per finished trial, and
tables and commands never folded at 80 columns, so that what is printed can be copied."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

PIPE_ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def nasforge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        env={**PIPE_ENV, "NO_COLOR": "1"},
        timeout=120,
        check=True,
    )


def test_search_into_a_pipe_writes_one_whole_line_per_trial(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    name = "a-name-long-enough-that-a-folded-line-would-show-" + "x" * 40
    done = nasforge(
        "search", "--benchmark", "nas-bench-graph:cora", "--budget", "5", "--seed", "1",
        "--name", name, "--db", db,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if ": trial " in line]
    listed = nasforge("trials", "--name", name, "--db", db)
    archs = set(re.findall(r"gnn\[links=[\d,]+ ops=[a-z,-]+\]", listed.stdout))
    assert len(archs) == 5  # each architecture whole on its row of the table
    assert len(lines) == 5
    for number, line in enumerate(lines):
        assert line.startswith(f"{name}: trial {number} COMPLETE val_acc=0.")
        assert any(line.endswith(f" {arch}") for arch in archs)
    assert "━" not in done.stderr  # no progress bar drawn into a pipe
    hint = next(line for line in done.stdout.splitlines() if line.startswith("next: "))
    command = shlex.split(hint.removeprefix("next: "))
    assert command == ["nasforge", "trials", "--name", name, "--db", db]
    assert max(map(len, done.stdout.splitlines())) > 80


def test_on_a_terminal_the_bar_shows_the_running_trials_epochs(tmp_path: Path) -> None:
    """A real pseudo-terminal: the progress bar reads each running trial's epochs from the
    worker processes (``epoch 17/80``) while it trains."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nasforge.cli",
            "search",
            "--task",
            "tabular:digits",
            "--budget",
            "2",
            "--epochs",
            "80",
            "--db",
            str(tmp_path / "t.db"),
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**PIPE_ENV, "COLUMNS": "200", "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    seen = {int(done) for done in re.findall(r"epoch (\d+)/80", text)}
    assert len(seen) >= 2 and max(seen) <= 80, text[-2000:]

"""How fast the command line answers what needs no work: ``--help``, ``--version`` and a usage
error (an unknown task), each a whole process, timed from outside.

Goal: each under 0.3 s (median) on an idle machine. Runs alternate between the commands; the
Python interpreter's own start-up (``python -c pass``) is timed alongside as the floor.

Example::

    python benchmarks/cli_startup.py --runs 15
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _report import header, machine_lines, markdown_table, publish

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cli_startup.md"
GOAL_S = 0.3


def _commands(db: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "nasforge.cli"]
    return {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "nasforge --help": [*cli, "--help"],
        "nasforge --version": [*cli, "--version"],
        "nasforge search --task mnist (usage error)": [
            *cli,
            "search",
            "--task",
            "mnist",
            "--db",
            db,
        ],
    }


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(str(Path(tmp) / "never-written.db"))
        for command in commands.values():  # warm the file cache
            _time(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(_time(command))
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        goal = "" if "floor" in name else ("met" if median < GOAL_S else "NOT met")
        rows.append([name, f"{min(values):.3f}", f"{median:.3f}", f"{max(values):.3f}", goal])
    lines = [
        *header("Command-line start-up", started, time.perf_counter() - t0, machine_lines()),
        "",
        f"Each command timed {args.runs} times as a whole process, the commands alternating; "
        "seconds of wall time:",
        "",
        *markdown_table(["command", "min s", "median s", "max s", f"goal < {GOAL_S} s"], rows),
    ]
    text = "\n".join(lines) + "\n"
    publish(text, args.out)


if __name__ == "__main__":
    main()

"""What every benchmark report starts with: the command, the machine, and Markdown tables."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "optuna", "sqlalchemy", "numpy", "nas-bench-graph", "nasforge")


def command_line() -> str:
    """The exact command that started this process, runnable from its working directory."""
    env = "".join(
        f"{name}={shlex.quote(os.environ[name])} "
        for name in ("PYTHONPATH", "OMP_NUM_THREADS")
        if name in os.environ
    )
    return f"cd {shlex.quote(os.getcwd())} && {env}{shlex.join([sys.executable, *sys.argv])}"


def nproc() -> str:
    """CPUs available to this process (``nproc --all`` would ignore affinity, and plain
    ``nproc`` follows ``OMP_NUM_THREADS``; the affinity mask is what the process may use)."""
    return str(len(os.sched_getaffinity(0)))


def version(package: str) -> str:
    """Installed version of ``package``, or ``not installed``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit() -> str:
    """The commit of the working tree (with ``+dirty`` when it has changes)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


STARTED_AT_COMMIT = git_commit()
"""The commit when the benchmark started (read at import, before any long run)."""


LOAD_AT_START = os.getloadavg()[0]
"""The 1-minute load average when the benchmark started."""


def machine_lines(python_extra: str = "") -> list[str]:
    """Markdown bullet lines describing the machine, the code and the library versions."""
    return [
        f"- nproc: {nproc()}; platform: {platform.platform()}; 1-minute load average "
        f"{LOAD_AT_START:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
        f"- python: {platform.python_version()} ({sys.executable}){python_extra}",
        "- " + ", ".join(f"{lib} {version(lib)}" for lib in LIBRARIES),
        f"- nasforge commit: {STARTED_AT_COMMIT}",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def header(title: str, started: str, wall: float, machine: Sequence[str]) -> list[str]:
    """The report's opening: title, command, date, machine lines and wall time."""
    return [
        f"# {title}",
        "",
        "Command:",
        "",
        "```",
        command_line(),
        "```",
        "",
        f"- date: {started}",
        *machine,
        f"- wall time of the whole run: {wall:.1f} s",
    ]


def publish(text: str, out: Path) -> None:
    """Print the report and write it to ``out`` (creating its folder)."""
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


def mean_range(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``mean (min to max)`` of ``values``, or ``-`` when there are none."""
    if not values:
        return "-"
    shown = [fmt.format(v) for v in (statistics.fmean(values), min(values), max(values))]
    return f"{shown[0]} ({shown[1]} to {shown[2]})"


def option_value(text: str) -> int | float | str:
    """A ``KEY=VALUE`` option's value from the command line: an int, a float, or the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def timed_search(db: Path, name: str, **settings: Any) -> tuple[Any, float, dict[str, Any] | None]:
    """``nasforge.search(db=db, name=name, executor="inline", **settings)``: its result, its
    wall time in seconds, and its supernet phase's result record (``None`` without one)."""
    import nasforge
    from nasforge.store.sql import open_store

    start = time.perf_counter()
    result = nasforge.search(db=db, name=name, executor="inline", **settings)
    seconds = time.perf_counter() - start
    store = open_store(db, create=False)
    try:
        done = store.phase(store.get_experiment(name).id, "result")
    finally:
        store.close()
    return result, seconds, done[-1].data if done else None

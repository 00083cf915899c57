"""The demo's digits search alone and next to a CPU-bound competitor: CPU spent, wall time.

Runs ``python -m nasforge.demo`` (its NAS-Bench-Graph part and its digits part: evolution over
``nb201`` cells trained for real) as a whole process, first on the machine as it is ("alone"),
then next to a competitor: one busy process per core, started before and stopped after.
Each run's user and system CPU and its involuntary context switches are read from the
operating system for the demo's whole process tree (its worker processes included). Threads
of a training process that spin while they wait for their cores show as user CPU that grows
with contention; the goal of the issue "Where practitioners work" is user CPU with the
competitor at most 1.3x of alone.

``--env NAME=VALUE`` adds a variant run with that environment (e.g. ``OMP_WAIT_POLICY=PASSIVE``,
which makes OpenMP's waiting threads sleep instead of spin), side by side with the default.

Example::

    python benchmarks/contention.py --repeats 2 --env OMP_WAIT_POLICY=PASSIVE
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _report import header, machine_lines, markdown_table, publish

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "contention.md"
GOAL = 1.3


@dataclass(frozen=True, slots=True)
class Run:
    variant: str
    competitor: bool
    wall: float
    user: float
    system: float
    switches: int


def _spin() -> None:  # pragma: no cover - runs in the competitor's processes
    while True:
        pass


@contextmanager
def competitor(on: bool) -> Iterator[None]:
    """One busy process per core while the block runs (nothing when ``on`` is false)."""
    if not on:
        yield
        return
    procs = [
        multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        for _ in range(os.cpu_count() or 1)
    ]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # they are busy before the demo starts
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.join()


def run_demo(variant: str, env: dict[str, str], *, busy: bool, digits: int) -> Run:
    """The demo as one child process; CPU and switches of its whole tree."""
    with tempfile.TemporaryDirectory() as tmp, competitor(busy):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nasforge.demo",
                "--db",
                str(Path(tmp) / "demo.db"),
                "--report",
                "",
                "--digits-budget",
                str(digits),
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            check=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(
        variant=variant,
        competitor=busy,
        wall=wall,
        user=after.ru_utime - before.ru_utime,
        system=after.ru_stime - before.ru_stime,
        switches=after.ru_nivcsw - before.ru_nivcsw,
    )


def _range(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    shown = [fmt.format(v) for v in (statistics.median(values), min(values), max(values))]
    return f"{shown[0]} ({shown[1]} to {shown[2]})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--digits-budget", type=int, default=12, help="the demo's default: 12")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE of a variant (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    variants: dict[str, dict[str, str]] = {"default": {}}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
        variants[item] = {name: value}

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    runs: list[Run] = []
    for repeat in range(args.repeats):
        for variant, env in variants.items():
            for busy in (False, True):
                run = run_demo(variant, env, busy=busy, digits=args.digits_budget)
                runs.append(run)
                print(f"repeat {repeat} {variant} competitor={busy}: {run}", flush=True)
    wall = time.perf_counter() - t0

    rows = []
    for variant in variants:
        alone = [r for r in runs if r.variant == variant and not r.competitor]
        loaded = [r for r in runs if r.variant == variant and r.competitor]
        ratios = [b.user / a.user for a, b in zip(alone, loaded, strict=True) if a.user > 0]
        for label, group in (("alone", alone), ("with competitor", loaded)):
            rows.append(
                [
                    variant,
                    label,
                    _range([r.wall for r in group]),
                    _range([r.user for r in group]),
                    _range([r.system for r in group]),
                    _range([float(r.switches) for r in group], "{:.0f}"),
                    _range(ratios, "{:.2f}") if group is loaded and ratios else "",
                ]
            )
    lines = header(
        "The demo alone and next to a CPU-bound competitor (one busy process per core)",
        started,
        wall,
        machine_lines(),
    )
    lines += [
        "",
        f"`python -m nasforge.demo --digits-budget {args.digits_budget}` as one process, "
        f"{args.repeats} repeats of each row, alternating; median (min to max). CPU seconds "
        "and involuntary context switches are the demo's whole process tree (its workers "
        f"included). Goal: user CPU with the competitor at most {GOAL}x of alone.",
        "",
        *markdown_table(
            [
                "variant",
                "machine",
                "wall s",
                "user CPU s",
                "system CPU s",
                "involuntary switches",
                "user CPU vs alone",
            ],
            rows,
        ),
        "",
    ]
    publish("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

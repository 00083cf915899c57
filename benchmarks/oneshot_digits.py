"""One-shot NAS on NAS-Bench-201 cells, on scikit-learn's digits, against evolution.

Every one-shot method runs ``nasforge search --task image:digits --strategy METHOD`` (the
``nb201`` space at the task's small-network recipe: 8 channels, one cell per stage, 20
epochs): its supernet phase, then its derived cell trained from scratch. Beside them, in the
same run and with the same seeds, regularized evolution trains cells for real for the median
wall time of the one-shot runs. Reported per method: the trained cell's validation and test
accuracy, the share of parameter-free ops (none, skip_connect) in the derived cells (DARTS's
collapse shows there), and the wall time.

Example::

    python benchmarks/oneshot_digits.py --seeds 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _report import (
    header,
    machine_lines,
    markdown_table,
    mean_range,
    option_value,
    publish,
    timed_search,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "oneshot_digits.md"
METHODS = (
    "darts",
    "darts:selection=perturbation",
    "pc-darts",
    "gdas",
    "spos",
    "enas",
    "proxylessnas",
)


@dataclass(frozen=True, slots=True)
class Run:
    method: str
    seed: int
    arch: str
    val: float
    test: float
    free: float | None
    seconds: float


def _options(method: str) -> tuple[str, dict[str, Any]]:
    name, *pairs = method.split(":")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        options[key] = option_value(value)
    return name, options


def search(method: str, seed: int, workdir: Path, budget: str, epochs: int | None) -> Run:
    strategy, options = _options(method)
    db = workdir / f"{method.replace(':', '-').replace('=', '-')}-{seed}.db"
    result, seconds, phase = timed_search(
        db,
        f"run-{seed}",
        task="image:digits",
        strategy=strategy,
        options=options,
        seed=seed,
        budget=budget,
        **({"epochs": epochs} if epochs else {}),
    )
    best = result.best
    free = float(phase["free"][0]) if phase else None
    return Run(
        method,
        seed,
        str(best.arch),
        best.metrics["val_acc"],
        best.test_metrics["test_acc"],
        free,
        seconds,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        help="one-shot methods, options after colons: darts:selection=perturbation",
    )
    parser.add_argument("--epochs", type=int, default=None, help="instead of the task's 20")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for method in args.methods:
            for seed in range(args.seeds):
                runs.append(search(method, seed, workdir, "1", args.epochs))
                print(runs[-1], flush=True)
        wall = statistics.median(r.seconds for r in runs)
        for seed in range(args.seeds):
            runs.append(search("evolution", seed, workdir, f"{max(wall, 1):.0f}s", args.epochs))
            print(runs[-1], flush=True)
    total = time.perf_counter() - t0
    rows = []
    for method in [*args.methods, "evolution"]:
        mine = [r for r in runs if r.method == method]
        frees = [r.free for r in mine if r.free is not None]
        rows.append(
            [
                f"`{method}`",
                len(mine),
                mean_range([100 * r.val for r in mine]),
                mean_range([100 * r.test for r in mine]),
                mean_range(frees) if frees else "-",
                mean_range([r.seconds for r in mine], "{:.0f}"),
            ]
        )
    lines = [
        *header("One-shot NAS on nb201 cells, digits", started, total, machine_lines()),
        f"- evolution ran for {wall:.0f} s per seed, the median wall time of the one-shot runs",
        f"- training epochs: {args.epochs or 'the task recipe (20)'}; one search at a time",
        "",
        "Mean (min to max) over seeds; accuracies of the cell trained from scratch (the best "
        "trial of evolution). Free: share of parameter-free ops (none, skip_connect) in the "
        "derived cell.",
        "",
        *markdown_table(
            ["method", "runs", "val acc %", "test acc %", "free", "seconds"],
            rows,
        ),
        "",
        "Per run:",
        "",
        *markdown_table(
            ["method", "seed", "cell", "val %", "test %", "free", "seconds"],
            [
                [
                    f"`{r.method}`",
                    r.seed,
                    f"`{r.arch}`",
                    f"{100 * r.val:.2f}",
                    f"{100 * r.test:.2f}",
                    "-" if r.free is None else f"{r.free:.2f}",
                    f"{r.seconds:.0f}",
                ]
                for r in runs
            ],
        ),
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

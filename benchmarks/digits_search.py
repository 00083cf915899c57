"""Search with real training on scikit-learn's digits: random vs evolution vs local search.

Every strategy runs through ``nasforge.search`` (the real Experiment loop, a SQLite store, real
training of each candidate on the 60/20/20 split of the 1,797 8x8 digits, split seed 0) for
the same seeds and the same budget of distinct architectures. The architecture a run "found"
is the one with the best validation accuracy among those it trained (earliest on ties); we
report its test accuracy (mean and standard deviation over seeds, never best-of-seeds), its
validation accuracy, and the wall time of a run.

Example (smoke run)::

    PYTHONPATH=src python benchmarks/digits_search.py --seeds 1 --budget 3 --epochs 2 \
        --out /tmp/digits_smoke.md
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

import torch

from _report import header, machine_lines, markdown_table, publish
from nasforge import api
from nasforge.result import Status

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "digits_search.md"
STRATEGIES = ("random", "evolution", "local")


@dataclass(frozen=True, slots=True)
class Run:
    strategy: str
    seed: int
    found_val: float
    found_test: float
    found_arch: str
    trained: int
    failed: int
    wall: float


def run_one(
    strategy: str, seed: int, *, space: str, budget: int, epochs: int | None, db: Path
) -> Run:
    start = time.perf_counter()
    result = api.search(
        task="image:digits" if space == "nb201" else "tabular:digits",
        space=space,
        strategy=strategy,
        budget=budget,
        seed=seed,
        name=f"{space}-{strategy}-seed{seed}",
        db=db,
        epochs=epochs,
    )
    wall = time.perf_counter() - start
    trials = api.trials(result.name, db=db)
    best = result.best
    if best is None:
        raise RuntimeError(f"{strategy} seed {seed}: no trial completed")
    return Run(
        strategy=strategy,
        seed=seed,
        found_val=best.metrics["val_acc"],
        found_test=best.test_metrics["test_acc"],
        found_arch=str(best.arch),
        trained=sum(t.status is Status.COMPLETE for t in trials),
        failed=sum(t.status is Status.FAILED for t in trials),
        wall=wall,
    )


def _mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=["nb201", "mlp"], default="nb201")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=30, help="distinct architectures per run")
    parser.add_argument("--epochs", type=int, default=None, help="default: the task's protocol")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "digits.db"
        for seed in range(args.seeds):
            for strategy in args.strategies:
                run = run_one(
                    strategy, seed, space=args.space, budget=args.budget, epochs=args.epochs, db=db
                )
                runs.append(run)
                print(
                    f"{strategy:10s} seed {seed}: val {run.found_val:.4f} test "
                    f"{run.found_test:.4f} ({run.wall:.0f} s) {run.found_arch}",
                    flush=True,
                )
    wall = time.perf_counter() - t0

    setup = api.plan(
        task="image:digits" if args.space == "nb201" else "tabular:digits",
        space=args.space,
        budget=1,
        epochs=args.epochs,
    )
    evaluator = setup.evaluator
    lines = header(
        f"Architecture search with real training on digits ({args.space})",
        started,
        wall,
        machine_lines(f"; torch threads {torch.get_num_threads()}"),
    )
    lines += [
        "",
        "## Protocol",
        "",
        f"- task `{evaluator.describe()['task']['name']}` (scikit-learn's digits), "
        f"{evaluator.describe()['task']['split']} "
        "train/validation/test examples (split seed 0), inputs standardised",
        f"- space `{args.space}`; training {evaluator.describe()['train']}",
        f"- model settings: {evaluator.describe()['hyper']}",
        f"- {args.seeds} seeds x {args.budget} distinct architectures per strategy, one process",
        "- found = the best-validation architecture among those a run trained; its test accuracy "
        "is reported (mean ± standard deviation over seeds)",
        "",
        "## Results",
        "",
    ]
    rows = []
    for strategy in args.strategies:
        mine = [r for r in runs if r.strategy == strategy]
        rows.append(
            [
                strategy,
                _mean_std([r.found_test for r in mine]),
                _mean_std([r.found_val for r in mine]),
                f"{statistics.fmean(r.wall for r in mine):.0f}",
                sum(r.failed for r in mine),
            ]
        )
    lines += markdown_table(
        ["strategy", "test acc % of found", "val acc % of found", "s per run", "failed trials"],
        rows,
    )
    lines += ["", "## Every run", ""]
    lines += markdown_table(
        ["strategy", "seed", "val acc", "test acc", "s", "found architecture"],
        [
            [
                r.strategy,
                r.seed,
                f"{r.found_val:.4f}",
                f"{r.found_test:.4f}",
                f"{r.wall:.0f}",
                f"`{r.found_arch}`",
            ]
            for r in runs
        ],
    )
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

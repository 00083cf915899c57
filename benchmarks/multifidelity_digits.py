"""Multi-fidelity search on digits: Hyperband and ASHA against full-budget random search.

Every method runs through ``nasforge.search`` (the real Experiment loop, a SQLite store, real
training of ``nb201`` cells on the 60/20/20 split of scikit-learn's digits) for the same wall
time and the same seeds. Random search trains every candidate for the full ``--epochs``;
Hyperband and ASHA train most candidates for fewer epochs (rungs of factor 3 up to the same
``--epochs``) and retrain the best at full length. A method's result is its best-validation
architecture at full length; we report its test accuracy and the wall time at which the run
had found it (mean and standard deviation over seeds).

Example (smoke run)::

    PYTHONPATH=src python benchmarks/multifidelity_digits.py --seeds 1 --seconds 10 \
        --epochs 3 --out /tmp/mf_smoke.md
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

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "multifidelity_digits.md"
METHODS = ("random", "hyperband", "asha")


@dataclass(frozen=True, slots=True)
class Run:
    method: str
    seed: int
    test: float | None
    val: float | None
    found_after: float | None
    trials: int
    full_trials: int
    archs: int


def run_one(method: str, seed: int, *, seconds: int, epochs: int, db: Path) -> Run:
    start = time.time()
    result = api.search(
        task="image:digits",
        space="nb201",
        strategy=method,
        budget=f"{seconds}s",
        seed=seed,
        name=f"{method}-seed{seed}",
        db=db,
        epochs=epochs,
    )
    trials = api.trials(result.name, db=db)
    full = [t for t in trials if t.fidelity == epochs and t.status is Status.COMPLETE]
    best = result.best if result.best is not None and result.best.fidelity == epochs else None
    return Run(
        method=method,
        seed=seed,
        test=None if best is None else best.test_metrics["test_acc"],
        val=None if best is None else best.metrics["val_acc"],
        found_after=None if best is None or best.finished_at is None else best.finished_at - start,
        trials=len(trials),
        full_trials=len(full),
        archs=result.summary.archs,
    )


def _mean_std(values: Sequence[float | None], scale: float = 1.0, digits: int = 2) -> str:
    real = [v * scale for v in values if v is not None]
    if not real:
        return "-"
    std = statistics.stdev(real) if len(real) > 1 else 0.0
    missing = len(values) - len(real)
    extra = f" ({missing} runs without a full-length result)" if missing else ""
    return f"{statistics.fmean(real):.{digits}f} ± {std:.{digits}f}{extra}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=150, help="wall time per run")
    parser.add_argument("--epochs", type=int, default=20, help="full training length")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "mf.db"
        for seed in range(args.seeds):
            for method in args.methods:
                run = run_one(method, seed, seconds=args.seconds, epochs=args.epochs, db=db)
                runs.append(run)
                print(f"{method:10s} seed {seed}: {run}", flush=True)
    wall = time.perf_counter() - t0

    evaluator = api.plan(task="image:digits", space="nb201", budget=1, epochs=args.epochs)
    describe = evaluator.evaluator.describe()
    ladder = api.plan(
        task="image:digits", space="nb201", strategy="asha", budget=1, epochs=args.epochs
    ).strategy.options()
    lines = header(
        "Multi-fidelity search on digits: Hyperband and ASHA vs full-budget random search",
        started,
        wall,
        machine_lines(f"; torch threads {torch.get_num_threads()}"),
    )
    lines += [
        "",
        "## Protocol",
        "",
        f"- task `image:digits`, split {describe['task']['split']} (seed 0); space `nb201`, "
        f"model {describe['hyper']}",
        f"- training {describe['train']}",
        f"- every run: {args.seconds} s of wall time, one process; random search trains each "
        f"candidate for {args.epochs} epochs; Hyperband and ASHA use {ladder} (rungs of "
        "factor eta)",
        "- result of a run: its best-validation architecture among those trained for the full "
        f"{args.epochs} epochs; 'found after' is when that trial finished",
        "",
        "## Results",
        "",
    ]
    rows = []
    for method in args.methods:
        mine = [r for r in runs if r.method == method]
        rows.append(
            [
                method,
                _mean_std([r.test for r in mine], 100),
                _mean_std([r.val for r in mine], 100),
                _mean_std([r.found_after for r in mine], 1, 0),
                f"{statistics.fmean(r.archs for r in mine):.1f}",
                f"{statistics.fmean(r.trials for r in mine):.1f}",
                f"{statistics.fmean(r.full_trials for r in mine):.1f}",
            ]
        )
    lines += markdown_table(
        [
            "method",
            "test acc %",
            "val acc %",
            "found after s",
            "archs",
            "trials",
            "full-length trials",
        ],
        rows,
    )
    lines += ["", "## Every run", ""]
    lines += markdown_table(
        ["method", "seed", "test acc", "val acc", "found after s", "archs", "trials"],
        [
            [
                r.method,
                r.seed,
                "-" if r.test is None else f"{r.test:.4f}",
                "-" if r.val is None else f"{r.val:.4f}",
                "-" if r.found_after is None else f"{r.found_after:.0f}",
                r.archs,
                r.trials,
            ]
            for r in runs
        ],
    )
    publish("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

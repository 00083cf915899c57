"""Speed-up of a training search from local worker processes.

The same 8 trials (random search, seed 0, so the same 8 architectures) run through the real
search loop (``nasforge.api.search`` with a SQLite store) on one graph, with:

* 1 worker: the default, training in the search process with all CPU threads;
* 1 worker process with 1 thread (process scaling baseline);
* 2 worker processes with the threads split between them (1 each on 2 cores).

Goal: 2 workers at least 1.8x faster than 1. Three workloads are reported: Cora under a
short NB-Graph-style schedule (large dense layers: threads already parallelise well), the
synthetic planted-partition graph (small layers: threads do not), and NAS-Bench-201 cells
trained on scikit-learn's digits (small convolutions in mini-batches).

Example::

    python benchmarks/parallel.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _report import header, machine_lines, markdown_table, publish
from nasforge import api
from nasforge.budget import Budget
from nasforge.execution.process import ProcessExecutor
from nasforge.experiment import Experiment
from nasforge.store.sql import SqlStore

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "parallel.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
GOAL = 1.8


def run(
    task: str, mode: str, trials: int, epochs: int, data_root: str, workdir: Path
) -> tuple[float, list[str]]:
    """Wall time of ``trials`` trials in ``mode``; returns (seconds, canonical keys)."""
    settings = api.plan(
        task=task,
        strategy="random",
        budget=trials,
        seed=0,
        name=f"{task}-{mode}",
        data_root=data_root,
        epochs=epochs,
        training={} if task.startswith("image:") else {"patience": epochs},
    )
    db = workdir / f"{task.replace(':', '-')}-{mode}.db"
    cpus = len(os.sched_getaffinity(0))
    with SqlStore(db) as store:
        exp = Experiment(
            name=settings.name,
            space=settings.space,
            evaluator=settings.evaluator,
            strategy=settings.strategy,
            store=store,
        )
        executor = {
            "1 worker (in process, all threads)": None,
            "1 worker process, 1 thread": lambda: ProcessExecutor(
                settings.evaluator, workers=1, threads=1
            ),
            f"2 worker processes, {max(1, cpus // 2)} thread(s) each": lambda: ProcessExecutor(
                settings.evaluator, workers=2
            ),
        }[mode]
        pool = executor() if executor else None
        start = time.perf_counter()
        try:
            summary = exp.run(Budget(trials), executor=pool)
        finally:
            if pool is not None:
                pool.close()
        seconds = time.perf_counter() - start
        keys = sorted(t.key for t in store.trials(exp.record.id))
    assert summary.new_trials == trials, summary
    return seconds, keys


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--cora-epochs", type=int, default=60)
    parser.add_argument("--synthetic-epochs", type=int, default=300)
    parser.add_argument("--digits-epochs", type=int, default=60)
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=["planetoid:Cora", "synthetic", "image:digits"],
        default=["planetoid:Cora", "synthetic", "image:digits"],
        help="workloads to measure (default all three)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    cpus = len(os.sched_getaffinity(0))
    modes = [
        "1 worker (in process, all threads)",
        "1 worker process, 1 thread",
        f"2 worker processes, {max(1, cpus // 2)} thread(s) each",
    ]
    epochs_of = {
        "planetoid:Cora": args.cora_epochs,
        "synthetic": args.synthetic_epochs,
        "image:digits": args.digits_epochs,
    }
    workloads = [(task, epochs_of[task]) for task in args.tasks]
    rows, verdicts = [], []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for task, epochs in workloads:
            times, keysets = {}, []
            for mode in modes:
                times[mode], keys = run(task, mode, args.trials, epochs, args.data_root, Path(tmp))
                keysets.append(keys)
                print(f"[{task}] {mode}: {times[mode]:.1f} s", file=sys.stderr)
            same = all(k == keysets[0] for k in keysets)
            base = times[modes[0]]
            for mode in modes:
                rows.append(
                    [
                        task,
                        str(epochs),
                        mode,
                        f"{times[mode]:.1f}",
                        f"{times[mode] / args.trials:.2f}",
                        f"{base / times[mode]:.2f}",
                    ]
                )
            speedup = base / times[modes[2]]
            scaling = times[modes[1]] / times[modes[2]]
            verdicts.append(
                f"- {task}: 2 workers vs the default 1 worker: **{speedup:.2f}x** "
                f"(goal >= {GOAL}: {'met' if speedup >= GOAL else 'NOT met'}); "
                f"vs 1 single-thread worker process: {scaling:.2f}x; "
                f"same {args.trials} architectures in every mode: {'yes' if same else 'NO'}"
            )
    wall = time.perf_counter() - t_all
    lines = [
        *header("Parallel training search: 1 vs 2 workers", started, wall, machine_lines()),
        "",
        "## Protocol",
        "",
        f"{args.trials} trials of random search (seed 0) through `Experiment.run` with a SQLite "
        "store; every trial builds and trains one architecture (no early stopping) and "
        "measures its latency. Cora uses NB-Graph's Cora protocol cut to "
        f"{args.cora_epochs} epochs; the synthetic graph (600 nodes, 32 features) the generic "
        f"GCN settings for {args.synthetic_epochs} epochs; digits the nb201 defaults (8 "
        f"channels, 1 cell per stage, SGD with a cosine schedule, batches of 64) for "
        f"{args.digits_epochs} epochs. Times include starting the workers.",
        "",
        *markdown_table(
            ["task", "epochs", "mode", "wall s", "s/trial", "speed-up vs default"], rows
        ),
        "",
        *verdicts,
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

"""Speed-up of a training search from local worker processes.

The same 8 trials (random search, seed 0, so the same 8 architectures) run through the real
search loop (``Experiment.run`` with a SQLite store and the process executor) with:

* 1 worker on 1 core: the search and its worker pinned to one CPU, 1 torch thread;
* 1 worker on all cores: ``--workers 1``, one worker process with every CPU's thread;
* N workers on N cores: ``--workers N`` (N = the CPUs), the cores split between the workers,
  an idle worker's cores lent to the trials still running.

Goal: N workers at least 1.8x faster than 1 worker on 1 core (the speed-up of 2 cores over 1).
``--workers 1`` is reported too: where torch's threads already parallelise one training well,
it is close to the N-worker time, and no split of the same cores can be 1.8x faster than it
(the ceiling, N / the threads' own speed-up, is printed). Three workloads: Cora under a short
NB-Graph-style schedule (large dense layers), the synthetic planted-partition graph (small
layers), and NAS-Bench-201 cells trained on scikit-learn's digits (small convolutions in
mini-batches).

Example::

    python benchmarks/parallel.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
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


ONE_CORE = "1 worker, 1 core"
ONE_WORKER = "--workers 1 (all cores)"


def many_workers(cpus: int) -> str:
    return f"--workers {cpus} ({cpus} cores)"


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
    db = workdir / f"{task.replace(':', '-')}-{len(list(workdir.iterdir()))}.db"
    cpus = sorted(os.sched_getaffinity(0))
    pinned = mode == ONE_CORE
    if pinned:  # the search process and (inherited) its worker on one CPU
        os.sched_setaffinity(0, {cpus[0]})
    try:
        with SqlStore(db) as store:
            exp = Experiment(
                name=settings.name,
                space=settings.space,
                evaluator=settings.evaluator,
                strategy=settings.strategy,
                store=store,
            )
            workers = len(cpus) if mode == many_workers(len(cpus)) else 1
            start = time.perf_counter()
            pool = ProcessExecutor(
                settings.evaluator, workers=workers, threads=1 if pinned else None
            )
            try:
                summary = exp.run(Budget(trials), executor=pool)
            finally:
                pool.close()
            seconds = time.perf_counter() - start
            keys = sorted(t.key for t in store.trials(exp.record.id))
    finally:
        os.sched_setaffinity(0, set(cpus))
    assert summary.new_trials == trials, summary
    return seconds, keys


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="times each mode runs, interleaved (the mean is reported, and the range)",
    )
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
    modes = [ONE_CORE, ONE_WORKER, many_workers(cpus)]
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
            runs: dict[str, list[float]] = {mode: [] for mode in modes}
            keysets = []
            for _ in range(args.rounds):
                for mode in modes:
                    seconds, keys = run(task, mode, args.trials, epochs, args.data_root, Path(tmp))
                    runs[mode].append(seconds)
                    keysets.append(keys)
                    print(f"[{task}] {mode}: {seconds:.1f} s", file=sys.stderr)
            times = {mode: statistics.mean(runs[mode]) for mode in modes}
            same = all(k == keysets[0] for k in keysets)
            base = times[ONE_CORE]
            for mode in modes:
                rows.append(
                    [
                        task,
                        str(epochs),
                        mode,
                        f"{times[mode]:.1f}",
                        f"{min(runs[mode]):.1f}-{max(runs[mode]):.1f}",
                        f"{times[mode] / args.trials:.2f}",
                        f"{base / times[mode]:.2f}",
                    ]
                )
            speedup = base / times[modes[2]]
            threads_gain = base / times[ONE_WORKER]
            verdicts.append(
                f"- {task}: {modes[2]} vs 1 worker on 1 core: **{speedup:.2f}x** "
                f"(goal >= {GOAL}: {'met' if speedup >= GOAL else 'NOT met'}); "
                f"vs --workers 1: {times[ONE_WORKER] / times[modes[2]]:.2f}x (torch threads "
                f"alone already give {threads_gain:.2f}x, so at most {cpus / threads_gain:.2f}x "
                f"is left for more workers); same {args.trials} architectures in every mode: "
                f"{'yes' if same else 'NO'}"
            )
    wall = time.perf_counter() - t_all
    lines = [
        *header("Parallel training search: 1 vs 2 workers", started, wall, machine_lines()),
        "",
        "## Protocol",
        "",
        f"{args.trials} trials of random search (seed 0) through `Experiment.run` with a SQLite "
        "store and the process executor; every trial builds and trains one architecture (no "
        "early stopping) and measures its latency. Cora uses NB-Graph's Cora protocol cut to "
        f"{args.cora_epochs} epochs; the synthetic graph (600 nodes, 32 features) the generic "
        f"GCN settings for {args.synthetic_epochs} epochs; digits the nb201 defaults (8 "
        f"channels, 1 cell per stage, SGD with a cosine schedule, batches of 64) for "
        f"{args.digits_epochs} epochs. `{ONE_CORE}`: the search process and its worker pinned "
        "to one CPU (sched_setaffinity), 1 torch thread. Times include starting the workers. "
        f"Each mode ran {args.rounds} time(s), the modes interleaved; the mean is reported.",
        "",
        *markdown_table(
            [
                "task",
                "epochs",
                "mode",
                "wall s (mean)",
                "range",
                "s/trial",
                "speed-up vs 1 core",
            ],
            rows,
        ),
        "",
        *verdicts,
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

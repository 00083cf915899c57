"""Transfer on NAS-Bench-Graph, leave one dataset out: ``transfer`` against ``bananas`` (on
the space's encoding and on the universal one), ``optuna-tpe`` and ``random``, side by side
in one run.

For each held-out dataset, ``transfer`` learns from the other eight tables only (validation
accuracy; the held-out table is never in its knowledge, and its probes are charged to the
budget like any trial); every method then searches the held-out table for ``--budget``
distinct architectures with each seed, through the real ``Experiment`` loop and a SQLite
store. A run is read at 10, 30 and 100 distinct architectures (the proposals of a run do not
depend on its budget, so the first 10 of a 100-architecture run are a 10-architecture run).

Reported per dataset and budget: mean validation regret (points), the share of runs that
reached the space's best validation accuracy, the test accuracy of the found architecture,
and the rank of each method's first proposal in the table (top x%: the share of the table's
architectures with a higher validation accuracy). Goals of the issue "Search that learns from
every earlier search": median first proposal in the table's top 1%; at 100 architectures
regret 0 on at least 7 of 9 datasets (mean over seeds) and the space's best reached in more
than 80% of runs; at 30 lower regret than ``bananas`` at 100 on every dataset.

Example::

    python benchmarks/transfer_nbg.py --seeds 20 --jobs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from _report import header, machine_lines, markdown_table, publish
from nbg_strategies import TIE
from nbg_strategies import found as best_queried

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "transfer_nbg.md"
METHODS = ("transfer", "bananas", "bananas-universal", "optuna-tpe", "random")
VARIANTS = {"bananas-universal": ("bananas", {"encoding": "universal"})}
"""Methods that are a registered strategy with options."""
CHECKPOINTS = (10, 30, 100)


@dataclass(frozen=True, slots=True)
class Run:
    """One search: the (validation, test) accuracies of its distinct architectures in order."""

    method: str
    dataset: str
    seed: int
    queried: tuple[tuple[float, float], ...]
    seconds: float
    matched: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """What the held-out table holds: its validation accuracies, sorted, and its best."""

    dataset: str
    vals: tuple[float, ...]
    best_val: float


def table_of(dataset: str) -> Table:
    from nasforge.knowledge import table_tasks

    [task] = [t for t in table_tasks() if t.label == f"nas-bench-graph:{dataset}"]
    vals = sorted(task.scores.values())
    return Table(dataset, tuple(vals), vals[-1])


def run_one(method: str, dataset: str, seed: int, budget: int, db: Path) -> Run:
    """One search of ``dataset``'s table by ``method``, read back from the store."""
    from nasforge.api import make_strategy
    from nasforge.budget import Budget
    from nasforge.evaluators.base import BENCHMARKS
    from nasforge.experiment import Experiment
    from nasforge.knowledge import read_knowledge
    from nasforge.result import Status
    from nasforge.spaces.base import SPACES
    from nasforge.store.sql import SqlStore
    from nasforge.strategies.transfer import Transfer

    evaluator = BENCHMARKS.create(f"nas-bench-graph:{dataset}")
    space = SPACES.create(evaluator.space_name)
    objective = evaluator.objectives[0]
    name, options = VARIANTS.get(method, (method, {}))
    strategy = make_strategy(name, space, objective=objective, seed=seed, options=options)
    start = time.perf_counter()
    if isinstance(strategy, Transfer):  # the other eight tables, nothing else
        knowledge = read_knowledge([], tables=True, exclude_task=f"nas-bench-graph:{dataset}")
        strategy.use(knowledge.usable_for(space))
    with SqlStore(str(db)) as store:
        experiment = Experiment(
            name=f"{dataset}-{method}-{seed}",
            space=space,
            evaluator=evaluator,
            strategy=strategy,
            store=store,
            objective=objective,
        )
        experiment.run(Budget(budget))
        seconds = time.perf_counter() - start
        seen: set[str] = set()
        queried: list[tuple[float, float]] = []
        for t in store.trials(experiment.record.id):
            if t.key in seen:
                continue
            seen.add(t.key)
            ok = t.status is Status.COMPLETE
            queried.append(
                (
                    t.metrics.get("val_acc", math.nan) if ok else math.nan,
                    t.test_metrics.get("test_acc", math.nan) if ok else math.nan,
                )
            )
    matched = strategy.describe_matches(top=2) if isinstance(strategy, Transfer) else ""
    return Run(method, dataset, seed, tuple(queried), seconds, matched)


def run_dataset(dataset: str, args: argparse.Namespace, tmp: Path) -> list[Run]:
    runs = []
    for seed in range(args.seeds):
        for method in args.methods:
            db = tmp / f"{dataset}-{method}-{seed}.db"
            runs.append(run_one(method, dataset, seed, args.budget, db))
        print(f"{dataset} seed {seed} done", flush=True)
    return runs


def _one_thread() -> None:
    """Worker set-up with ``--jobs``: one thread for torch and the native pools."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


# -- figures -----------------------------------------------------------------------------------
def found(run: Run, budget: int) -> tuple[float, float]:
    """(val, test) of the best validation among the first ``budget`` (earliest on ties)."""
    return best_queried(run.queried[:budget])


def regret(table: Table, run: Run, budget: int) -> float:
    val = found(run, budget)[0]
    return 0.0 if val >= table.best_val - TIE else (table.best_val - val) * 100


def first_top(table: Table, run: Run) -> float:
    """The share (in %) of the table's architectures with a higher validation accuracy than
    the run's first proposal."""
    val = run.queried[0][0]
    higher = sum(v > val + TIE for v in table.vals)
    return 100 * higher / len(table.vals)


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def report(args: argparse.Namespace, tables: Sequence[Table], runs: Sequence[Run]) -> list[str]:
    by: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        by.setdefault((r.method, r.dataset), []).append(r)
    names = [t.dataset for t in tables]
    lines: list[str] = []
    checkpoints = [b for b in CHECKPOINTS if b <= args.budget]
    for b in checkpoints:
        lines += [f"### Mean validation regret at {b} architectures (points; lower is better)", ""]
        rows = []
        for m in args.methods:
            per = [mean([regret(t, r, b) for r in by[(m, t.dataset)]]) for t in tables]
            rows.append([m, *(f"{v:.3f}" for v in per), f"{mean(per):.3f}"])
        lines += [*markdown_table(["method", *names, "mean"], rows), ""]
    b = checkpoints[-1]
    lines += [f"### Runs that reached the space's best validation accuracy at {b}", ""]
    rows = []
    for m in args.methods:
        hits = [sum(regret(t, r, b) == 0 for r in by[(m, t.dataset)]) for t in tables]
        runs_ = [len(by[(m, t.dataset)]) for t in tables]
        cells = [f"{h}/{n}" for h, n in zip(hits, runs_, strict=True)]
        rows.append([m, *cells, f"{sum(hits)}/{sum(runs_)}"])
    lines += [*markdown_table(["method", *names, "all"], rows), ""]
    lines += [f"### Test accuracy of the found architecture at {b} (mean over seeds, x100)", ""]
    rows = [
        [m, *(f"{100 * mean([found(r, b)[1] for r in by[(m, t.dataset)]]):.2f}" for t in tables)]
        for m in args.methods
    ]
    lines += [*markdown_table(["method", *names], rows), ""]
    lines += [
        "### First proposal: top x% of the table (median over seeds; lower is better)",
        "",
    ]
    rows = [
        [
            m,
            *(
                f"{statistics.median([first_top(t, r) for r in by[(m, t.dataset)]]):.2f}"
                for t in tables
            ),
        ]
        for m in args.methods
    ]
    lines += [*markdown_table(["method", *names], rows), ""]
    if "transfer" in args.methods:
        lines += goals(args, tables, by)
        lines += ["### Tasks transfer matched (seed 0, after the whole run)", ""]
        for t in tables:
            run = by[("transfer", t.dataset)][0]
            lines.append(f"- {t.dataset}: {run.matched}")
        lines.append("")
    lines += ["### Seconds per run (mean)", ""]
    rows = [
        [m, *(f"{mean([r.seconds for r in by[(m, t.dataset)]]):.1f}" for t in tables)]
        for m in args.methods
    ]
    lines += [*markdown_table(["method", *names], rows), ""]
    return lines


def goals(
    args: argparse.Namespace, tables: Sequence[Table], by: dict[tuple[str, str], list[Run]]
) -> list[str]:
    transfer = [r for t in tables for r in by[("transfer", t.dataset)]]
    tops = {t.dataset: t for t in tables}
    median_first = statistics.median(first_top(tops[r.dataset], r) for r in transfer)
    lines = ["### Goals", ""]
    lines.append(
        f"- median first proposal in the top 1%: {median_first:.2f}% "
        f"({'met' if median_first <= 1 else 'not met'})"
    )
    if args.budget >= 100:
        zero = [
            t.dataset
            for t in tables
            if mean([regret(t, r, 100) for r in by[("transfer", t.dataset)]]) == 0
        ]
        hits = sum(regret(tops[r.dataset], r, 100) == 0 for r in transfer)
        lines.append(
            f"- regret 0 at 100 (mean over seeds) on at least 7 of 9 datasets: "
            f"{len(zero)} of {len(tables)} ({', '.join(zero) or 'none'}; "
            f"{'met' if len(zero) >= 7 else 'not met'})"
        )
        lines.append(
            f"- the space's best reached in more than 80% of runs: {hits}/{len(transfer)} = "
            f"{100 * hits / len(transfer):.0f}% "
            f"({'met' if hits > 0.8 * len(transfer) else 'not met'})"
        )
        if "bananas" in args.methods:
            better = [
                t.dataset
                for t in tables
                if mean([regret(t, r, 30) for r in by[("transfer", t.dataset)]])
                < mean([regret(t, r, 100) for r in by[("bananas", t.dataset)]])
            ]
            lines.append(
                f"- transfer at 30 below bananas at 100 on every dataset: {len(better)} of "
                f"{len(tables)} ({', '.join(better) or 'none'}; "
                f"{'met' if len(better) == len(tables) else 'not met'})"
            )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> None:
    from nasforge.benchmarks.nas_bench_graph import DATASETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default 20)")
    parser.add_argument("--budget", type=int, default=100, help="distinct architectures per run")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--jobs", type=int, default=1, help="datasets at once (1 thread each)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.budget < 10 or args.jobs < 1:
        parser.error("need --seeds >= 1, --budget >= 10 and --jobs >= 1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    tables = [table_of(d) for d in args.datasets]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="transfer-nbg-") as tmp:
        if args.jobs == 1:
            for d in args.datasets:
                runs += run_dataset(d, args, Path(tmp))
        else:
            with ProcessPoolExecutor(
                args.jobs, mp_context=get_context("spawn"), initializer=_one_thread
            ) as pool:
                jobs = [pool.submit(run_dataset, d, args, Path(tmp)) for d in args.datasets]
                for job in jobs:
                    runs += job.result()
    protocol = [
        "## Protocol",
        "",
        f"Leave one dataset out over {len(tables)} NAS-Bench-Graph tables; "
        f"seeds 0..{args.seeds - 1}; "
        f"each run queries {args.budget} distinct architectures (canonical keys) through "
        "`Experiment.run` with a SQLite store; figures at 10, 30 and 100 are read from the same "
        "run. `transfer`'s knowledge: the other tables' validation accuracies (read from the "
        "installed `nas-bench-graph` package), never the held-out one; its probes count as "
        "trials. Regret = the table's best validation accuracy minus the found one (ties within "
        f"{TIE:g} count as 0). Values x100; proteins is the `gnn-proteins` space (ROC-AUC), "
        "whose knowledge is the gnn tables cut to its architectures."
        + (f" Datasets ran {args.jobs} at a time, 1 thread each." if args.jobs > 1 else ""),
        "",
        (
            "`bananas-universal`: `bananas` on the universal encoding (the built model's "
            "computation graph, Weisfeiler-Lehman features; `-o encoding=universal`) instead "
            "of the space's path encoding, same seeds: what the space-independent encoding "
            "loses or gains. Its seconds include building and running a small model per "
            "architecture encoded (cached per process, shared by the runs of a worker)."
            if "bananas-universal" in args.methods
            else "`bananas-universal` (`bananas` on the universal encoding) is not in this "
            "run: see `--methods`."
        ),
        "",
        "## Results",
        "",
    ]
    wall = time.perf_counter() - t0
    text = "\n".join(
        [
            *header(
                "Transfer on NAS-Bench-Graph (leave one dataset out)",
                started,
                wall,
                machine_lines(),
            ),
            "",
            *protocol,
            *report(args, tables, runs),
        ]
    )
    publish(text.rstrip() + "\n", args.out)


if __name__ == "__main__":
    main()

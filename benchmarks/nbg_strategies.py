"""Search quality on NAS-Bench-Graph: nasforge strategies against Optuna samplers.

For every dataset and seed, each strategy registered in ``nasforge.strategies.base.STRATEGIES`` runs
through the real :class:`nasforge.Experiment` loop with a SQLite :class:`SqlStore`, and Optuna's
``RandomSampler`` and ``TPESampler`` run side by side with the same seeds and the same budget of
distinct architectures (canonical keys). The architecture "found" by a run is the one with the
best validation accuracy among those it queried (earliest on ties); we report its test accuracy,
its validation regret against the best architecture of the space, and how often regret is 0.

Example (smoke run)::

    PYTHONPATH=src python benchmarks/nbg_strategies.py --datasets cora --seeds 2 --budget 20 \
        --out /tmp/nbg_smoke.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from _report import header, machine_lines, markdown_table, publish
from nasforge.api import make_strategy
from nasforge.benchmarks.nas_bench_graph import DATASETS
from nasforge.budget import Budget
from nasforge.errors import InvalidArchitectureError
from nasforge.evaluators.base import BENCHMARKS
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.result import Status
from nasforge.spaces.base import SPACES
from nasforge.spaces.gnn import GnnSpace
from nasforge.store.sql import SqlStore
from nasforge.strategies.base import black_box_strategies

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "nbg_strategies.md"
TIE = 1e-9
"""Validation accuracies closer than this are equal: the tables hold means of 3 runs whose
float sums differ in the last bits (cora's two best: 0.8193333333333334 and ...332)."""
OPTUNA_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "optuna:random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "optuna:tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
}


@dataclass(frozen=True, slots=True)
class Run:
    """One search (method x dataset x seed) and the architecture it found."""

    method: str
    dataset: str
    seed: int
    found_val: float
    found_test: float
    distinct: int
    proposals: int
    failed_asks: int
    cap_hit: bool
    seconds: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Oracle:
    """What the whole table of one dataset holds."""

    dataset: str
    space: str
    size: int
    best_val: float
    ties: int
    oracle_test: float
    max_test: float


# -- machine and command ---------------------------------------------------------------------


# -- ground truth ----------------------------------------------------------------------------
def oracle(dataset: str, evaluator: NasBenchGraphEvaluator) -> Oracle:
    """Best validation accuracy of the space, the test accuracy there, and the table's max test.

    Ties on the best validation accuracy are broken by averaging the tied test accuracies.
    """
    table = evaluator.table
    rows = [table[evaluator.arch_hash(arch)] for arch in evaluator.space.enumerate()]
    best_val = max(row.valid for row in rows)
    tied = [row.test for row in rows if hit(best_val, row.valid)]
    return Oracle(
        dataset=dataset,
        space=evaluator.space_name,
        size=len(rows),
        best_val=best_val,
        ties=len(tied),
        oracle_test=statistics.fmean(tied),
        max_test=max(row.test for row in table.rows.values()),
    )


@dataclass(frozen=True, slots=True)
class Findability:
    """How far a model of the space can see the best-validation architecture.

    A gradient-boosted-trees model is fitted on the validation accuracy of *every other*
    architecture of the table (far more than any search knows) and ranks the whole space; the
    rank it gives the best architecture bounds what a model-based strategy can expect.
    """

    dataset: str
    rank: int  # of the best-ranked of the best architecture's ties; 1 = the first choice
    gap: float  # best validation minus the next value (points x100)
    near: int  # other architectures within 0.5 points of the best validation


def findability(dataset: str, evaluator: NasBenchGraphEvaluator) -> Findability:
    """Fit on all architectures but the best, and rank the best among all (see Findability)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    archs = list(evaluator.space.enumerate())
    table = evaluator.table
    val = np.array([table[evaluator.arch_hash(a)].valid for a in archs])
    x = np.stack([evaluator.space.encode(a) for a in archs])  # (N, D) one-hot genes
    top = float(val.max())
    best = val >= top - TIE  # the best architecture, with its ties
    model = HistGradientBoostingRegressor(max_iter=300, random_state=0)
    model.fit(x[~best], val[~best])
    predicted = model.predict(x)
    return Findability(
        dataset=dataset,
        rank=int(np.sum(predicted > predicted[best].max())) + 1,
        gap=(top - float(val[~best].max())) * 100,
        near=int(np.sum(val[~best] >= top - 0.005)),
    )


def found(queried: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(val, test) of the best-validation pair, earliest on ties; NaN when nothing is finite."""
    best: tuple[float, float] = (math.nan, math.nan)
    for val, test in queried:
        if math.isfinite(val) and (math.isnan(best[0]) or val > best[0] + TIE):
            best = (val, test)
    return best


# -- nasforge --------------------------------------------------------------------------------
def run_nasforge(strategy: str, dataset: str, seed: int, budget: int, store: SqlStore) -> Run:
    """One nasforge search through the Experiment loop, read back from the store."""
    evaluator = BENCHMARKS.create(f"nas-bench-graph:{dataset}")
    space = SPACES.create(evaluator.space_name)
    objective = evaluator.objectives[0]
    start = time.perf_counter()
    experiment = Experiment(
        name=f"{dataset}-{strategy}-seed{seed}",
        space=space,
        evaluator=evaluator,
        strategy=make_strategy(strategy, space, objective=objective, seed=seed),
        store=store,
        objective=objective,
    )
    summary = experiment.run(Budget(budget))
    seconds = time.perf_counter() - start
    stored = store.trials(experiment.record.id)
    queried = [
        (t.metrics.get("val_acc", math.nan), t.test_metrics.get("test_acc", math.nan))
        if t.status is Status.COMPLETE
        else (math.nan, math.nan)
        for t in stored
    ]
    distinct = len({t.key for t in stored})
    note = "" if summary.stop_reason == "budget spent" else summary.stop_reason
    val, test = found(queried)
    return Run(
        method=f"nasforge:{strategy}",
        dataset=dataset,
        seed=seed,
        found_val=val,
        found_test=test,
        distinct=distinct,
        proposals=summary.new_trials + summary.duplicates,
        failed_asks=sum(t.status is not Status.COMPLETE for t in stored),
        cap_hit=False,
        seconds=seconds,
        note=note,
    )


# -- optuna ----------------------------------------------------------------------------------
def suggest(trial: optuna.trial.Trial, space: GnnSpace) -> dict[str, object]:
    """Ask Optuna for one value of every categorical choice of ``space``."""
    return {
        name: trial.suggest_categorical(name, list(opts)) for name, opts in space.choices().items()
    }


def run_optuna(
    method: str,
    dataset: str,
    seed: int,
    budget: int,
    max_asks: int,
) -> Run:
    """One Optuna ask/tell search until ``budget`` distinct canonical keys (or ``max_asks``)."""
    evaluator = NasBenchGraphEvaluator(dataset=dataset)
    space = evaluator.space
    start = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=OPTUNA_SAMPLERS[method](seed))
    seen: dict[str, float] = {}
    queried: list[tuple[float, float]] = []
    asks = failed = 0
    while len(seen) < budget and asks < max_asks:
        trial = study.ask()
        asks += 1
        try:
            arch = space.from_choices(suggest(trial, space))
        except InvalidArchitectureError:  # the all-skip combination
            study.tell(trial, state=TrialState.FAIL)
            failed += 1
            continue
        key = space.canonical_key(arch)
        if key not in seen:
            result = evaluator.evaluate(arch)
            val = result.metrics["val_acc"] if result.ok else math.nan
            seen[key] = val
            queried.append((val, result.test_metrics.get("test_acc", math.nan)))
        if math.isnan(seen[key]):
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, seen[key])
    val, test = found(queried)
    return Run(
        method=method,
        dataset=dataset,
        seed=seed,
        found_val=val,
        found_test=test,
        distinct=len(seen),
        proposals=asks,
        failed_asks=failed,
        cap_hit=len(seen) < budget,
        seconds=time.perf_counter() - start,
    )


# -- the experiment --------------------------------------------------------------------------
def methods(selected: Sequence[str] | None) -> list[str]:
    """Every registered nasforge strategy, then the Optuna samplers (optionally filtered)."""
    every = [f"nasforge:{name}" for name in black_box_strategies()] + list(OPTUNA_SAMPLERS)
    if selected:
        unknown = sorted(set(selected) - set(every))
        if unknown:
            raise SystemExit(f"unknown method(s) {unknown}; valid: {', '.join(every)}")
        return [m for m in every if m in selected]
    return every


def run_dataset(
    dataset: str, seeds: Sequence[int], args: argparse.Namespace, workdir: Path
) -> list[Run]:
    """All methods and seeds on one dataset; nasforge runs share one SQLite file."""
    runs: list[Run] = []
    store = SqlStore(workdir / f"{dataset}.db")
    try:
        for seed in seeds:
            for method in methods(args.methods):
                kind, _, name = method.partition(":")
                if kind == "nasforge":
                    runs.append(run_nasforge(name, dataset, seed, args.budget, store))
                else:
                    runs.append(run_optuna(method, dataset, seed, args.budget, args.max_asks))
    finally:
        store.close()
    return runs


def timed_dataset(
    dataset: str, seeds: Sequence[int], args: argparse.Namespace, workdir: Path
) -> list[Run]:
    """:func:`run_dataset`, saying when it is done."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    start = time.perf_counter()
    runs = run_dataset(dataset, seeds, args, workdir)
    print(f"[{dataset}] done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return runs


def _one_thread() -> None:
    """Worker set-up with ``--jobs``: one thread for torch and the native pools, so that the
    jobs do not compete for the cores (each job's times are single-thread times)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)


# -- reporting -------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def hit(best_val: float, found_val: float) -> bool:
    """Whether a run found (a tie of) the best validation accuracy."""
    return found_val >= best_val - TIE


def regret(best_val: float, found_val: float) -> float:
    """Validation regret in points (0 for a tie of the best)."""
    return 0.0 if hit(best_val, found_val) else (best_val - found_val) * 100


def method_row(runs: Sequence[Run], best_val: float) -> list[str]:
    """Cells of one method's row in a dataset table (values x100)."""
    test_mean, test_std = mean_std([r.found_test * 100 for r in runs])
    regrets = [regret(best_val, r.found_val) for r in runs]
    hits = sum(hit(best_val, r.found_val) for r in runs)
    caps = sum(r.cap_hit for r in runs)
    return [
        runs[0].method,
        f"{test_mean:.2f} ± {test_std:.2f}",
        f"{statistics.fmean(regrets):.3f}",
        f"{hits}/{len(runs)} ({hits / len(runs):.0%})",
        f"{statistics.fmean(r.proposals for r in runs):.1f}",
        f"{sum(r.failed_asks for r in runs)}",
        f"{caps}",
        f"{sum(r.seconds for r in runs):.2f}",
    ]


def by_method(runs: Sequence[Run], dataset: str) -> dict[str, list[Run]]:
    """Runs of one dataset grouped by method, in method order."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        if run.dataset == dataset:
            grouped.setdefault(run.method, []).append(run)
    return grouped


def dataset_section(oracle_: Oracle, runs: Sequence[Run]) -> list[str]:
    """Markdown section for one dataset."""
    metric = "ROC-AUC" if oracle_.dataset == "proteins" else "accuracy"
    lines = [
        f"### {oracle_.dataset} (space `{oracle_.space}`, {oracle_.size:,} architectures, "
        f"metric: {metric} x100)",
        "",
        f"Oracle test {oracle_.oracle_test * 100:.2f} (best validation "
        f"{oracle_.best_val * 100:.2f}, held by {oracle_.ties} architecture(s)); "
        f"table max test {oracle_.max_test * 100:.2f}.",
        "",
    ]
    header = [
        "method",
        "test of found (mean ± std)",
        "val regret (mean, pts)",
        "found best-val arch",
        "proposals/run",
        "failed asks",
        "cap hit",
        "time (s)",
    ]
    rows = [method_row(r, oracle_.best_val) for r in by_method(runs, oracle_.dataset).values()]
    return [*lines, *markdown_table(header, rows), ""]


def summary_tables(oracles: Sequence[Oracle], runs: Sequence[Run]) -> list[str]:
    """Compact method x dataset tables: mean regret, mean test, fraction of regret 0."""
    names = [o.dataset for o in oracles]
    method_names = list(dict.fromkeys(r.method for r in runs))
    regret_rows: list[list[str]] = []
    test_rows: list[list[str]] = []
    hit_rows: list[list[str]] = []
    for method in method_names:
        regret_rows.append([method])
        test_rows.append([method])
        hit_rows.append([method])
        for o in oracles:
            mine = [r for r in runs if r.method == method and r.dataset == o.dataset]
            regret_rows[-1].append(
                f"{statistics.fmean(regret(o.best_val, r.found_val) for r in mine):.3f}"
            )
            test_rows[-1].append(f"{statistics.fmean(r.found_test * 100 for r in mine):.2f}")
            hits = sum(hit(o.best_val, r.found_val) for r in mine)
            hit_rows[-1].append(f"{hits / len(mine):.0%}")
    test_rows.append(["oracle"] + [f"{o.oracle_test * 100:.2f}" for o in oracles])
    test_rows.append(["table max test"] + [f"{o.max_test * 100:.2f}" for o in oracles])
    return [
        "### Mean validation regret (points, x100; lower is better)",
        "",
        *markdown_table(["method", *names], regret_rows),
        "",
        "### Mean test accuracy of the found architecture (x100; proteins: ROC-AUC)",
        "",
        *markdown_table(["method", *names], test_rows),
        "",
        "### Fraction of seeds that found the best-validation architecture (regret 0)",
        "",
        *markdown_table(["method", *names], hit_rows),
        "",
    ]


def anomalies(runs: Sequence[Run], budget: int) -> list[str]:
    """Runs that did not reach the budget, hit the ask cap, or stopped for another reason."""
    out = [
        f"- {r.method} {r.dataset} seed {r.seed}: {r.distinct} distinct archs"
        + (" (Optuna ask cap hit)" if r.cap_hit else "")
        + (f"; {r.note}" if r.note else "")
        for r in runs
        if r.distinct != budget or r.cap_hit or r.note
    ]
    return out or ["- none: every run queried exactly the budget of distinct architectures"]


def findability_section(found_by_model: Sequence[Findability]) -> list[str]:
    """Why regret 0 is rare at 100 queries: the best architecture is an outlier."""
    rows = [[f.dataset, f"{f.rank:,}", f"{f.gap:.3f}", str(f.near)] for f in found_by_model]
    return [
        "## How far a model can see the best architecture",
        "",
        "A gradient-boosted-trees model (scikit-learn `HistGradientBoostingRegressor`, one-hot "
        "genes) fitted on the validation accuracy of every architecture of the table except "
        "the best one (and its ties) ranks the whole space; `rank` is where it puts the best "
        "architecture (1 = first). This model knows the whole table but one entry, far more "
        "than a search at 100 queries does, so its rank bounds what a model-guided strategy "
        "can expect: where it is in the thousands, the best architecture is an outlier that "
        "only luck finds (100 random queries hit one given architecture with probability "
        "100/size). "
        "`gap`: the best validation accuracy minus the next one (points); `within 0.5`: "
        "other architectures within 0.5 points of the best.",
        "",
        *markdown_table(["dataset", "rank", "gap", "within 0.5"], rows),
        "",
    ]


def report(
    args: argparse.Namespace,
    oracles: Sequence[Oracle],
    runs: Sequence[Run],
    wall: float,
    started: str,
    found_by_model: Sequence[Findability] = (),
) -> str:
    """The whole Markdown report."""
    n_seeds = len(args.seed_list)
    lines = [
        *header(
            "NAS-Bench-Graph: nasforge strategies vs Optuna samplers",
            started,
            wall,
            machine_lines(),
        ),
        "",
        "## Protocol",
        "",
        f"Datasets: {', '.join(o.dataset for o in oracles)}; seeds 0..{n_seeds - 1} "
        f"({n_seeds}); budget {args.budget} distinct architectures (canonical keys) per run. "
        "nasforge strategies (every entry of `STRATEGIES`, default options) run through "
        "`Experiment.run` with a SQLite `SqlStore` file (WAL) and `NasBenchGraphEvaluator`; "
        "the found architecture is read back from the store."
        + (
            f" Datasets ran {args.jobs} at a time in worker processes with 1 thread each."
            if args.jobs > 1
            else ""
        ),
        "Optuna samplers (`RandomSampler(seed)`, `TPESampler(seed)`, defaults, in-memory "
        "storage) see the space as categorical `space.choices()`; the all-skip combination is "
        "told as FAILED and not counted; a proposal whose canonical key was already queried "
        f"is told the same value and not counted; at most {args.max_asks} asks per run.",
        "Found architecture = best validation accuracy among those queried (earliest on ties). "
        "Reported: test accuracy of it (mean ± sample std over seeds), validation regret = "
        "space's best validation − found validation, and the fraction of seeds with regret 0. "
        f"Validation accuracies within {TIE:g} of each other are ties: the tables' values are "
        "means of 3 runs whose float sums differ in the last bits (cora's two best "
        "architectures have 0.8193333333333334 and 0.8193333333333332).",
        "Oracle = test accuracy of the space's best-validation architecture (mean of the tied "
        "test accuracies if several tie; the tie count is shown). Values are x100; proteins "
        "uses the `gnn-proteins` space and its metric is ROC-AUC.",
        "The tables have no fidelities (one result per architecture), so the multi-fidelity "
        "strategies (successive-halving, hyperband, asha) reduce to random search here; they "
        "are listed because every registered strategy is.",
        "",
        "## Summary",
        "",
        *summary_tables(oracles, runs),
        *(findability_section(found_by_model) if found_by_model else []),
        "## Runs that did not go as planned",
        "",
        *anomalies(runs, args.budget),
        "",
        "## Per dataset",
        "",
        "`proposals/run`: architectures proposed per run, duplicates included (Optuna: asks, "
        "failed all-skip asks included). `failed asks`: total over seeds. `cap hit`: runs that "
        "stopped at the ask cap. `time`: total over seeds.",
        "",
    ]
    for o in oracles:
        lines += dataset_section(o, runs)
    return "\n".join(lines).rstrip() + "\n"


# -- CLI -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=20, help="run seeds 0..N-1 (default 20)")
    parser.add_argument("--budget", type=int, default=100, help="distinct architectures per run")
    parser.add_argument("--max-asks", type=int, default=2000, help="Optuna asks cap per run")
    parser.add_argument(
        "--methods", nargs="+", help="subset, e.g. nasforge:random optuna:tpe (default all)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="datasets run at once, in worker processes with 1 thread each (default 1)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown output file")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.budget < 1 or args.max_asks < args.budget or args.jobs < 1:
        parser.error("need --seeds >= 1, --budget >= 1, --max-asks >= --budget and --jobs >= 1")
    args.seed_list = list(range(args.seeds))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, print the report and write it to ``--out``."""
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    oracles: list[Oracle] = []
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="nbg-strategies-") as tmp:
        for dataset in args.datasets:
            oracles.append(oracle(dataset, NasBenchGraphEvaluator(dataset=dataset)))
        if args.jobs == 1:
            for dataset in args.datasets:
                runs += timed_dataset(dataset, args.seed_list, args, Path(tmp))
        else:
            with ProcessPoolExecutor(
                args.jobs, mp_context=get_context("spawn"), initializer=_one_thread
            ) as pool:
                jobs = [
                    pool.submit(timed_dataset, dataset, args.seed_list, args, Path(tmp))
                    for dataset in args.datasets
                ]
                for job in jobs:
                    runs += job.result()
    found_by_model = [
        findability(o.dataset, NasBenchGraphEvaluator(dataset=o.dataset)) for o in oracles
    ]
    text = report(args, oracles, runs, time.perf_counter() - t0, started, found_by_model)
    publish(text, args.out)


if __name__ == "__main__":
    main()

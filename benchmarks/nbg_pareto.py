"""Multi-objective search on NAS-Bench-Graph: validation accuracy against latency.

For every dataset and seed, nasforge's multi-objective strategies (random, regularized
evolution with NSGA-II ranking, and the Optuna bridge's NSGA-II and TPE) run through the real
:class:`nasforge.Experiment` loop with a SQLite store, objectives ``val_acc:max`` and
``latency_ms:min``, and Optuna's own ``NSGAIISampler`` and ``RandomSampler`` run side by side
with the same seeds and the same budget of distinct architectures (canonical keys). Each run's
Pareto front (of the architectures it queried) is scored by its hypervolume, as a fraction of
the hypervolume of the true front of the whole table, against one reference point per dataset:
the true front's nadir (its worst accuracy and largest latency) pushed out by a tenth of the
front's range in each objective.

Example (smoke run)::

    PYTHONPATH=src python benchmarks/nbg_pareto.py --datasets cora --seeds 2 --budget 20 \
        --out /tmp/nbg_pareto_smoke.md
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
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from _report import header, machine_lines, markdown_table, publish
from nasforge.api import make_strategy
from nasforge.benchmarks.nas_bench_graph import DATASETS
from nasforge.budget import Budget
from nasforge.errors import InvalidArchitectureError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Direction, Objective
from nasforge.pareto import first_front, hypervolume
from nasforge.result import Status
from nasforge.store.sql import SqlStore
from nbg_strategies import mean_std, suggest

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "nbg_pareto.md"
OBJECTIVES = (
    Objective("val_acc", Direction.MAXIMIZE),
    Objective("latency_ms", Direction.MINIMIZE),
)
NASFORGE = ("random", "evolution", "optuna-nsga2", "optuna-tpe")
OPTUNA_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "optuna:nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed, population_size=20),
    "optuna:random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


@dataclass(frozen=True, slots=True)
class Truth:
    """The whole table of one dataset in score space (both objectives larger-is-better)."""

    dataset: str
    size: int
    reference: tuple[float, ...]  # in score space: (accuracy, -latency)
    front_size: int
    volume: float


@dataclass(frozen=True, slots=True)
class Run:
    """One search and the hypervolume of the front of what it queried."""

    method: str
    dataset: str
    seed: int
    ratio: float
    front_size: int
    distinct: int
    seconds: float


def score(val_acc: float, latency_ms: float) -> tuple[float, float]:
    """A (val_acc, latency) pair oriented so that larger is better in both."""
    return (val_acc, -latency_ms)


def truth(dataset: str, evaluator: NasBenchGraphEvaluator) -> tuple[Truth, list[tuple[float, ...]]]:
    """The true front's hypervolume, and every architecture's point."""
    points: list[tuple[float, ...]] = []
    for arch in evaluator.space.enumerate():
        result = evaluator.evaluate(arch)
        if result.ok:
            points.append(score(result.metrics["val_acc"], result.costs["latency_ms"]))
    unique = sorted(set(points))
    front = [unique[i] for i in first_front(unique)]
    # the true front's nadir, pushed out by a tenth of the front's range in each objective
    reference = tuple(
        min(p[k] for p in front) - 0.1 * (max(p[k] for p in front) - min(p[k] for p in front))
        for k in (0, 1)
    )
    first = front
    return (
        Truth(
            dataset=dataset,
            size=len(points),
            reference=reference,
            front_size=len(first),
            volume=hypervolume(points, reference),
        ),
        points,
    )


def ratio(points: Sequence[tuple[float, ...]], t: Truth) -> tuple[float, int]:
    """Hypervolume of ``points`` as a fraction of the true front's, and their front's size."""
    unique = sorted(set(points))
    front = first_front(unique)
    return hypervolume(unique, t.reference) / t.volume, len(front)


def run_nasforge(name: str, t: Truth, seed: int, budget: int, store: SqlStore) -> Run:
    """One multi-objective nasforge search through the Experiment loop, read from the store."""
    evaluator = NasBenchGraphEvaluator(dataset=t.dataset)
    space = evaluator.space
    start = time.perf_counter()
    experiment = Experiment(
        name=f"{t.dataset}-{name}-seed{seed}",
        space=space,
        evaluator=evaluator,
        strategy=make_strategy(name, space, objective=OBJECTIVES, seed=seed),
        store=store,
    )
    experiment.run(Budget(budget))
    seconds = time.perf_counter() - start
    stored = store.trials(experiment.record.id)
    points = [
        score(tr.metrics["val_acc"], tr.costs["latency_ms"])
        for tr in stored
        if tr.status is Status.COMPLETE
    ]
    hv, size = ratio(points, t)
    distinct = len({tr.key for tr in stored})
    return Run(f"nasforge:{name}", t.dataset, seed, hv, size, distinct, seconds)


def run_optuna(method: str, t: Truth, seed: int, budget: int, max_asks: int) -> Run:
    """Optuna's sampler on its own (ask/tell, two directions) until ``budget`` distinct keys."""
    evaluator = NasBenchGraphEvaluator(dataset=t.dataset)
    space = evaluator.space
    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=OPTUNA_SAMPLERS[method](seed)
    )
    seen: dict[str, tuple[float, float] | None] = {}
    asks = 0
    while len(seen) < budget and asks < max_asks:
        trial = study.ask()
        asks += 1
        try:
            arch = space.from_choices(suggest(trial, space))
        except InvalidArchitectureError:  # the all-skip combination
            study.tell(trial, state=TrialState.FAIL)
            continue
        key = space.canonical_key(arch)
        if key not in seen:
            result = evaluator.evaluate(arch)
            seen[key] = (
                (result.metrics["val_acc"], result.costs["latency_ms"]) if result.ok else None
            )
        value = seen[key]
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, list(value))
    points = [score(*v) for v in seen.values() if v is not None]
    hv, size = ratio(points, t)
    return Run(method, t.dataset, seed, hv, size, len(seen), time.perf_counter() - start)


def methods() -> list[str]:
    """nasforge's multi-objective strategies, then Optuna's samplers."""
    return [f"nasforge:{n}" for n in NASFORGE] + list(OPTUNA_SAMPLERS)


def report(
    args: argparse.Namespace,
    truths: Sequence[Truth],
    runs: Sequence[Run],
    wall: float,
    started: str,
) -> str:
    """The whole Markdown report."""
    names = [t.dataset for t in truths]
    ratio_rows: list[list[str]] = []
    size_rows: list[list[str]] = []
    wins = dict.fromkeys(methods(), 0)
    for method in methods():
        ratio_rows.append([method])
        size_rows.append([method])
        for t in truths:
            mine = [r for r in runs if r.method == method and r.dataset == t.dataset]
            mean, std = mean_std([r.ratio for r in mine])
            ratio_rows[-1].append(f"{mean:.4f} ± {std:.4f}")
            size_rows[-1].append(f"{statistics.fmean(r.front_size for r in mine):.1f}")
    for t in truths:
        means = {
            m: statistics.fmean(r.ratio for r in runs if r.method == m and r.dataset == t.dataset)
            for m in methods()
        }
        wins[max(means, key=lambda m: means[m])] += 1
    truth_rows = [
        [t.dataset, f"{t.size:,}", t.front_size, f"{t.reference[0]:.4f}", f"{-t.reference[1]:.3f}"]
        for t in truths
    ]
    short = [r for r in runs if r.distinct != args.budget]
    n_seeds = args.seeds
    lines = [
        *header(
            "NAS-Bench-Graph: accuracy vs latency Pareto fronts", started, wall, machine_lines()
        ),
        "",
        "## Protocol",
        "",
        f"Datasets: {', '.join(names)}; seeds 0..{n_seeds - 1} ({n_seeds}); budget "
        f"{args.budget} distinct architectures per run. Objectives: validation accuracy "
        "(ROC-AUC for proteins) maximised, latency (the table's, ms) minimised. nasforge "
        "strategies run through `Experiment.run` with a SQLite store, default options; "
        "Optuna's `NSGAIISampler(population_size=20)` and `RandomSampler` run on their own "
        "with ask/tell and two directions, the space as categorical choices, the all-skip "
        "combination told FAILED, a repeated canonical key told its stored values and not "
        f"counted, at most {args.max_asks} asks.",
        "Score: hypervolume of the non-dominated set of the architectures a run queried, "
        "divided by the hypervolume of the true front of the whole table (the ceiling, 1.0), "
        "both against the dataset's reference point: the true front's nadir (its lowest "
        "accuracy and largest latency) pushed out by 10% of the front's range in each "
        "objective, so that only architectures near the true front add volume. Mean ± sample "
        "std over seeds.",
        "",
        "## Hypervolume ratio to the true front (higher is better; 1 = the whole true front)",
        "",
        *markdown_table(["method", *names], ratio_rows),
        "",
        "Highest mean ratio per dataset: "
        + ", ".join(f"{m} on {k}" for m, k in wins.items() if k)
        + ".",
        "",
        "## Mean size of the found front (architectures)",
        "",
        *markdown_table(["method", *names], size_rows),
        "",
        "## The tables",
        "",
        *markdown_table(
            ["dataset", "architectures", "true front size", "ref. accuracy", "ref. latency ms"],
            truth_rows,
        ),
        "",
        "## Runs that did not reach the budget",
        "",
        *(
            [f"- {r.method} {r.dataset} seed {r.seed}: {r.distinct} distinct" for r in short]
            or ["- none"]
        ),
        "",
        "Time per method (s, all datasets and seeds): "
        + ", ".join(f"{m} {sum(r.seconds for r in runs if r.method == m):.1f}" for m in methods())
        + ".",
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every method on every dataset and seed; print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=20, help="run seeds 0..N-1 (default 20)")
    parser.add_argument("--budget", type=int, default=100, help="distinct architectures per run")
    parser.add_argument("--max-asks", type=int, default=2000, help="Optuna asks cap per run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown output file")
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    truths: list[Truth] = []
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            t, _ = truth(dataset, NasBenchGraphEvaluator(dataset=dataset))
            truths.append(t)
            with SqlStore(Path(tmp) / f"{dataset}.db") as store:
                for seed in range(args.seeds):
                    for method in methods():
                        kind, _, name = method.partition(":")
                        if kind == "nasforge":
                            runs.append(run_nasforge(name, t, seed, args.budget, store))
                        else:
                            runs.append(run_optuna(method, t, seed, args.budget, args.max_asks))
            done = [r for r in runs if r.dataset == dataset]
            print(
                f"{dataset}: "
                + ", ".join(
                    f"{m} {statistics.fmean(r.ratio for r in done if r.method == m):.4f}"
                    for m in methods()
                ),
                file=sys.stderr,
                flush=True,
            )
    text = report(args, truths, runs, time.perf_counter() - t0, started)
    publish(text, args.out)
    return 0 if all(math.isfinite(r.ratio) for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

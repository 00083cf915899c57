"""The loop at scale, for ``overhead.py``: ms per trial in windows of a long search, for
nasforge's strategies and Optuna side by side, and trial rates of several processes sharing one
experiment on PostgreSQL."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nasforge import api
from nasforge.architecture import Architecture
from nasforge.budget import Budget
from nasforge.errors import InvalidArchitectureError
from nasforge.evaluators.base import Evaluator
from nasforge.experiment import Experiment, Progress
from nasforge.objective import Direction, Objective
from nasforge.result import Result
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.store.sql import SqlStore

WINDOWS = ((1, 100), (901, 1000), (1_901, 2_000), (9_901, 10_000), (99_901, 100_000))
"""Trial windows (1-based, inclusive) whose per-trial times are reported."""

GOAL_GROWTH = 1.2
"""Goal: the last window's median ms/trial within this factor of the first's."""


def large_space() -> MlpSpace:
    """The ``mlp`` space with 1-5 hidden layers of 7 widths: 1,470,075 architectures."""
    return MlpSpace(depths=(1, 2, 3, 4, 5), widths=(8, 16, 32, 64, 128, 256, 512))


class FunctionTable(Evaluator):
    """A table of a space too large for the published ones (NAS-Bench-Graph's Cora table
    holds 26,206 architectures, so 100,000 distinct trials need a larger space): the entry of
    an architecture is a fixed function of its encoding (seeded random weights, with an
    interaction term), computed when looked up. It answers like a table (a few microseconds,
    no training), so the loop is what a run of it times."""

    lookup = True
    metrics = ("val_acc",)

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.space_name = space.name
        self.seed = seed
        self.objectives = (Objective("val_acc", Direction.MAXIMIZE),)
        size = len(space.encode(space.sample(np.random.default_rng(0))))
        rng = np.random.default_rng(seed)
        self.w = rng.standard_normal(size)
        self.v = rng.standard_normal(size)

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        start = time.perf_counter()
        x = self.space.encode(arch).astype(np.float64)
        value = float(x @ self.w + 0.5 * (x @ self.v) ** 2)
        return Result(
            metrics={"val_acc": 1.0 / (1.0 + math.exp(-value / 8.0))},
            wall_time=time.perf_counter() - start,
        )

    def describe(self) -> dict[str, Any]:
        return {"kind": "function-table", "space": self.space_name, "seed": self.seed}


@dataclass
class Run:
    """One search's completion times (seconds since its loop started), one per trial."""

    system: str
    storage: str
    stamps: list[float] = field(default_factory=list)
    detail: str = ""
    asks: list[int] = field(default_factory=list)  # proposals made by each trial's end

    def proposals(self, first: int, last: int) -> float | None:
        """Proposals per stored trial in trials ``first``..``last`` (duplicates included)."""
        if len(self.asks) < last:
            return None
        before = self.asks[first - 2] if first > 1 else 0
        return (self.asks[last - 1] - before) / (last - first + 1)

    def window(self, first: int, last: int) -> tuple[float, float] | None:
        """Median and mean ms per trial of trials ``first``..``last`` (1-based), if run."""
        if len(self.stamps) < last:
            return None
        ends = [0.0, *self.stamps]
        gaps = [ends[i] - ends[i - 1] for i in range(first, last + 1)]
        return statistics.median(gaps) * 1e3, statistics.fmean(gaps) * 1e3

    def growth(self) -> tuple[str, float] | None:
        """The last window run against the first, by median: (its name, the ratio)."""
        done = [(w, self.window(*w)) for w in WINDOWS if self.window(*w) is not None]
        if len(done) < 2:
            return None
        (_first, a), (last, b) = done[0], done[-1]
        assert a is not None and b is not None
        return f"{last[0]:,}-{last[1]:,}", b[0] / a[0]


def nasforge_run(
    system: str,
    space: SearchSpace,
    evaluator: Evaluator,
    strategy: str,
    trials: int,
    db: Path,
    options: dict[str, Any] | None = None,
) -> Run:
    """``strategy`` for ``trials`` trials on a new SQLite file store (default durability)."""
    run = Run(system, "SQLite file (WAL, synchronous=NORMAL)")
    searcher = api.make_strategy(
        strategy, space, objective=evaluator.objectives[0], seed=0, options=options or {}
    )
    asked = [0]
    ask = searcher.ask

    def counted(n: int = 1) -> list[Architecture]:
        asked[0] += 1
        return ask(n)

    searcher.ask = counted  # type: ignore[method-assign]
    with SqlStore(db) as store:
        experiment = Experiment(
            name=f"scale-{strategy}",
            space=space,
            evaluator=evaluator,
            strategy=searcher,
            store=store,
        )
        start = time.perf_counter()

        def stamp(_: Progress) -> None:
            run.stamps.append(time.perf_counter() - start)
            run.asks.append(asked[0])

        summary = experiment.run(Budget.parse(f"{trials}trials"), callback=stamp)
    run.detail = (
        f"{summary.new_trials} trials, stop: {summary.stop_reason}, duplicates proposed "
        f"{summary.duplicates}"
    )
    return run


def optuna_objective(space: SearchSpace, evaluator: Evaluator) -> Callable[[Any], float]:
    """Optuna's parameters -> the architecture -> the same look-up; invalid ones pruned."""
    choices = {name: list(opts) for name, opts in space.choices().items()}

    def objective(trial: optuna.trial.Trial) -> float:
        params = {name: trial.suggest_categorical(name, opts) for name, opts in choices.items()}
        try:
            arch = space.from_choices(params)
        except InvalidArchitectureError:
            raise optuna.TrialPruned() from None
        return float(evaluator.evaluate(arch).metrics["val_acc"])

    return objective


def optuna_run(
    space: SearchSpace, evaluator: Evaluator, trials: int, storage: str | None = None
) -> Run:
    """Optuna's ``RandomSampler(seed=0)``, in memory or on ``storage``."""
    where = "in memory (InMemoryStorage)" if storage is None else "SQLite file via RDBStorage"
    run = Run(f"Optuna RandomSampler ({'in memory' if storage is None else 'SQLite'})", where)
    study = optuna.create_study(
        storage=storage, sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize"
    )
    objective = optuna_objective(space, evaluator)
    start = time.perf_counter()

    def stamp(_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        run.stamps.append(time.perf_counter() - start)

    study.optimize(objective, n_trials=trials, callbacks=[stamp])
    run.detail = f"{len(run.stamps)} trials"
    return run


def windows_table(runs: Sequence[Run]) -> list[str]:
    """Markdown rows: each run's median (mean) ms/trial per window and its growth."""
    head = [
        "system",
        "storage",
        *(f"{a:,}-{b:,}" for a, b in WINDOWS),
        "last / first (median)",
        "proposals per trial, first / last window",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for run in runs:
        cells = []
        for w in WINDOWS:
            got = run.window(*w)
            cells.append("-" if got is None else f"{got[0]:.3f} ({got[1]:.3f})")
        growth = run.growth()
        cells.append("-" if growth is None else f"{growth[1]:.2f}x")
        done = [w for w in WINDOWS if run.proposals(*w) is not None]
        cells.append(
            f"{run.proposals(*done[0]):.2f} / {run.proposals(*done[-1]):.2f}"
            if run.asks and len(done) > 1
            else "-"
        )
        lines.append("| " + " | ".join([run.system, run.storage, *cells]) + " |")
    return lines


# -- PostgreSQL: several processes on one experiment ------------------------------------------
@dataclass(frozen=True, slots=True)
class PgResult:
    """Processes sharing one experiment: their trials and the wall time of all of them."""

    processes: int
    budget: int
    per_process: tuple[int, ...]
    wall_s: float
    stored: int
    numbers_ok: bool
    duplicate_keys: int
    client_cpu_s: float  # CPU seconds of the search processes during their searches, summed
    machine_busy: float  # CPUs of the whole machine busy meanwhile (server included), on average

    @property
    def rate(self) -> float:
        """Trials per second, all processes together."""
        return sum(self.per_process) / self.wall_s


def pg_child(url: str, name: str, budget: int, go: str, out: str) -> None:
    """Child mode: wait for the ``go`` file, search, write ``trials start end cpu``."""
    from nasforge.benchmarks.nas_bench_graph import load_table

    load_table("cora")
    while not os.path.exists(go):
        time.sleep(0.001)
    start, cpu = time.time(), time.process_time()
    result = api.search(
        benchmark="nas-bench-graph:cora",
        strategy="random",
        budget=f"{budget}trials",
        seed=None,  # each process draws its own proposals; the store deduplicates
        name=name,
        db=url,
    )
    end, cpu = time.time(), time.process_time() - cpu
    Path(out).write_text(f"{result.summary.new_trials} {start} {end} {cpu}\n", encoding="utf-8")


def pg_shared_run(script: Path, url: str, processes: int, budget: int) -> PgResult:
    """``processes`` searches of one experiment, started together, until ``budget`` trials."""
    name = f"shared-{processes}"
    with tempfile.TemporaryDirectory(prefix="nasforge-pg-") as tmp:
        go = Path(tmp) / "go"
        outs = [Path(tmp) / f"out-{i}" for i in range(processes)]
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), "--pg-child", url, name, str(budget), str(go), str(o)]
            )
            for o in outs
        ]
        time.sleep(8.0)  # imports and the table, before the start
        busy_before, clock_before = _machine_busy(), time.monotonic()
        go.write_text("go", encoding="utf-8")
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"a PostgreSQL child failed with exit code {proc.returncode}")
        machine = (_machine_busy() - busy_before) / (time.monotonic() - clock_before)
        parts = [o.read_text(encoding="utf-8").split() for o in outs]
    counts = tuple(int(p[0]) for p in parts)
    wall = max(float(p[2]) for p in parts) - min(float(p[1]) for p in parts)
    cpu = sum(float(p[3]) for p in parts)  # each process's own, during its search
    numbers, keys, _ = inspect_store(url, name)
    return PgResult(
        processes=processes,
        budget=budget,
        per_process=counts,
        wall_s=wall,
        stored=len(numbers),
        numbers_ok=numbers == list(range(len(numbers))),
        duplicate_keys=len(keys) - len(set(keys)),
        client_cpu_s=cpu,
        machine_busy=machine,
    )


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting) since boot."""
    fields = Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def inspect_store(target: str | Path, name: str) -> tuple[list[int], list[str], str]:
    """Stored trial numbers and keys of ``name``, and the store's integrity check (SQLite's
    ``PRAGMA integrity_check``; ``ok`` on a server)."""
    store = SqlStore(target, create=False)
    try:
        record = store.get_experiment(name)
        stored = store.trials(record.id)
        return [t.number for t in stored], [t.key for t in stored], store.integrity_check()
    finally:
        store.close()


def fresh_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """A new database on the server at ``admin_url`` and a function that drops it."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = "nasforge_bench_" + uuid.uuid4().hex[:10]
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return url, drop

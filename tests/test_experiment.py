"""The search loop: dedup, failures, budgets, resume and configuration checks."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution.base import Executor
from nasforge.experiment import Experiment, Progress
from nasforge.objective import Direction, Objective, best_trial
from nasforge.result import Result, Status
from nasforge.store.sql import SqlStore

OBJ = Objective("val_acc")


class FlakyEvaluator(NasBenchGraphEvaluator):
    """Real look-ups, except that some architectures crash or give NaN."""

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        ops = arch["ops"]
        if ops[0] == "gat":
            raise RuntimeError("CUDA out of memory (simulated)")
        if ops[0] == "gin":
            return Result(metrics={"val_acc": math.nan}, test_metrics={"test_acc": 0.99})
        return super().evaluate(arch, budget)


def _experiment(
    store: SqlStore,
    name: str = "e",
    strategy: str = "evolution",
    seed: int = 0,
    evaluator: NasBenchGraphEvaluator | None = None,
) -> Experiment:
    ev = evaluator or NasBenchGraphEvaluator(dataset="cora")
    return Experiment(
        name=name,
        space=ev.space,
        evaluator=ev,
        strategy=make_strategy(strategy, ev.space, objective=OBJ, seed=seed),
        store=store,
    )


def test_failures_are_stored_and_the_search_goes_on(db_path: Path) -> None:
    with SqlStore(db_path) as store:
        exp = _experiment(store, strategy="random", evaluator=FlakyEvaluator(dataset="cora"))
        summary = exp.run(Budget(120))
        stored = store.trials(exp.record.id)
    failed = [t for t in stored if t.status is Status.FAILED]
    crashed = [t for t in failed if t.arch["ops"][0] == "gat"]
    nan = [t for t in failed if t.arch["ops"][0] == "gin"]
    assert crashed and all("RuntimeError: CUDA out of memory" in (t.error or "") for t in crashed)
    assert nan and all(t.error == "non-finite metric: val_acc=nan" for t in nan)
    assert all(math.isnan(t.metrics["val_acc"]) for t in nan)  # the value is kept, as NaN
    assert not [t for t in stored if t.status is Status.COMPLETE and t.arch["ops"][0] == "gin"]
    assert summary.best is not None and summary.best.arch["ops"][0] not in ("gat", "gin")
    assert best_trial(stored, OBJ) == summary.best  # NaN is never best, though its test is 0.99


def test_duplicates_are_answered_from_the_store(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    calls = 0
    original = ev.evaluate

    def counting(arch: Architecture, budget: int | None = None) -> Result:
        nonlocal calls
        calls += 1
        return original(arch, budget)

    ev.evaluate = counting  # type: ignore[method-assign]
    with SqlStore(db_path) as store:
        summary = _experiment(store, evaluator=ev).run(Budget(200))
    assert summary.duplicates > 0
    assert calls == summary.new_trials == summary.archs == 200


def test_trials_and_seconds_budgets(db_path: Path) -> None:
    with SqlStore(db_path) as store:
        assert _experiment(store, "t").run(Budget(15, BudgetUnit.TRIALS)).new_trials == 15
        start = time.monotonic()
        summary = _experiment(store, "s").run(Budget(0.3, BudgetUnit.SECONDS))
        assert 0.3 <= time.monotonic() - start < 5
        assert summary.new_trials > 0


def test_progress_is_reported_after_each_stored_trial(db_path: Path) -> None:
    seen: list[Progress] = []
    with SqlStore(db_path) as store:
        exp = _experiment(store)
        exp.run(Budget(12), callback=seen.append)
        numbers = {t.number for t in store.trials(exp.record.id)}
    assert [p.archs for p in seen] == list(range(1, 13))
    assert all(p.last.number in numbers for p in seen)
    assert all(p.best is not None for p in seen)


def test_resume_with_other_settings_is_refused(db_path: Path) -> None:
    with SqlStore(db_path) as store:
        _experiment(store, "x", strategy="evolution", seed=0).run(Budget(5))
        with pytest.raises(ConfigError, match=r"exists with other settings: strategy='evolution'"):
            _experiment(store, "x", strategy="random", seed=0)
        with pytest.raises(ConfigError, match="seed=0"):
            _experiment(store, "x", strategy="evolution", seed=1)
        assert store.count_trials(store.get_experiment("x").id) == 5


def test_space_exhaustion_stops_cleanly(db_path: Path) -> None:
    with SqlStore(db_path) as store:
        summary = _experiment(
            store, strategy="random", evaluator=NasBenchGraphEvaluator(dataset="proteins")
        ).run(Budget(5000))
    assert summary.archs == 2021
    assert "exhausted" in summary.stop_reason


def test_objectives_on_costs_and_minimisation(db_path: Path) -> None:
    with SqlStore(db_path) as store:
        exp = _experiment(store)
        exp.run(Budget(30))
        stored = store.trials(exp.record.id)
    fastest = min(stored, key=lambda t: t.costs["latency_ms"])
    assert best_trial(stored, Objective("latency_ms", Direction.MINIMIZE)) == fastest
    worst = min(stored, key=lambda t: t.metrics["val_acc"])
    assert best_trial(stored, Objective("val_acc", Direction.MINIMIZE)) == worst
    assert best_trial(stored, Objective("no_such_metric")) is None


class _ReversedPairs(Executor):
    """Two trials in flight; the second submitted finishes first."""

    capacity = 2

    def __init__(self, evaluator: NasBenchGraphEvaluator) -> None:
        self.evaluator = evaluator
        self.held: tuple[Future[Result], Architecture] | None = None

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        future: Future[Result] = Future()
        if self.held is None:
            self.held = (future, arch)
        else:
            future.set_result(self.evaluator.evaluate(arch, budget))
            first, first_arch = self.held
            self.held = None
            result = self.evaluator.evaluate(first_arch, budget)
            threading.Timer(0.2, first.set_result, (result,)).start()  # after the loop saw this
        return future


class _SameScore(NasBenchGraphEvaluator):
    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        return Result(metrics={"val_acc": 0.5}, test_metrics={"test_acc": 0.5})


def test_ties_go_to_the_lowest_trial_number_whatever_the_finishing_order(db_path: Path) -> None:
    ev = _SameScore(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, strategy="random", evaluator=ev)
        summary = exp.run(Budget(6), executor=_ReversedPairs(ev))
        stored = store.trials(exp.record.id)
    finished = sorted(stored, key=lambda t: t.finished_at or 0.0)
    assert finished[0].number == 1  # trial 1 was stored before trial 0
    assert summary.best is not None and summary.best.number == 0
    assert best_trial(stored, OBJ) == summary.best

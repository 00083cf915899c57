"""The conformance suite every registered strategy must pass, on real NAS-Bench-Graph tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Direction, Objective
from nasforge.result import Result, Status
from nasforge.store.sql import SqlStore
from nasforge.strategies.base import STRATEGIES, Strategy, black_box_strategies

OBJECTIVE = Objective("val_acc")

BLACK_BOX = black_box_strategies()
"""Every registered strategy driven by ask and tell alone (one-shot ones need a phase)."""


class CountingEvaluator(NasBenchGraphEvaluator):
    """The real table look-up, counting the evaluations it is asked for.

    Asked at a fidelity (multi-fidelity strategies), it answers the table's accuracy minus
    ``0.1 / fidelity`` at that fidelity, so that low rungs rank architectures like the table
    but score lower.
    """

    def __init__(self, dataset: str = "cora") -> None:
        super().__init__(dataset=dataset)
        self.calls: list[tuple[Architecture, int | None]] = []

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        self.calls.append((arch, budget))
        result = super().evaluate(arch, budget)
        if budget is None:
            return result
        metrics = {**result.metrics, "val_acc": result.metrics["val_acc"] - 0.1 / budget}
        return replace(result, metrics=metrics, fidelity=budget)


LONG_RUN_CAP = {"optuna-gp": 40}
"""Strategies whose proposals get slow as results accumulate (a Gaussian-process fit and an
acquisition search each: about 3 s at 600 results): the long-run tests drive them for at most
this many proposals, still well past their model's start-up."""


def _steps(name: str, steps: int) -> int:
    return min(steps, LONG_RUN_CAP.get(name, steps))


def _multi_fidelity(name: str) -> bool:
    return STRATEGIES.get(name).fidelity_for is not Strategy.fidelity_for  # type: ignore[attr-defined]


@pytest.fixture(params=BLACK_BOX)
def strategy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _strategy(name: str, evaluator: NasBenchGraphEvaluator, seed: int = 0) -> Strategy:
    return make_strategy(name, evaluator.space, objective=OBJECTIVE, seed=seed)


def _drive(strategy: Strategy, evaluator: NasBenchGraphEvaluator, steps: int) -> list[str]:
    keys = []
    for _ in range(steps):
        (arch,) = strategy.ask(1)
        fidelity = strategy.fidelity_for(arch)
        keys.append(f"{evaluator.space.canonical_key(arch)}@{fidelity}")
        strategy.tell(arch, evaluator.evaluate(arch, fidelity).visible())
    return keys


def test_same_seed_same_proposals(strategy_name: str) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    steps = _steps(strategy_name, 80)
    first = _drive(_strategy(strategy_name, ev, seed=7), ev, steps)
    again = _drive(_strategy(strategy_name, ev, seed=7), ev, steps)
    other = _drive(_strategy(strategy_name, ev, seed=8), ev, steps)
    assert first == again
    assert first != other


@pytest.mark.parametrize("dataset", ["cora", "proteins"])
def test_never_proposes_an_invalid_architecture(strategy_name: str, dataset: str) -> None:
    ev = NasBenchGraphEvaluator(dataset=dataset)
    strategy = _strategy(strategy_name, ev)
    for _ in range(_steps(strategy_name, 300)):
        for arch in strategy.ask(2):
            ev.space.validate(arch)
            strategy.tell(arch, ev.evaluate(arch, strategy.fidelity_for(arch)).visible())


def test_respects_the_budget(strategy_name: str, db_path: Path) -> None:
    ev = CountingEvaluator()
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="b",
            space=ev.space,
            evaluator=ev,
            strategy=_strategy(strategy_name, ev),
            store=store,
        )
        summary = exp.run(Budget(40))
        stored = store.trials(exp.record.id)
    assert summary.archs == 40 == len({t.key for t in stored})
    assert len(stored) == len(ev.calls)  # every trial evaluated once, none twice
    assert len({(t.key, t.fidelity) for t in stored}) == len(stored)
    if not _multi_fidelity(strategy_name):
        assert len(stored) == 40
    else:  # promotions re-train architectures at higher fidelities
        assert len({t.fidelity for t in stored}) >= 2


def test_resumes_from_history(strategy_name: str, db_path: Path) -> None:
    ev = CountingEvaluator()
    with SqlStore(db_path) as store:
        first = Experiment(
            name="r",
            space=ev.space,
            evaluator=ev,
            strategy=_strategy(strategy_name, ev),
            store=store,
        )
        first.run(Budget(30))
    calls = len(ev.calls)
    assert calls == 30 or _multi_fidelity(strategy_name)
    with SqlStore(db_path) as store:  # a new process would do exactly this
        second = Experiment(
            name="r",
            space=ev.space,
            evaluator=ev,
            strategy=_strategy(strategy_name, ev),
            store=store,
        )
        summary = second.run(Budget(60))
        stored = store.trials(second.record.id)
    assert summary.resumed_trials == calls and summary.new_trials == len(stored) - calls
    assert len(ev.calls) == len(stored)  # nothing stored was evaluated again
    assert [t.number for t in stored] == list(range(len(stored)))
    assert len({t.key for t in stored}) == 60


def test_sees_validation_metrics_only(strategy_name: str, db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    strategy = _strategy(strategy_name, ev)
    told: list[Result] = []
    original = strategy.tell

    def spy(arch: Architecture, result: Result) -> None:
        told.append(result)
        original(arch, result)

    strategy.tell = spy  # type: ignore[method-assign]
    with SqlStore(db_path) as store:
        Experiment(name="v", space=ev.space, evaluator=ev, strategy=strategy, store=store).run(
            Budget(25)
        )
        # resumed: the replayed history is validation-only too
        strategy2 = _strategy(strategy_name, ev)
        strategy2.tell = spy  # type: ignore[method-assign]
        Experiment(name="v", space=ev.space, evaluator=ev, strategy=strategy2, store=store).run(
            Budget(30)
        )
    assert len(told) >= 55
    assert all(not r.test_metrics and "val_acc" in r.metrics for r in told)


def test_accepts_results_it_did_not_propose(strategy_name: str) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    donor = make_strategy("random", ev.space, objective=OBJECTIVE, seed=99)
    strategy = _strategy(strategy_name, ev)
    for arch in donor.ask(40):
        strategy.tell(arch, ev.evaluate(arch).visible())
    for arch in strategy.ask(5):
        ev.space.validate(arch)


def test_rejects_bad_options(strategy_name: str) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with pytest.raises(ConfigError, match="has no option 'bogus'; its options"):
        make_strategy(strategy_name, ev.space, objective=OBJECTIVE, seed=0, options={"bogus": 1})
    with pytest.raises(ConfigError, match="seed must be an integer from 0 to 4294967295"):
        make_strategy(strategy_name, ev.space, objective=OBJECTIVE, seed=-1)


def test_honours_constraints(strategy_name: str, db_path: Path) -> None:
    """Known costs filter before evaluation; measured ones make trials INFEASIBLE, never best."""
    ev = CountingEvaluator("cora")
    rng = np.random.default_rng(0)
    sizes = [ev.known_costs(ev.space.sample(rng), ["params"])["params"] for _ in range(200)]
    small = Constraint("params", "<=", float(np.median(sizes)))
    good = Constraint("val_acc", ">=", 0.75)
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="bounded",
            space=ev.space,
            evaluator=ev,
            strategy=_strategy(strategy_name, ev),
            store=store,
            constraints=[small, good],
        )
        summary = exp.run(Budget(30))
        stored = store.trials(exp.record.id)
    assert all(ev.known_costs(arch, ["params"])["params"] <= small.bound for arch, _ in ev.calls)
    assert summary.skipped_infeasible > 0
    for trial in stored:
        if trial.status is Status.COMPLETE:
            assert trial.metrics["val_acc"] >= 0.75
        elif trial.status is Status.INFEASIBLE:
            assert trial.metrics["val_acc"] < 0.75 and "violates val_acc>=0.75" in str(trial.error)
    assert summary.best is None or summary.best.status is Status.COMPLETE


def test_several_objectives_only_where_supported(strategy_name: str) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    objectives = (OBJECTIVE, Objective("latency_ms", Direction.MINIMIZE))
    if not STRATEGIES.get(strategy_name).multi_objective:  # type: ignore[attr-defined]
        with pytest.raises(ConfigError, match="optimises one objective"):
            make_strategy(strategy_name, ev.space, objective=objectives, seed=0)
        return
    strategy = make_strategy(strategy_name, ev.space, objective=objectives, seed=0)
    keys = _drive(strategy, ev, 40)  # every proposal valid (the table knows it)
    assert len(set(keys)) >= 30
    assert len(strategy.last_scores) == 2 and all(s > -1e9 for s in strategy.last_scores)

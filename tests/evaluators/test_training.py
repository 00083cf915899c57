"""Training evaluator inside the real Experiment loop, inline and with worker processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nasforge.api import make_strategy
from nasforge.budget import Budget
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.execution.process import ProcessExecutor
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Status
from nasforge.spaces.gnn import GnnSpace
from nasforge.spaces.gnn_model import GnnHyper
from nasforge.store.sql import SqlStore
from nasforge.tasks.graph import NodeClassificationTask, planted_partition
from nasforge.train.trainer import TrainConfig

TASK = NodeClassificationTask("synthetic", planted_partition(nodes=200, features=16, seed=2))


def _evaluator(**train: object) -> TrainingEvaluator:
    return TrainingEvaluator(
        task=TASK,
        space=GnnSpace(),
        hyper=GnnHyper(hidden=16, dropout=0.2),
        train=TrainConfig(epochs=20, patience=None, **train),  # type: ignore[arg-type]
    )


def test_result_has_metrics_costs_and_curve() -> None:
    ev = _evaluator()
    arch = ev.space.make([0, 0, 1, 2], ["gcn", "gat", "sage", "fc"])
    result = ev.evaluate(arch)
    assert result.status is Status.COMPLETE and result.fidelity == 20
    assert 0 <= result.metrics["val_acc"] <= 1 and 0 <= result.test_metrics["test_acc"] <= 1
    assert set(result.costs) == {"params", "flops", "latency_ms"}
    assert len(result.curve) == 20
    assert ev.evaluate(arch, budget=5).fidelity == 5


def test_divergence_fails_the_trial_not_the_search(db_path: Path) -> None:
    ev = _evaluator(lr=1e30, optimizer="sgd")
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="nan",
            space=ev.space,
            evaluator=ev,
            strategy=make_strategy("random", ev.space, objective=Objective("val_acc"), seed=0),
            store=store,
        )
        summary = exp.run(Budget(3))
        trials = store.trials(exp.record.id)
    assert summary.new_trials == 3 and summary.best is None
    assert all(t.status is Status.FAILED and "loss became" in (t.error or "") for t in trials)


@pytest.mark.slow
def test_process_workers_train_and_store(db_path: Path) -> None:
    ev = _evaluator()
    strategy = make_strategy("evolution", ev.space, objective=Objective("val_acc"), seed=0)
    with SqlStore(db_path) as store, ProcessExecutor(ev, workers=2) as executor:
        exp = Experiment(name="p", space=ev.space, evaluator=ev, strategy=strategy, store=store)
        summary = exp.run(Budget(6), executor=executor)
        trials = store.trials(exp.record.id)
    assert summary.new_trials == 6 and [t.number for t in trials] == list(range(6))
    assert all(t.status is Status.COMPLETE for t in trials)
    assert all(math.isfinite(t.metrics["val_acc"]) and t.curve for t in trials)
    assert len({t.key for t in trials}) == 6

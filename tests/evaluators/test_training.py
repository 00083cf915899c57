"""Training evaluator inside the real Experiment loop, inline and with worker processes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.artifacts import ArtifactStore
from nasforge.budget import Budget
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.execution.process import ProcessExecutor
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Status
from nasforge.spaces.base import SPACES
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.stopping import LearningCurveStopper
from nasforge.store.sql import SqlStore
from nasforge.tasks import resolve_task
from nasforge.tasks.node import NodeClassificationTask, planted_partition
from nasforge.train.supervised import predict, score
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


# -- keep_weights: the best-validation weights travel with the result ----------------------------
def _rebuilt_metrics(ev: TrainingEvaluator, arch: Architecture, state: dict[str, Any]) -> float:
    """The test metric of ``arch``'s model rebuilt from scratch and given ``state``."""
    model = ev.space.build(arch, ev.task, ev.hyper)  # type: ignore[attr-defined]
    model.load_state_dict(state, strict=True)
    model.eval()
    task = ev.task
    if isinstance(task, NodeClassificationTask):
        data = task.data
        with torch.no_grad():
            correct = model(data.x, data.edge_index).argmax(dim=-1) == data.y
        return int(correct[data.test_mask].sum()) / int(data.test_mask.sum())
    y = task.y_train
    scale = (float(y.mean()), float(y.std()) or 1.0) if task.kind == "regression" else (0.0, 1.0)
    return score(predict(model, task.x_test), task.y_test, task.kind, scale)


def _tabular_evaluator(dataset: str, **options: Any) -> TrainingEvaluator:
    setup = resolve_task(f"tabular:{dataset}", seed=0)
    return TrainingEvaluator(
        task=setup.task,
        space=SPACES.create(setup.space),
        hyper=setup.hyper,
        train=replace(setup.train, epochs=4),
        latency=False,
        **options,
    )


@pytest.mark.parametrize("kind", ["graph", "breast_cancer", "diabetes"])
def test_keep_weights_reproduce_the_stored_test_metric(kind: str, tmp_path: Path) -> None:
    if kind == "graph":
        plain = _evaluator()
        kept = TrainingEvaluator(
            task=plain.task,
            space=plain.space,
            hyper=plain.hyper,
            train=plain.train,
            keep_weights=True,
        )
        arch = plain.space.make([0, 0, 1, 2], ["gcn", "gat", "sage", "fc"])
    else:
        plain = _tabular_evaluator(kind)
        kept = _tabular_evaluator(kind, keep_weights=True)
        arch = plain.space.sample(np.random.default_rng(3))

    result = kept.evaluate(arch)
    baseline = plain.evaluate(arch)

    assert kept.describe() == plain.describe()  # the same experiment with or without it
    assert baseline.weights is None
    assert result.metrics == baseline.metrics and result.test_metrics == baseline.test_metrics
    assert result.weights is not None
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in result.weights.values())
    (test_name, stored), *_ = result.test_metrics.items()
    # through a real safetensors file, into a freshly built model
    artifacts = ArtifactStore(tmp_path / "artifacts")
    artifacts.save_weights(0, result.weights)
    measured = _rebuilt_metrics(kept, arch, artifacts.load_weights(0))
    assert measured == pytest.approx(stored, rel=1e-6, abs=1e-9), test_name
    assert result.visible().weights is None  # a strategy never sees them


class _AlwaysStop(LearningCurveStopper):
    """Stops every run at its first checkpoint (a real stopper's hook, a fixed verdict)."""

    def should_stop(self, curve: Sequence[Mapping[str, float]], epochs: int) -> str | None:
        return "predicted to lose" if len(curve) == 1 else None


def test_a_pruned_run_keeps_no_weights() -> None:
    stopper = _AlwaysStop(Objective("val_acc"))
    ev = _tabular_evaluator("breast_cancer", keep_weights=True, stopper=stopper)

    result = ev.evaluate(ev.space.sample(np.random.default_rng(0)))

    assert result.status is Status.PRUNED and result.weights is None

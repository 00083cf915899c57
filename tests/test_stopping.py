"""Learning-curve early stopping (Baker et al.): the predictor and a real search with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nasforge
from nasforge import api
from nasforge.budget import Budget
from nasforge.errors import ConfigError
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Direction, Objective
from nasforge.result import Status
from nasforge.spaces.mlp import MlpSpace
from nasforge.stopping import LearningCurveStopper, curve_features
from nasforge.store.sql import SqlStore
from nasforge.strategies.random import RandomSearch
from nasforge.tasks.tabular import load_builtin
from nasforge.train.trainer import TrainConfig


def _curve(level: float, epochs: int = 20) -> list[dict[str, float]]:
    """A saturating curve that ends near ``level``."""
    return [{"val_acc": level * (1 - np.exp(-(e + 1) / 4))} for e in range(epochs)]


def _stopper(**kwargs: object) -> LearningCurveStopper:
    stopper = LearningCurveStopper(objective=Objective("val_acc"), **kwargs)  # type: ignore[arg-type]
    for level in np.linspace(0.5, 0.9, 12):
        assert stopper.add_finished(_curve(float(level)), 20)
    return stopper


def test_features() -> None:
    f = curve_features([0.1, 0.3, 0.4])
    np.testing.assert_allclose(f, [0.1, 0.3, 0.4, 0.2, 0.1, -0.1, 0.4, 0.4])


def test_stops_a_loser_at_a_checkpoint_and_keeps_a_winner() -> None:
    stopper = _stopper()
    loser = _curve(0.3)
    assert stopper.should_stop(loser[:4], 20) is None  # not a checkpoint (5, 10, 15)
    reason = stopper.should_stop(loser[:5], 20)
    assert reason is not None and "stopped at epoch 5 of 20" in reason
    assert "predicted final val_acc" in reason
    mean, _ = stopper.predict([p["val_acc"] for p in loser[:10]])
    assert abs(mean - 0.3) < 0.08  # the regression extrapolates the curve
    assert stopper.should_stop(_curve(0.95)[:5], 20) is None


def test_needs_enough_finished_runs() -> None:
    stopper = LearningCurveStopper(objective=Objective("val_acc"), min_curves=5)
    for level in (0.6, 0.7, 0.8):
        stopper.add_finished(_curve(level), 20)
    assert stopper.should_stop(_curve(0.1)[:5], 20) is None


def test_minimised_metrics_are_oriented() -> None:
    stopper = LearningCurveStopper(objective=Objective("val_rmse", Direction.MINIMIZE))
    for level in np.linspace(50, 90, 12):
        curve = [{"val_rmse": float(level + 100 * np.exp(-(e + 1) / 4))} for e in range(20)]
        stopper.add_finished(curve, 20)
    bad = [{"val_rmse": 200 + 100 * np.exp(-(e + 1) / 4)} for e in range(5)]
    assert stopper.should_stop(bad, 20) is not None


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="checkpoints must be fractions"):
        LearningCurveStopper(objective=Objective("val_acc"), checkpoints=(1.5,))
    with pytest.raises(ConfigError, match="delta must be in"):
        LearningCurveStopper(objective=Objective("val_acc"), delta=0)
    with pytest.raises(ConfigError, match="unknown early stopping 'magic'"):
        api.plan(task="tabular:wine", budget=2, early_stopping="magic")
    with pytest.raises(ConfigError, match="apply to --task searches only"):
        api.plan(benchmark="nas-bench-graph:cora", budget=2, early_stopping="curve")


def test_search_prunes_runs_through_the_store(db_path: Path) -> None:
    """Finished curves are read back from the store, as a worker process would."""
    space = MlpSpace()
    stopper = LearningCurveStopper(
        objective=Objective("val_acc"), min_curves=4, delta=0.45, refresh_s=0.0
    )
    evaluator = TrainingEvaluator(
        task=load_builtin("wine"),
        space=space,
        train=TrainConfig(epochs=12, lr=1e-3, batch_size=32, patience=None),
        latency=False,
        stopper=stopper,
    )
    stopper.bind(str(db_path), "lc")
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="lc",
            space=space,
            evaluator=evaluator,
            strategy=RandomSearch(space, objective=Objective("val_acc"), seed=0),
            store=store,
        )
        exp.run(Budget(16))
        trials = store.trials(exp.record.id)
    pruned = [t for t in trials if t.status is Status.PRUNED]
    complete = [t for t in trials if t.status is Status.COMPLETE]
    assert len(complete) >= 4 and pruned, [t.status for t in trials]
    for t in pruned:
        assert t.error is not None and "predicted final val_acc" in t.error
        assert len(t.curve) < 12 and t.fidelity == 12
    assert exp.record.config["evaluator"]["stopping"]["kind"] == "learning-curve"


def test_api_search_with_curve_stopping(db_path: Path) -> None:
    result = nasforge.search(
        task="tabular:wine", budget=3, epochs=4, name="lc", db=db_path, early_stopping="curve"
    )
    assert result.summary.new_trials == 3  # fewer than min_curves finished runs: none pruned
    assert all(t.status is Status.COMPLETE for t in api.trials("lc", db=db_path))

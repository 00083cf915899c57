"""Learning-curve early stopping: stop training runs whose predicted final score loses.

:class:`LearningCurveStopper` follows Baker et al., "Accelerating Neural Architecture Search
using Performance Prediction" (ICLR workshop 2018, arXiv 2017): a regression from the first
``t`` epochs of a validation curve (its values and their first and second differences) to the
curve's final best value, fitted on the runs of the same search that trained to the end. At a
few checkpoints of a run, an ensemble of ν-support-vector regressors (bootstrap resamples)
predicts its final score with a mean and a spread; when the probability that the run beats
the best finished run is below ``delta``, the run is stopped and stored as PRUNED.

The stopper reads the finished runs from the experiment's store, so it works the same in the
search process and in worker processes (and across machines sharing a PostgreSQL store). It
refits only when more finished runs are available, at most every ``refresh_s`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasforge.errors import ConfigError, NasforgeError
from nasforge.objective import Direction, Objective
from nasforge.result import Status

__all__ = ["LearningCurveStopper", "curve_features"]


def curve_features(values: Sequence[float]) -> np.ndarray:
    """Features of a partial curve: the values, their first and second differences."""
    v = np.asarray(values, dtype=np.float64)
    d1 = np.diff(v) if len(v) > 1 else np.zeros(0)
    d2 = np.diff(d1) if len(d1) > 1 else np.zeros(0)
    return np.concatenate([v, d1, d2, [v.max(), v[-1]]])


@dataclass
class LearningCurveStopper:
    """Stop a training run at a checkpoint when it is predicted to lose (Baker et al.).

    Args:
        objective: The metric in the curve (``val_acc``, ``val_rmse``) and its direction.
        checkpoints: Fractions of the run's epochs at which to decide.
        delta: Stop when P(final score > best finished score) is below this.
        min_curves: Finished runs needed before anything is stopped.
        ensemble: Number of bootstrap ν-SVR models.
        refresh_s: Seconds between looks at the store for more finished runs.
        seed: Seeds the bootstrap resamples.
    """

    objective: Objective
    checkpoints: tuple[float, ...] = (0.25, 0.5, 0.75)
    delta: float = 0.05
    min_curves: int = 10
    ensemble: int = 5
    refresh_s: float = 2.0
    seed: int = 0
    _db: str | None = field(default=None, repr=False)
    _experiment: str | None = field(default=None, repr=False)
    _finished: list[list[float]] = field(default_factory=list, repr=False)
    _models: dict[int, Any] = field(default_factory=dict, repr=False)
    _checked_at: float = field(default=-math.inf, repr=False)

    def __post_init__(self) -> None:
        if not self.checkpoints or any(not 0 < c < 1 for c in self.checkpoints):
            raise ConfigError(
                f"checkpoints must be fractions in (0, 1) of a run's epochs, got {self.checkpoints}"
            )
        if not 0 < self.delta < 1:
            raise ConfigError(f"delta must be in (0, 1), got {self.delta}")
        if self.min_curves < 3:
            raise ConfigError(f"min_curves must be >= 3, got {self.min_curves}")
        if self.ensemble < 1:
            raise ConfigError(f"ensemble must be >= 1, got {self.ensemble}")

    # -- data ---------------------------------------------------------------------------------
    def bind(self, db: str, experiment: str) -> None:
        """Read finished runs from experiment ``experiment`` of the store ``db``."""
        self._db, self._experiment = db, experiment

    def options(self) -> dict[str, Any]:
        """The settings that identify this stopper (stored with the experiment)."""
        return {
            "kind": "learning-curve",
            "checkpoints": list(self.checkpoints),
            "delta": self.delta,
            "min_curves": self.min_curves,
            "ensemble": self.ensemble,
        }

    def _oriented(self, value: float) -> float:
        return value if self.objective.direction is Direction.MAXIMIZE else -value

    def add_finished(self, curve: Sequence[Mapping[str, float]], epochs: int) -> bool:
        """Learn from a run that finished (all ``epochs``, or stopped by patience).

        A run stopped by patience is padded with its last value: it had stopped improving.
        Returns False for an unusable curve (empty, too long, or with NaN).
        """
        values = [p.get(self.objective.metric, math.nan) for p in curve]
        if not values or len(values) > epochs or not all(math.isfinite(v) for v in values):
            return False
        values += [values[-1]] * (epochs - len(values))
        self._finished.append([self._oriented(v) for v in values])
        self._models.clear()
        return True

    def _refresh(self, epochs: int) -> None:
        now = time.monotonic()
        if self._db is None or self._experiment is None or now - self._checked_at < self.refresh_s:
            return
        self._checked_at = now
        from nasforge.store.sql import open_store

        try:
            store = open_store(self._db, create=False)
            try:
                record = store.get_experiment(self._experiment)
                trials = store.trials(record.id, status=Status.COMPLETE)
            finally:
                store.close()
        except NasforgeError:  # not created yet: nothing finished to learn from
            return
        runs = [t for t in trials if t.fidelity == epochs and t.curve]
        if len(runs) != len(self._finished):
            self._finished.clear()
            for trial in runs:
                self.add_finished(trial.curve, epochs)
            self._models.clear()

    # -- the decision ---------------------------------------------------------------------------
    def _fit(self, t: int) -> Any:
        from sklearn.svm import NuSVR

        x = np.stack([curve_features(c[:t]) for c in self._finished])
        y = np.array([max(c) for c in self._finished])
        rng = np.random.default_rng([self.seed, t, len(self._finished)])
        models = []
        for _ in range(self.ensemble):
            rows = rng.integers(0, len(x), len(x)) if self.ensemble > 1 else np.arange(len(x))
            model = NuSVR(nu=0.5, C=10.0, gamma="scale")
            model.fit(x[rows], y[rows])
            models.append(model)
        return models

    def predict(self, values: Sequence[float]) -> tuple[float, float]:
        """Mean and spread of the predicted final (best) score of a partial curve."""
        t = len(values)
        if t not in self._models:
            self._models[t] = self._fit(t)
        x = curve_features([self._oriented(v) for v in values])[None]
        preds = np.array([m.predict(x)[0] for m in self._models[t]])
        return float(preds.mean()), float(max(preds.std(), 1e-3))

    def should_stop(self, curve: Sequence[Mapping[str, float]], epochs: int) -> str | None:
        """A reason to stop the run whose curve so far is ``curve`` (of ``epochs``), or None."""
        t = len(curve)
        if t not in {max(1, round(c * epochs)) for c in self.checkpoints}:
            return None
        self._refresh(epochs)
        if len(self._finished) < self.min_curves:
            return None
        values = [p.get(self.objective.metric, math.nan) for p in curve]
        if not all(math.isfinite(v) for v in values):
            return None
        mean, spread = self.predict(values)
        best = max(max(c) for c in self._finished)
        p_win = 0.5 * math.erfc((best - mean) / (spread * math.sqrt(2)))
        if p_win >= self.delta:
            return None
        sign = 1 if self.objective.direction is Direction.MAXIMIZE else -1
        return (
            f"stopped at epoch {t} of {epochs}: predicted final {self.objective.metric} "
            f"{sign * mean:.4f} ± {spread:.4f}, P(beats best {sign * best:.4f}) = {p_win:.3f} "
            f"< {self.delta}"
        )

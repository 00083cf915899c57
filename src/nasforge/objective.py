"""Objectives (a metric name with an explicit direction) and how trials rank on them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from nasforge.errors import ConfigError
from nasforge.result import Status

__all__ = [
    "Direction",
    "Objective",
    "Ranked",
    "best_trial",
    "is_better",
    "rank_trials",
    "replaces_best",
    "trial_score",
]


class Direction(StrEnum):
    """Whether larger or smaller values of a metric are better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


_DIRECTION_ALIASES = {
    "max": Direction.MAXIMIZE,
    "maximize": Direction.MAXIMIZE,
    "min": Direction.MINIMIZE,
    "minimize": Direction.MINIMIZE,
}


@dataclass(frozen=True, slots=True)
class Objective:
    """A metric to optimise, e.g. ``Objective("val_acc", Direction.MAXIMIZE)``.

    Strategies only ever see validation metrics; an objective on a test metric is refused.
    """

    metric: str
    direction: Direction = Direction.MAXIMIZE

    def __post_init__(self) -> None:
        if not self.metric or not self.metric.replace("_", "").isalnum():
            raise ConfigError(
                f"objective metric must be a name of letters, digits and '_', got {self.metric!r}"
            )
        if self.metric.startswith("test"):
            raise ConfigError(
                f"objective {self.metric!r} is a test metric; search on validation metrics "
                "(test metrics are stored for reporting only)"
            )
        object.__setattr__(self, "direction", Direction(self.direction))

    @classmethod
    def parse(cls, text: str) -> Objective:
        """Parse ``"metric:max"`` or ``"metric:min"`` (a bare metric means maximise).

        Raises:
            ConfigError: On a malformed text or an unknown direction.
        """
        metric, _, direction = text.partition(":")
        if not direction:
            return cls(metric.strip())
        try:
            return cls(metric.strip(), _DIRECTION_ALIASES[direction.strip().lower()])
        except KeyError:
            raise ConfigError(
                f"objective direction must be one of max, min, maximize, minimize; got {text!r}"
            ) from None

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``; NaN is never better."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.direction is Direction.MAXIMIZE else a < b

    def score(self, value: float) -> float:
        """``value`` oriented so that larger is better (NaN maps to -inf)."""
        if math.isnan(value):
            return -math.inf
        return value if self.direction is Direction.MAXIMIZE else -value

    def value_in(self, metrics: Mapping[str, float], costs: Mapping[str, float]) -> float:
        """The objective's value: a validation metric, else a cost of that name, else NaN."""
        return metrics.get(self.metric, costs.get(self.metric, math.nan))

    def score_of(
        self, complete: bool, metrics: Mapping[str, float], costs: Mapping[str, float]
    ) -> float:
        """Larger-is-better score of a result; -inf unless complete with a finite value."""
        value = self.value_in(metrics, costs)
        return self.score(value) if complete and math.isfinite(value) else -math.inf

    def __str__(self) -> str:
        return f"{self.metric}:{'max' if self.direction is Direction.MAXIMIZE else 'min'}"


# -- ranking trials ---------------------------------------------------------------------------
class Ranked(Protocol):
    """What ranking reads of a trial (:class:`~nasforge.store.base.TrialRecord`)."""

    @property
    def number(self) -> int: ...

    @property
    def status(self) -> Status: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...

    @property
    def costs(self) -> Mapping[str, float]: ...

    @property
    def fidelity(self) -> int | None: ...


R = TypeVar("R", bound=Ranked)


def trial_score(trial: Ranked | None, objective: Objective) -> float:
    """``trial``'s objective (a metric or a cost) oriented so that larger is better.

    -inf unless the trial is COMPLETE with a finite value.
    """
    if trial is None:
        return -math.inf
    complete = trial.status is Status.COMPLETE
    return objective.score_of(complete, trial.metrics, trial.costs)


def _rank(trial: Ranked | None, objective: Objective) -> tuple[int, float]:
    """Sort key of the incumbent: first the fidelity, then the objective."""
    score = trial_score(trial, objective)
    if trial is None or score == -math.inf:
        return (-1, -math.inf)
    return (trial.fidelity if trial.fidelity is not None else 0, score)


def is_better(trial: Ranked, than: Ranked | None, objective: Objective) -> bool:
    """Whether ``trial`` beats ``than`` as the search's best.

    Only COMPLETE trials with a finite objective qualify. Results at different fidelities are
    not comparable (a 5-epoch accuracy says little against a 200-epoch one), so a trial at a
    higher fidelity beats any at a lower one; at equal fidelity the objective decides.
    """
    return _rank(trial, objective) > _rank(than, objective)


def replaces_best(trial: Ranked, best: Ranked | None, objective: Objective) -> bool:
    """Whether ``trial`` is the best instead of ``best``: better, or as good and numbered lower.

    Trials finish out of order with several workers; breaking ties by number makes the best
    the same whichever order the results came in.
    """
    if best is None:
        return is_better(trial, best, objective)
    return (_rank(trial, objective), -trial.number) > (_rank(best, objective), -best.number)


def best_trial(trials: Iterable[R], objective: Objective) -> R | None:
    """The best COMPLETE trial (lowest number on ties): best objective at the highest fidelity."""
    best: R | None = None
    for trial in trials:
        if replaces_best(trial, best, objective):
            best = trial
    return best


def rank_trials(trials: Iterable[R], objective: Objective) -> list[R]:
    """COMPLETE trials with a finite ``objective``, best first, as ``nasforge best`` ranks them.

    A higher fidelity ranks first (results at different fidelities are not comparable), then
    the objective, then the earlier trial; the first one is :func:`best_trial`'s choice.
    """
    ranked = [t for t in trials if trial_score(t, objective) > -math.inf]
    ranked.sort(key=lambda t: (-(t.fidelity or 0), -trial_score(t, objective), t.number))
    return ranked

"""Objectives: a metric name with an explicit direction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from nasforge.errors import ConfigError

__all__ = ["Direction", "Objective"]


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

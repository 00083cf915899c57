"""Hard constraints: a metric or cost with a bound, such as ``params<=1e6``."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nasforge.errors import ConfigError

__all__ = ["Constraint"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_SCALE = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([^\s]+?)\s*([kKMG]?)\s*$")
_RULE = (
    "a constraint is METRIC OP NUMBER with OP one of <=, <, >=, >, e.g. 'params<=1e6', "
    "'latency_ms<5', 'flops<=300M' (k, M, G suffixes allowed)"
)


@dataclass(frozen=True, slots=True)
class Constraint:
    """A hard bound on a validation metric or a cost.

    A trial that violates a constraint is stored as ``INFEASIBLE`` with the reason and is
    never the best nor on a Pareto front. A missing or NaN value violates the constraint.
    """

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"{_RULE}; got operator {self.op!r}")
        if not self.metric or not self.metric.replace("_", "").isalnum():
            raise ConfigError(f"{_RULE}; got metric {self.metric!r}")
        if self.metric.startswith("test"):
            raise ConfigError(
                f"constraint on {self.metric!r}, a test metric: constrain validation metrics "
                "or costs (test metrics are stored for reporting only)"
            )
        if not math.isfinite(self.bound):
            raise ConfigError(f"{_RULE}; the bound must be a finite number, got {self.bound!r}")

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``"params<=1e6"``, ``"latency_ms < 5"``, ``"flops<=300M"``.

        Raises:
            ConfigError: Saying the rule and the text.
        """
        match = _PATTERN.match(text)
        if match is None:
            raise ConfigError(f"{_RULE}; got {text!r}")
        metric, op, number, suffix = match.groups()
        try:
            bound = float(number) * _SCALE[suffix]
        except ValueError:
            raise ConfigError(f"{_RULE}; {number!r} in {text!r} is not a number") from None
        return cls(metric, op, bound)

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the bound (NaN never does)."""
        return not math.isnan(value) and _OPS[self.op](value, self.bound)

    def value_in(self, metrics: Mapping[str, float], costs: Mapping[str, float]) -> float:
        """The constrained value: a validation metric, else a cost of that name, else NaN."""
        return metrics.get(self.metric, costs.get(self.metric, math.nan))

    def violation(self, metrics: Mapping[str, float], costs: Mapping[str, float]) -> str | None:
        """Why ``metrics``/``costs`` violate this constraint, or ``None`` when they satisfy it."""
        value = self.value_in(metrics, costs)
        if self.holds(value):
            return None
        shown = "missing" if math.isnan(value) else f"{value:.6g}"
        return f"violates {self} ({self.metric}={shown})"

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

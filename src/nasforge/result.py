"""The outcome of evaluating one architecture."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from nasforge.errors import ConfigError, InvalidResultError

__all__ = ["Result", "Status"]


class Status(StrEnum):
    """Life-cycle state of a trial. Results carry only the final ones."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"
    INFEASIBLE = "INFEASIBLE"  # violates a hard constraint; never best, never on a front


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (a numpy or a one-element torch scalar
    too); ``None`` for anything else, text and booleans included."""
    if type(value) is float:  # the usual case, before the slower ABC check
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    item = getattr(value, "item", None)  # numpy arrays and torch tensors of one element
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            inner = item()
        except Exception:
            return None
        if isinstance(inner, numbers.Real) and not isinstance(inner, bool):
            return float(inner)
    return None


def _floats(name: str, values: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise InvalidResultError(
            f"{name} must be a mapping of names to numbers, got {type(values).__name__}"
        )
    out: dict[str, float] = {}
    for key, value in values.items():
        number = _number(value)
        if number is None:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise InvalidResultError(
                f"{name}[{key!r}] must be a number (int, float, a numpy or one-element torch "
                f"scalar), got {type(value).__name__} {shown}"
            )
        out[str(key)] = number
    return out


@dataclass(frozen=True, slots=True)
class Result:
    """What an evaluator returns for one architecture.

    Attributes:
        status: ``COMPLETE``, ``FAILED`` (``reason`` says why), ``PRUNED``, or
            ``INFEASIBLE`` (it violates a hard constraint; ``reason`` names it).
        metrics: Validation metrics; the only ones a strategy sees.
        test_metrics: Held-out test metrics, stored for reporting, never shown to strategies.
        costs: Model costs such as ``params``, ``flops``, ``latency_ms``.
        curve: Per-epoch metrics (a learning curve), empty for table look-ups.
        fidelity: The budget (epochs) the result was obtained at, if any.
        wall_time: Seconds the evaluation took.
        reason: Why the evaluation failed or was pruned.
        lost: For a FAILED result: the evaluation was lost with its worker (the process or node
            died, or the worker was unreachable), not failed by the candidate. The search
            marks such a trial FAILED (stale) and retries it (``--max-retries``).
        started: For a lost result: whether the evaluation had started. One lost before it
            started (its worker could not start) is not charged an attempt of its retries.
        weights: The trained model's tensors (its state dict), when the evaluator was asked to
            keep them; the search saves them as safetensors next to the store (never in the
            database) and drops them from the result.
        device: Where the model was trained and timed (``cpu``, ``cuda:0``); ``None`` for
            evaluations that run no model (table look-ups).
        device_name: What that device is: the GPU's name, or the CPU's model.
    """

    status: Status = Status.COMPLETE
    metrics: Mapping[str, float] = field(default_factory=dict)
    test_metrics: Mapping[str, float] = field(default_factory=dict)
    costs: Mapping[str, float] = field(default_factory=dict)
    curve: tuple[Mapping[str, float], ...] = ()
    fidelity: int | None = None
    wall_time: float = 0.0
    reason: str | None = None
    lost: bool = False
    started: bool = True
    weights: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    device: str | None = None
    device_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        if self.status is Status.RUNNING:
            raise ConfigError("a Result is final: status must be COMPLETE, FAILED or PRUNED")
        object.__setattr__(self, "metrics", _floats("metrics", self.metrics))
        object.__setattr__(self, "test_metrics", _floats("test_metrics", self.test_metrics))
        object.__setattr__(self, "costs", _floats("costs", self.costs))
        object.__setattr__(self, "curve", tuple(_floats("curve", p) for p in self.curve))

    @classmethod
    def failed(
        cls, reason: str, *, wall_time: float = 0.0, lost: bool = False, started: bool = True
    ) -> Result:
        """A FAILED result with its reason (``lost``: the worker died, not the candidate;
        ``started``: whether its evaluation had begun)."""
        return cls(
            status=Status.FAILED, reason=reason, wall_time=wall_time, lost=lost, started=started
        )

    @property
    def ok(self) -> bool:
        """True for a COMPLETE result whose metrics are all finite."""
        return self.status is Status.COMPLETE and all(
            math.isfinite(v) for v in self.metrics.values()
        )

    def visible(self) -> Result:
        """This result as a strategy may see it: without test metrics or weights."""
        if self.test_metrics or self.weights is not None:
            return replace(self, test_metrics={}, weights=None)
        return self

"""The evaluator contract: architecture in, :class:`~nasforge.result.Result` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any

from nasforge.architecture import Architecture
from nasforge.objective import Objective
from nasforge.result import Result

__all__ = ["Evaluator"]


class Evaluator(ABC):
    """Scores architectures: by table look-up, by training, or by zero-cost proxies.

    Contract:
        * ``evaluate`` never raises for a problem of the architecture itself (a diverging
          loss, an op that does not fit the data): it returns ``Result.failed(reason)``.
          It raises only for misuse (an architecture of another space).
        * Validation metrics go to ``Result.metrics`` and test metrics to
          ``Result.test_metrics``; strategies only ever see the former.
        * ``describe()`` is JSON data that identifies the evaluator's configuration; a stored
          experiment refuses to resume with a different one.

    Attributes:
        space_name: Name of the space whose architectures this evaluator scores.
        objectives: The objectives it suggests by default (e.g. maximise ``val_acc``).
        metrics: Names of the validation metrics and costs it reports: what objectives and
            constraints may name.
    """

    space_name: str
    objectives: tuple[Objective, ...]
    metrics: tuple[str, ...]

    @abstractmethod
    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        """Score ``arch``, at fidelity ``budget`` (epochs) when the evaluator has fidelities."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable configuration that identifies this evaluator."""

    def known_costs(self, arch: Architecture, names: Collection[str]) -> dict[str, float]:
        """Costs among ``names`` that are known without evaluating ``arch`` (e.g. its size).

        The search checks hard constraints on these before evaluating, and skips candidates
        that violate them. Returns only the costs it can give cheaply; none by default.
        """
        return {}

    def prepare(self) -> None:
        """Load and check what evaluating needs (a table file, data), before a search starts.

        Called once before the store is opened, so that a missing or wrong file is reported
        without creating anything. Does nothing by default.

        Raises:
            ConfigError: If the evaluator cannot work as configured.
        """
        return None

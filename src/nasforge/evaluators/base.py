"""The evaluator contract: architecture in, :class:`~nasforge.result.Result` out."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import Any, ClassVar

from nasforge.architecture import Architecture
from nasforge.objective import Objective
from nasforge.registry import Registry
from nasforge.result import Result

__all__ = ["BENCHMARKS", "Evaluator", "benchmark_options", "register_benchmark"]


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
        max_fidelity: The fidelity of a full evaluation (the epochs of a training), or
            ``None`` for an evaluator without fidelities; multi-fidelity strategies take it
            as their top rung unless told.
        lookup: Whether evaluating only reads a table: it cannot take its process down, so a
            trial that was being looked up when its search died is never charged an attempt.
    """

    lookup: ClassVar[bool] = False
    space_name: str
    objectives: tuple[Objective, ...]
    metrics: tuple[str, ...]

    @property
    def max_fidelity(self) -> int | None:
        """The fidelity of a full evaluation; ``None``: the evaluator has no fidelities."""
        return None

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

    def bind(self, store: str, experiment: str) -> None:
        """Hook: the search about to run stores its trials in ``store`` as ``experiment``
        (an evaluator that reads the search's finished results, such as learning-curve early
        stopping, reads them there). Does nothing by default."""
        return None

    def prepare(self) -> None:
        """Load and check what evaluating needs (a table file, data), before a search starts.

        Called once before the store is opened, so that a missing or wrong file is reported
        without creating anything. Does nothing by default.

        Raises:
            ConfigError: If the evaluator cannot work as configured.
        """
        return None


BENCHMARKS: Registry[Evaluator] = Registry("benchmark")
"""The registered table look-ups, by name (``nas-bench-graph:cora``, ...)."""


def register_benchmark(name: str, factory: Callable[..., Evaluator], *, summary: str = "") -> None:
    """Make a table look-up available by ``name`` (``--benchmark NAME``).

    Args:
        name: ``family:dataset``, e.g. ``nas-bench-graph:cora``.
        factory: Called with the benchmark's options as keywords (those its signature takes,
            e.g. ``path`` of a file the user downloaded, ``epochs``); returns the evaluator.
            A ``functools.partial`` of an evaluator class keeps its signature readable.
        summary: One line for ``nasforge list benchmarks``.

    Raises:
        ConfigError: If the name is taken.
    """
    BENCHMARKS.register(name, factory, summary=summary)


def benchmark_options(name: str) -> tuple[str, ...]:
    """The keyword options the benchmark ``name``'s factory takes (``path``, ``epochs``...).

    Raises:
        UnknownNameError: For an unknown benchmark.
    """
    factory = BENCHMARKS.get(name)
    bound = factory.keywords if isinstance(factory, functools.partial) else {}
    params = inspect.signature(factory).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds and p.name not in bound)

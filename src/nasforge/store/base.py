"""The experiment store contract and its frozen records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nasforge.architecture import Architecture
from nasforge.result import Result, Status

__all__ = ["ExperimentRecord", "Store", "TrialRecord"]


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    """A stored experiment: its unique name and the configuration it was created with."""

    id: int
    name: str
    config: Mapping[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One stored evaluation of one architecture."""

    id: int
    experiment_id: int
    number: int
    arch: Architecture
    key: str
    status: Status
    metrics: Mapping[str, float] = field(default_factory=dict)
    test_metrics: Mapping[str, float] = field(default_factory=dict)
    costs: Mapping[str, float] = field(default_factory=dict)
    curve: tuple[Mapping[str, float], ...] = ()
    fidelity: int | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    wall_time: float | None = None

    def to_result(self) -> Result:
        """The trial's outcome as a :class:`Result` (final states only)."""
        return Result(
            status=self.status,
            metrics=self.metrics,
            test_metrics=self.test_metrics,
            costs=self.costs,
            curve=self.curve,
            fidelity=self.fidelity,
            wall_time=self.wall_time or 0.0,
            reason=self.error,
        )


class Store(ABC):
    """Durable storage of experiments and their trials.

    Contract:
        * A method that returns normally has committed its writes: a trial returned by
          :meth:`add_trial` survives the process being killed right after.
        * Records returned are frozen snapshots; changing the store does not change them.
        * Methods are safe to call from several threads and processes at once: trial numbers
          within an experiment are unique and without gaps.
        * The store never executes stored data: everything is JSON, nothing is unpickled.
        * A store refuses to open a file or database that is not a nasforge store, or one
          written by a newer schema, instead of writing to it.

    Raises (every method):
        StoreError: When the backend cannot be read or written (damaged file, lost server).
    """

    @abstractmethod
    def get_or_create_experiment(
        self, name: str, config: Mapping[str, Any]
    ) -> tuple[ExperimentRecord, bool]:
        """The experiment called ``name``, created with ``config`` if absent.

        Returns:
            The record and whether it was created by this call.
        """

    @abstractmethod
    def get_experiment(self, name: str) -> ExperimentRecord:
        """The experiment called ``name``.

        Raises:
            ConfigError: If there is none; the message lists the stored names.
        """

    @abstractmethod
    def list_experiments(self) -> list[ExperimentRecord]:
        """All experiments, oldest first."""

    @abstractmethod
    def add_trial(
        self,
        experiment_id: int,
        arch: Architecture,
        key: str,
        result: Result,
        *,
        started_at: float,
        finished_at: float,
    ) -> TrialRecord:
        """Store a finished trial under the next free trial number, durably."""

    @abstractmethod
    def trials(
        self, experiment_id: int, *, status: Status | None = None, after: int | None = None
    ) -> list[TrialRecord]:
        """Trials of an experiment by number, optionally only those with ``status`` and only
        those numbered above ``after`` (what a poller has not seen yet)."""

    @abstractmethod
    def count_trials(self, experiment_id: int) -> int:
        """Number of stored trials of an experiment."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The experiment store contract and its frozen records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nasforge.architecture import Architecture
from nasforge.config import StoredSearch
from nasforge.constraint import Constraint
from nasforge.objective import Objective
from nasforge.result import Result, Status

__all__ = [
    "STALE_PREFIX",
    "DamagedRow",
    "ExperimentRecord",
    "Limit",
    "PhaseRecord",
    "Reservation",
    "Store",
    "TrialRecord",
]

STALE_PREFIX = "stale: "
"""Start of the reason stored with a trial lost with its worker (FAILED, stale)."""


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    """A stored experiment: its unique name and the configuration it was created with.

    ``config`` is the stored JSON; :attr:`search` reads it as a typed
    :class:`~nasforge.config.StoredSearch` (space, evaluator, strategy, objectives,
    constraints, data source), parsed when asked for.
    """

    id: int
    name: str
    config: Mapping[str, Any]
    created_at: float

    @property
    def search(self) -> StoredSearch:
        """The stored configuration, typed.

        Raises:
            ConfigError: If a stored objective or constraint does not parse.
        """
        return StoredSearch.from_json(self.config)

    @property
    def objective(self) -> Objective:
        """The objective that ranks the experiment's trials as "best"."""
        return self.search.objective

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """All objectives, in order (one for a single-objective search)."""
        return self.search.objectives

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        """The hard constraints (none by default)."""
        return self.search.constraints


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One stored evaluation of one architecture.

    ``attempt`` counts the evaluations of the trial that started: a retry raises it, and a
    trial lost before its evaluation started (its worker could not start) gives its attempt
    back, so it stays 0 when no evaluation of it has started yet.
    """

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
    attempt: int = 1
    lost: bool = False
    owner: str | None = None
    heartbeat_at: float | None = None
    device: str | None = None
    device_name: str | None = None

    @property
    def final(self) -> bool:
        """Whether the trial's outcome is settled: not RUNNING, not lost awaiting a retry.

        A lost trial (FAILED, stale) counts as settled only for readers; the search may still
        retry it (:meth:`Store.claim_retry`).
        """
        return self.status is not Status.RUNNING

    @property
    def state(self) -> str:
        """The status as shown to people: ``FAILED (stale)`` for a trial lost with its worker."""
        return f"{self.status.value} (stale)" if self.lost else self.status.value

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
            lost=self.lost,
            device=self.device,
            device_name=self.device_name,
        )


@dataclass(frozen=True, slots=True)
class DamagedRow:
    """A stored row that cannot be read: edited by hand, written by a broken tool, or damaged
    on disk. Readers skip it (with a :class:`~nasforge.errors.DamagedRowWarning`) and nothing
    rewrites it; ``nasforge doctor`` lists it.

    ``number`` is the trial's number, or ``None`` for an experiment's own row.
    """

    experiment: str
    number: int | None
    column: str
    detail: str

    def __str__(self) -> str:
        what = (
            f"experiment {self.experiment!r}"
            if self.number is None
            else f"trial {self.number} of experiment {self.experiment!r}"
        )
        return f"{what} is damaged: column {self.column} {self.detail}"


class Limit(StrEnum):
    """What :meth:`Store.reserve_trial` counts against a budget."""

    TRIALS = "trials"  # stored trials (a retry is the same trial)
    ARCHS = "archs"  # distinct architectures


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer of :meth:`Store.reserve_trial`.

    Exactly one of: ``trial`` (a new RUNNING trial owned by the caller), ``existing`` (the
    architecture is stored already, finished or running elsewhere), or ``spent`` (the budget is
    used up by the trials stored or running).
    """

    trial: TrialRecord | None = None
    existing: TrialRecord | None = None
    spent: bool = False


@dataclass(frozen=True, slots=True)
class PhaseRecord:
    """One stored record of a search's supernet phase (a one-shot strategy's epoch, its
    derived architectures, its checkpoint's epoch): plain JSON ``data``."""

    kind: str
    step: int
    data: dict[str, Any]
    at: float


class Store(ABC):
    """Durable storage of experiments and their trials.

    Contract:
        * A method that returns normally has committed its writes: a trial returned by
          :meth:`add_trial` survives the process being killed right after.
        * Records returned are frozen snapshots; changing the store does not change them.
        * Methods are safe to call from several threads and processes at once: trial numbers
          within an experiment are unique and without gaps, and two processes never reserve
          the same architecture (at the same fidelity) of one experiment.
        * A trial's life: :meth:`reserve_trial` stores it RUNNING, owned by one process, which
          sends :meth:`heartbeat` while it runs and ends it with :meth:`finish_trial`. A trial
          whose owner died (:meth:`mark_stale`) becomes FAILED (stale); :meth:`claim_retry`
          runs it again under the same number. A finish from a former owner changes nothing.
        * The store never executes stored data: everything is JSON, nothing is unpickled.
        * A store refuses to open a file or database that is not a nasforge store, or one
          written by a newer schema, instead of writing to it.
        * A row that cannot be read (:class:`DamagedRow`) is skipped by every reader with a
          :class:`~nasforge.errors.DamagedRowWarning` and never rewritten; it keeps its trial
          number and counts against a budget. :meth:`damaged` lists such rows.

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
    def reserve_trial(
        self,
        experiment_id: int,
        arch: Architecture,
        key: str,
        *,
        fidelity: int | None,
        owner: str,
        dedup_fidelity: bool,
        limit: tuple[Limit, int] | None = None,
    ) -> Reservation:
        """Atomically store ``arch`` as a new RUNNING trial owned by ``owner``, unless it is
        stored already or the budget is spent.

        Args:
            fidelity: Stored with the trial (the budget its evaluation is asked for).
            dedup_fidelity: Whether ``fidelity`` is part of the identity: with True, the same
                architecture at another fidelity is a new trial; with False, any stored trial of
                ``key`` is a duplicate.
            limit: At most this many trials (or distinct architectures) in the experiment,
                counting those stored and those running anywhere.
        """

    @abstractmethod
    def finish_trial(
        self, trial: TrialRecord, result: Result, *, finished_at: float
    ) -> TrialRecord | None:
        """Store the outcome of the RUNNING ``trial`` (as reserved or claimed by the caller).

        Returns:
            The finished record, or ``None`` when the trial is no longer the caller's (it was
            marked stale and perhaps retried elsewhere): the late result is dropped.
        """

    @abstractmethod
    def heartbeat(self, trials: list[TrialRecord], *, now: float) -> set[int]:
        """Record that the caller still runs ``trials``; returns the ids it still owns."""

    @abstractmethod
    def mark_stale(
        self,
        experiment_id: int,
        trial: TrialRecord,
        reason: str,
        *,
        now: float,
        charge: bool = True,
    ) -> TrialRecord | None:
        """Mark the RUNNING ``trial`` (as read) FAILED (stale) with ``reason``; ``None`` if it
        changed since it was read (it finished, or another process got there first).

        Args:
            charge: Whether the lost attempt counts against the trial's retries (the trial may
                have killed its worker); with False its attempt is given back, as for a trial
                that never started (its search process was stopped or died under it).
        """

    @abstractmethod
    def claim_retry(
        self, experiment_id: int, *, owner: str, max_retries: int, now: float
    ) -> TrialRecord | None:
        """Take the oldest FAILED (stale) trial with retries left and make it RUNNING again,
        owned by ``owner`` with its attempt counter raised; ``None`` if there is none."""

    @abstractmethod
    def trials(
        self,
        experiment_id: int,
        *,
        status: Status | None = None,
        after: int | None = None,
        numbers: Collection[int] | None = None,
    ) -> list[TrialRecord]:
        """Trials of an experiment by number, optionally only those with ``status``, only
        those numbered above ``after`` (what a poller has not seen yet) and only those in
        ``numbers`` (trials a poller saw running, to read again)."""

    @abstractmethod
    def put_phase(self, experiment_id: int, kind: str, step: int, data: Mapping[str, Any]) -> None:
        """Store record ``step`` of ``kind`` of an experiment's supernet phase, replacing one
        stored before under the same step (a phase resumed from a checkpoint runs its later
        epochs again)."""

    @abstractmethod
    def phase(self, experiment_id: int, kind: str) -> list[PhaseRecord]:
        """The records of ``kind`` of an experiment's supernet phase, by step; damaged ones
        are skipped with a warning."""

    @abstractmethod
    def damaged(self) -> list[DamagedRow]:
        """Every row of the store that readers skip as damaged, experiments first."""

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

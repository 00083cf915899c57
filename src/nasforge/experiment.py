"""The search loop: ask → dedup by canonical key → evaluate → store → tell."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from typing import Any

from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, InlineExecutor
from nasforge.objective import Objective
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace
from nasforge.store.base import ExperimentRecord, Store, TrialRecord
from nasforge.strategies.base import Strategy

__all__ = [
    "SOURCE_KEY",
    "Experiment",
    "Progress",
    "RunSummary",
    "best_trial",
    "check_metrics",
    "dedup_id",
    "is_better",
    "trial_score",
]

SOURCE_KEY = "source"
"""Key of the experiment config that records the data source; not compared on resume."""

MAX_DUPLICATES_IN_A_ROW = 2_000
"""A strategy proposing only stored architectures this many times in a row has converged."""

MAX_INFEASIBLE_IN_A_ROW = 2_000
"""Proposals in a row that violate a constraint before evaluation before the search gives up."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Passed to the progress callback after every stored trial."""

    trials: int
    archs: int
    budget: Budget
    elapsed: float
    objective: Objective
    best: TrialRecord | None
    last: TrialRecord

    @property
    def best_value(self) -> float | None:
        """The best trial's objective value (a metric or a cost), if there is a best trial."""
        if self.best is None:
            return None
        return self.objective.value_in(self.best.metrics, self.best.costs)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one call of :meth:`Experiment.run` did."""

    experiment: ExperimentRecord
    resumed_trials: int
    new_trials: int
    archs: int
    duplicates: int
    elapsed: float
    stop_reason: str
    best: TrialRecord | None = None
    new_trial_numbers: list[int] = field(default_factory=list)
    skipped_infeasible: int = 0


def trial_score(trial: TrialRecord | None, objective: Objective) -> float:
    """``trial``'s objective (a metric or a cost) oriented so that larger is better.

    -inf unless the trial is COMPLETE with a finite value.
    """
    if trial is None:
        return -math.inf
    complete = trial.status is Status.COMPLETE
    return objective.score_of(complete, trial.metrics, trial.costs)


def _rank(trial: TrialRecord | None, objective: Objective) -> tuple[int, float]:
    """Sort key of the incumbent: first the fidelity, then the objective."""
    score = trial_score(trial, objective)
    if trial is None or score == -math.inf:
        return (-1, -math.inf)
    return (trial.fidelity if trial.fidelity is not None else 0, score)


def is_better(trial: TrialRecord, than: TrialRecord | None, objective: Objective) -> bool:
    """Whether ``trial`` beats ``than`` as the search's best.

    Only COMPLETE trials with a finite objective qualify. Results at different fidelities are
    not comparable (a 5-epoch accuracy says little against a 200-epoch one), so a trial at a
    higher fidelity beats any at a lower one; at equal fidelity the objective decides.
    """
    return _rank(trial, objective) > _rank(than, objective)


def best_trial(trials: Iterable[TrialRecord], objective: Objective) -> TrialRecord | None:
    """The best COMPLETE trial (earliest on ties): best objective at the highest fidelity."""
    best: TrialRecord | None = None
    for trial in trials:
        if is_better(trial, best, objective):
            best = trial
    return best


def dedup_id(key: str, fidelity: int | None) -> str:
    """What the loop deduplicates on: the canonical key, with the fidelity when one is set."""
    return key if fidelity is None else f"{key}@{fidelity}"


class Experiment:
    """A named, resumable search.

    Creating an Experiment with a name already in the store resumes it: the stored trials
    are told to the (fresh) strategy in trial order, architectures already evaluated are never
    evaluated again, and the budget counts what is stored as spent. The configuration that
    identifies the search (space, evaluator, strategy and its options, seed, objective) must
    match the stored one.

    Args:
        name: Experiment name, unique in the store.
        space: The search space.
        evaluator: Scores architectures of ``space``.
        strategy: Proposes architectures; it is told every stored result.
        store: Where trials go, durably, before the strategy hears of them.
        objective: The objective that ranks trials as "best"; defaults to the strategy's
            (first) objective. A multi-objective search takes its objectives from the
            strategy (``strategy.objectives``) and stores them; its result is the Pareto front.
        constraints: Hard constraints. Those on costs the evaluator knows before evaluating
            (:meth:`Evaluator.known_costs`: size, FLOPs, table entries) skip a candidate
            without evaluating it (the strategy is told it is infeasible; nothing is stored);
            the others turn a COMPLETE result that violates them into an INFEASIBLE trial.
        config: Extra identifying settings to store with the experiment.
        source: Where the search's data came from (the task text and its options, or the
            benchmark), stored under ``config["source"]`` so that the model can be rebuilt
            later (export). Not identifying: a resume may give other paths.
    """

    def __init__(
        self,
        *,
        name: str,
        space: SearchSpace,
        evaluator: Evaluator,
        strategy: Strategy,
        store: Store,
        objective: Objective | None = None,
        constraints: Sequence[Constraint] = (),
        config: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> None:
        if evaluator.space_name != space.name:
            raise ConfigError(
                f"the evaluator scores space {evaluator.space_name!r} but the search space is "
                f"{space.name!r}"
            )
        self.name = name
        self.space = space
        self.evaluator = evaluator
        self.strategy = strategy
        self.store = store
        self.objective = objective or strategy.objective
        self.objectives = tuple(strategy.objectives)
        self.constraints = tuple(constraints)
        check_metrics(evaluator, self.objectives, self.constraints)
        self.config: dict[str, Any] = {
            "space": space.name,
            "evaluator": evaluator.describe(),
            "strategy": strategy.name,
            "strategy_options": strategy.options(),
            "seed": strategy.seed,
            "objective": str(self.objective),
            **(config or {}),
        }
        if len(self.objectives) > 1:
            self.config["objectives"] = [str(o) for o in self.objectives]
        if self.constraints:
            self.config["constraints"] = [str(c) for c in self.constraints]
        stored_config = {**self.config, SOURCE_KEY: dict(source)} if source else self.config
        self.record, self.created = store.get_or_create_experiment(name, stored_config)
        self._check_config(self.record)

    def _check_config(self, record: ExperimentRecord) -> None:
        stored = {k: v for k, v in record.config.items() if k != SOURCE_KEY}
        keys = list(self.config) + [k for k in stored if k not in self.config]
        diffs = [
            f"{key}={stored.get(key)!r} (this run: {self.config.get(key)!r})"
            for key in keys
            if stored.get(key) != self.config.get(key)
        ]
        if diffs:
            raise ConfigError(
                f"experiment {self.name!r} exists with other settings: {'; '.join(diffs)}. "
                "Resume it with the same settings or choose another --name"
            )

    def run(
        self,
        budget: Budget,
        *,
        callback: Callable[[Progress], None] | None = None,
        executor: Executor | None = None,
        fidelity: int | None = None,
    ) -> RunSummary:
        """Search until ``budget`` is spent (counting stored trials), then return a summary.

        Args:
            budget: Distinct architectures, trials or seconds; stored trials count as spent.
            callback: Called after each trial is stored (the trial is durable by then).
            executor: Where evaluations run; in this process, one at a time, by default.
                Up to ``executor.capacity`` trials are in flight at once.
            fidelity: Budget passed to every evaluation (epochs for training evaluators).
        """
        start = time.monotonic()
        stored = self.store.trials(self.record.id)
        done: dict[str, Result] = {}  # by dedup_id: key, or key@fidelity
        archs: set[str] = set()  # distinct canonical keys evaluated or in flight
        for trial in stored:  # replay history into the fresh strategy
            visible = trial.to_result().visible()
            done.setdefault(trial.key, visible)
            if trial.fidelity is not None:
                done.setdefault(dedup_id(trial.key, trial.fidelity), visible)
            archs.add(trial.key)
            self.strategy.tell(trial.arch, visible)
        state = _LoopState(n_trials=len(stored), best=best_trial(stored, self.objective))
        in_flight: dict[Future[Result], _Running] = {}
        own_executor = executor is None
        executor = executor or InlineExecutor(self.evaluator)

        def spent() -> bool:
            if budget.unit is BudgetUnit.ARCHS:
                return len(archs) >= budget.amount
            if budget.unit is BudgetUnit.TRIALS:
                return state.n_trials + len(in_flight) >= budget.amount
            return time.monotonic() - start >= budget.amount

        try:
            while True:
                while len(in_flight) < executor.capacity and not state.stop_reason:
                    if spent():
                        state.stop_reason = "budget spent"
                        break
                    self._submit_next(executor, done, archs, in_flight, state, fidelity)
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: in_flight[f].started):
                    running = in_flight.pop(future)
                    trial = self.store.add_trial(
                        self.record.id,
                        running.arch,
                        running.key,
                        self._enforce(running.with_known(future.result())),
                        started_at=running.started,
                        finished_at=time.time(),
                    )
                    state.record(trial, self.objective)
                    visible = trial.to_result().visible()
                    done[running.dedup] = visible
                    self.strategy.tell(running.arch, visible)
                    if callback is not None:
                        elapsed = time.monotonic() - start
                        callback(
                            Progress(
                                state.n_trials,
                                len(archs),
                                budget,
                                elapsed,
                                self.objective,
                                state.best,
                                trial,
                            )
                        )
        finally:
            if own_executor:
                executor.close()
        return RunSummary(
            experiment=self.record,
            resumed_trials=len(stored),
            new_trials=len(state.new_numbers),
            archs=len(archs),
            duplicates=state.duplicates,
            elapsed=time.monotonic() - start,
            stop_reason=state.stop_reason or "budget spent",
            best=state.best,
            new_trial_numbers=state.new_numbers,
            skipped_infeasible=state.skipped,
        )

    def _enforce(self, result: Result) -> Result:
        """``result`` as it is stored: a COMPLETE one with a NaN or infinite metric becomes
        FAILED, and one that violates a constraint INFEASIBLE, each with the reason."""
        if result.status is not Status.COMPLETE:
            return result
        broken = {k: v for k, v in result.metrics.items() if not math.isfinite(v)}
        if broken:
            shown = ", ".join(f"{k}={v}" for k, v in broken.items())
            return replace(result, status=Status.FAILED, reason=f"non-finite metric: {shown}")
        for constraint in self.constraints:
            reason = constraint.violation(result.metrics, result.costs)
            if reason is not None:
                return replace(result, status=Status.INFEASIBLE, reason=reason)
        return result

    def _known_costs(self, arch: Architecture) -> dict[str, float]:
        """The constrained costs of ``arch`` the evaluator knows before evaluating it."""
        if not self.constraints:
            return {}
        try:
            return self.evaluator.known_costs(arch, {c.metric for c in self.constraints})
        except ConfigError:
            raise
        except Exception:  # e.g. a model that cannot be built: its evaluation will say why
            return {}

    def _violation_before(self, known: Mapping[str, float]) -> Result | None:
        """An INFEASIBLE result if ``known`` costs violate a constraint."""
        for constraint in self.constraints:
            if constraint.metric in known:
                reason = constraint.violation({}, known)
                if reason is not None:
                    return Result(
                        status=Status.INFEASIBLE, costs=known, reason=f"{reason}, not evaluated"
                    )
        return None

    def _submit_next(
        self,
        executor: Executor,
        done: dict[str, Result],
        archs: set[str],
        in_flight: dict[Future[Result], _Running],
        state: _LoopState,
        fidelity: int | None,
    ) -> None:
        """Ask for one architecture and submit it, or answer it from the store."""
        proposals = self.strategy.ask(1)
        if not proposals:
            state.stop_reason = "the strategy has nothing left to propose (space exhausted)"
            return
        arch = proposals[0]
        self.space.validate(arch)
        key = self.space.canonical_key(arch)
        asked = self.strategy.fidelity_for(arch)
        dedup = dedup_id(key, asked)
        known = done.get(dedup)
        running = any(r.dedup == dedup for r in in_flight.values())
        if known is not None or running:
            if known is not None:  # already evaluated: answer from the store, spend nothing
                self.strategy.tell(arch, known)
            state.duplicates += 1
            state.in_a_row += 1
            if state.in_a_row >= MAX_DUPLICATES_IN_A_ROW:
                state.stop_reason = (
                    f"the strategy proposed only evaluated architectures "
                    f"{MAX_DUPLICATES_IN_A_ROW} times in a row (converged)"
                )
            return
        state.in_a_row = 0
        costs = self._known_costs(arch)
        infeasible = self._violation_before(costs)
        if infeasible is not None:  # skipped: not evaluated, not stored, no budget spent
            done[dedup] = infeasible
            self.strategy.tell(arch, infeasible)
            state.skipped += 1
            state.infeasible_in_a_row += 1
            if state.infeasible_in_a_row >= MAX_INFEASIBLE_IN_A_ROW:
                state.stop_reason = (
                    f"the last {MAX_INFEASIBLE_IN_A_ROW} proposals all violated the constraints "
                    f"({', '.join(map(str, self.constraints))}) before evaluation; relax them"
                )
            return
        state.infeasible_in_a_row = 0
        archs.add(key)
        future = executor.submit(arch, asked if asked is not None else fidelity)
        in_flight[future] = _Running(arch, key, dedup, time.time(), costs)


@dataclass(frozen=True, slots=True)
class _Running:
    """A submitted evaluation."""

    arch: Architecture
    key: str
    dedup: str
    started: float
    known: Mapping[str, float] = field(default_factory=dict)

    def with_known(self, result: Result) -> Result:
        """``result`` with the costs known before evaluation (e.g. a predicted latency)."""
        missing = {k: v for k, v in self.known.items() if k not in result.costs}
        return replace(result, costs={**missing, **result.costs}) if missing else result


@dataclass
class _LoopState:
    """Counters of one run of the loop."""

    n_trials: int
    best: TrialRecord | None
    duplicates: int = 0
    in_a_row: int = 0
    skipped: int = 0
    infeasible_in_a_row: int = 0
    stop_reason: str = ""
    new_numbers: list[int] = field(default_factory=list)

    def record(self, trial: TrialRecord, objective: Objective) -> None:
        self.n_trials += 1
        self.new_numbers.append(trial.number)
        if is_better(trial, self.best, objective):
            self.best = trial


def check_metrics(
    evaluator: Evaluator, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> None:
    """Refuse objectives and constraints on metrics the evaluator does not report.

    Raises:
        ConfigError: Naming the unknown metric and listing the reported ones.
    """
    reported = tuple(getattr(evaluator, "metrics", ()))
    if not reported:
        return
    named = [("objective", o.metric) for o in objectives]
    named += [("constraint", c.metric) for c in constraints]
    for what, metric in named:
        if metric not in reported:
            raise ConfigError(
                f"{what} on unknown metric {metric!r}: this evaluator reports {', '.join(reported)}"
            )

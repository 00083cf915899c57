"""The search loop: ask → dedup by canonical key → reserve in the store → evaluate → store →
tell, with heartbeats for the trials in flight and retries of those lost with their worker."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError, NasforgeError, WorkersUnavailable
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, InlineExecutor, refuse_while_a_worker_starts
from nasforge.heartbeat import Heartbeat, Owner, owner_is_dead
from nasforge.objective import Objective
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace
from nasforge.store.base import ExperimentRecord, Limit, Store, TrialRecord
from nasforge.strategies.base import Strategy

if TYPE_CHECKING:
    from nasforge.artifacts import ArtifactStore

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

DEFAULT_MAX_RETRIES = 2
"""Times a trial lost with its worker is run again by default."""

HEARTBEAT_INTERVAL_S = 10.0
"""Seconds between heartbeats of a RUNNING trial by default."""

POLL_INTERVAL_S = 2.0
"""Seconds between looks at the store for other processes' trials and stale ones."""

log = logging.getLogger(__name__)


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
    retried: int = 0
    late_dropped: int = 0


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


def _replaces_best(trial: TrialRecord, best: TrialRecord | None, objective: Objective) -> bool:
    """Whether ``trial`` is the best instead of ``best``: better, or as good and numbered lower.

    Trials finish out of order with several workers; breaking ties by number makes the best
    the same whichever order the results came in.
    """
    if best is None:
        return is_better(trial, best, objective)
    return (_rank(trial, objective), -trial.number) > (_rank(best, objective), -best.number)


def best_trial(trials: Iterable[TrialRecord], objective: Objective) -> TrialRecord | None:
    """The best COMPLETE trial (lowest number on ties): best objective at the highest fidelity."""
    best: TrialRecord | None = None
    for trial in trials:
        if _replaces_best(trial, best, objective):
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
        refuse_while_a_worker_starts()
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
        max_retries: int = DEFAULT_MAX_RETRIES,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_S,
        stale_after: float | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> RunSummary:
        """Search until ``budget`` is spent (counting stored trials), then return a summary.

        Several processes (on one machine or many, sharing a PostgreSQL store) may run the same
        experiment at once: each reserves a trial in the store before evaluating it, so no
        architecture is evaluated twice and the budget is shared; each hears the others'
        results.

        Args:
            budget: Distinct architectures, trials or seconds; stored trials count as spent.
            callback: Called after each trial is stored (the trial is durable by then).
            executor: Where evaluations run; in this process, one at a time, by default.
                Up to ``executor.capacity`` trials are in flight at once.
            fidelity: Budget passed to every evaluation (epochs for training evaluators).
            max_retries: Times a trial lost with its worker (the worker process or machine
                died, or the search running it was killed) is run again. Failures of the
                candidate itself (an exception, NaN, a timeout) are never retried.
            heartbeat_interval: Seconds between heartbeats of the trials this run holds.
            stale_after: Seconds without a heartbeat after which another process declares a
                RUNNING trial stale (default: six heartbeats). A trial whose process died on
                this machine is stale at once.
            artifacts: Where the weights a result carries are saved (``trial-N.safetensors``).
        """
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not heartbeat_interval > 0:
            raise ConfigError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval}")
        start = time.monotonic()
        owner = Owner.new()
        grace = stale_after if stale_after is not None else 6 * heartbeat_interval
        heartbeat = Heartbeat(self.store, heartbeat_interval)
        in_flight: dict[Future[Result], _Running] = {}
        own_executor = executor is None
        executor = executor or InlineExecutor(self.evaluator)
        view = _View(max_retries)
        try:
            self._reap(grace, heartbeat)
            stored = self.store.trials(self.record.id)
            state = _LoopState()
            for trial in stored:  # replay history into the fresh strategy
                self._learn(trial, view, state)
            state.retry_check = any(view.retryable(t) for t in stored)
            limit = _limit(budget)
            last_poll = time.monotonic()

            def spent() -> bool:
                if budget.unit is BudgetUnit.ARCHS:
                    return len(view.keys) >= budget.amount
                if budget.unit is BudgetUnit.TRIALS:
                    return len(view.numbers) >= budget.amount
                return time.monotonic() - start >= budget.amount

            while True:
                while len(in_flight) < executor.capacity:
                    if state.retry_check:
                        retry = self.store.claim_retry(
                            self.record.id, owner=owner.id, max_retries=max_retries, now=time.time()
                        )
                        if retry is not None:
                            self._start(executor, retry, in_flight, heartbeat, view, fidelity)
                            continue
                        state.retry_check = False
                    if state.stop_reason:
                        break
                    if spent():
                        state.stop_reason = "budget spent"
                        break
                    self._submit_next(
                        executor, view, in_flight, state, fidelity, owner, heartbeat, limit
                    )
                if not in_flight:
                    break
                finished, _ = wait(in_flight, timeout=POLL_INTERVAL_S, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: in_flight[f].trial.number):
                    running = in_flight.pop(future)
                    heartbeat.remove(running.trial)
                    outcome = self._finish(running, future.result(), artifacts, state)
                    if outcome is None:
                        continue
                    self._learn(outcome, view, state)
                    if callback is not None and not view.retryable(outcome):
                        elapsed = time.monotonic() - start
                        callback(
                            Progress(
                                len(view.numbers),
                                len(view.keys),
                                budget,
                                elapsed,
                                self.objective,
                                state.best,
                                outcome,
                            )
                        )
                if time.monotonic() - last_poll >= POLL_INTERVAL_S:
                    last_poll = time.monotonic()
                    if self._reap(grace, heartbeat):
                        state.retry_check = True
                    for trial in self.store.trials(self.record.id, after=view.watermark):
                        if trial.id not in view.told:
                            self._learn(trial, view, state)
                            state.retry_check |= view.retryable(trial)
        except WorkersUnavailable as exc:  # the executor runs no more: nothing in it is charged
            not_run = Result.failed(f"not run: {exc}", lost=True, started=False)
            for running in in_flight.values():
                heartbeat.remove(running.trial)
                with contextlib.suppress(Exception):
                    self.store.finish_trial(running.trial, not_run, finished_at=time.time())
            in_flight.clear()
            raise
        finally:
            heartbeat.stop()
            now = time.time()
            for running in in_flight.values():  # interrupted: a resume retries these
                with contextlib.suppress(Exception):
                    self.store.mark_stale(
                        self.record.id,
                        running.trial,
                        "the search stopped before the trial finished",
                        now=now,
                    )
            owner.release()
            if own_executor:
                executor.close()
        return RunSummary(
            experiment=self.record,
            resumed_trials=len(stored),
            new_trials=len(state.new_numbers),
            archs=len(view.keys),
            duplicates=state.duplicates,
            elapsed=time.monotonic() - start,
            stop_reason=state.stop_reason or "budget spent",
            best=state.best,
            new_trial_numbers=state.new_numbers,
            skipped_infeasible=state.skipped,
            retried=state.retried,
            late_dropped=state.late,
        )

    def _start(
        self,
        executor: Executor,
        trial: TrialRecord,
        in_flight: dict[Future[Result], _Running],
        heartbeat: Heartbeat,
        view: _View,
        fidelity: int | None,
        known: Mapping[str, float] | None = None,
        asked: int | None = None,
    ) -> None:
        """Submit the RUNNING ``trial`` (reserved or claimed by this run)."""
        view.hold(trial)
        heartbeat.add(trial)
        budget = trial.fidelity if trial.fidelity is not None else fidelity
        if asked is not None:
            budget = asked
        try:
            future = executor.submit(trial.arch, budget)
        except BaseException as exc:  # misuse (ConfigError) or an interrupt: not left RUNNING
            heartbeat.remove(trial)
            reason = f"{type(exc).__name__}: {exc}".strip()
            # an interrupt, or workers that cannot start: a resume runs it again, and this
            # attempt, which never started, is not charged
            lost = not isinstance(exc, NasforgeError) or isinstance(exc, WorkersUnavailable)
            with contextlib.suppress(Exception):
                self.store.finish_trial(
                    trial,
                    Result.failed(reason, lost=lost, started=False),
                    finished_at=time.time(),
                )
            raise
        in_flight[future] = _Running(trial, dedup_id(trial.key, asked), known or {})

    def _finish(
        self,
        running: _Running,
        result: Result,
        artifacts: ArtifactStore | None,
        state: _LoopState,
    ) -> TrialRecord | None:
        """Store the outcome of a trial this run held; ``None`` if it is no longer ours."""
        result = self._enforce(running.with_known(result))
        if result.weights is not None:
            if artifacts is not None and result.status is Status.COMPLETE:
                artifacts.save_weights(running.trial.number, result.weights)
            result = replace(result, weights=None)
        trial = self.store.finish_trial(running.trial, result, finished_at=time.time())
        if trial is None:
            state.late += 1
            log.warning(
                "trial %d finished after another process declared it stale; its result is "
                "dropped (the trial is retried or settled there)",
                running.trial.number,
            )
            return None
        if trial.lost:
            state.retry_check = True
            if result.started:
                log.warning(
                    "trial %d was lost (%s) in attempt %d", trial.number, trial.error, trial.attempt
                )
            else:
                log.warning("trial %d was lost before it started (%s)", trial.number, trial.error)
        if trial.attempt > 1 and not trial.lost:
            state.retried += 1
        return trial

    def _learn(self, trial: TrialRecord, view: _View, state: _LoopState) -> None:
        """Take in a stored trial: count it, and tell the strategy once it is settled."""
        view.see(trial)
        if not trial.final or view.retryable(trial) or trial.id in view.told:
            return
        view.told.add(trial.id)
        visible = trial.to_result().visible()
        view.done.setdefault(trial.key, visible)
        if trial.fidelity is not None:
            view.done.setdefault(dedup_id(trial.key, trial.fidelity), visible)
        view.settle(trial)
        state.record(trial, self.objective, mine=trial.id in view.mine)
        self.strategy.tell(trial.arch, visible)

    def _reap(self, grace: float, heartbeat: Heartbeat) -> int:
        """Declare stale the RUNNING trials of dead owners or without a recent heartbeat."""
        now = time.time()
        marked = 0
        for trial in self.store.trials(self.record.id, status=Status.RUNNING):
            if heartbeat.holds(trial):
                continue
            if owner_is_dead(trial.owner):
                reason = f"its search process ({Owner(trial.owner or '').describe()}) died"
            else:
                beat = trial.heartbeat_at or trial.started_at or 0.0
                if now - beat < grace:
                    continue
                reason = f"no heartbeat for {now - beat:.0f} s (its process or machine was lost)"
            if self.store.mark_stale(self.record.id, trial, reason, now=now) is not None:
                marked += 1
                log.warning("trial %d is stale: %s", trial.number, reason)
        return marked

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
        view: _View,
        in_flight: dict[Future[Result], _Running],
        state: _LoopState,
        fidelity: int | None,
        owner: Owner,
        heartbeat: Heartbeat,
        limit: tuple[Limit, int] | None,
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
        if self._duplicate(arch, dedup, view, state):
            return
        costs = self._known_costs(arch)
        infeasible = self._violation_before(costs)
        if infeasible is not None:  # skipped: not evaluated, not stored, no budget spent
            view.done[dedup] = infeasible
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
        reservation = self.store.reserve_trial(
            self.record.id,
            arch,
            key,
            fidelity=asked if asked is not None else fidelity,
            owner=owner.id,
            dedup_fidelity=asked is not None,
            limit=limit,
        )
        if reservation.spent:
            state.stop_reason = "budget spent"
            return
        if reservation.existing is not None:  # another process stored or runs it
            self._learn(reservation.existing, view, state)
            self._duplicate(arch, dedup, view, state)
            return
        assert reservation.trial is not None
        self._start(executor, reservation.trial, in_flight, heartbeat, view, fidelity, costs, asked)

    def _duplicate(self, arch: Architecture, dedup: str, view: _View, state: _LoopState) -> bool:
        """Whether ``dedup`` is stored or running already; if stored, the strategy is told."""
        known = view.done.get(dedup)
        if known is None and dedup not in view.pending:
            state.in_a_row = 0
            return False
        if known is not None:  # already evaluated: answer from the store, spend nothing
            self.strategy.tell(arch, known)
        state.duplicates += 1
        state.in_a_row += 1
        if state.in_a_row >= MAX_DUPLICATES_IN_A_ROW:
            state.stop_reason = (
                f"the strategy proposed only evaluated architectures "
                f"{MAX_DUPLICATES_IN_A_ROW} times in a row (converged)"
            )
        return True


def _limit(budget: Budget) -> tuple[Limit, int] | None:
    """The budget as the store enforces it across processes (time is each process's own)."""
    if budget.unit is BudgetUnit.TRIALS:
        return (Limit.TRIALS, int(budget.amount))
    if budget.unit is BudgetUnit.ARCHS:
        return (Limit.ARCHS, int(budget.amount))
    return None


@dataclass(frozen=True, slots=True)
class _Running:
    """A trial this run submitted."""

    trial: TrialRecord
    dedup: str
    known: Mapping[str, float] = field(default_factory=dict)

    def with_known(self, result: Result) -> Result:
        """``result`` with the costs known before evaluation (e.g. a predicted latency)."""
        missing = {k: v for k, v in self.known.items() if k not in result.costs}
        return replace(result, costs={**missing, **result.costs}) if missing else result


class _View:
    """What this run knows of the experiment's stored trials (its own and other processes')."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries
        self.numbers: set[int] = set()  # every stored trial seen
        self.keys: set[str] = set()  # distinct architectures stored or running
        self.done: dict[str, Result] = {}  # settled results by dedup id: key, or key@fidelity
        self.pending: set[str] = set()  # dedup ids running (here or elsewhere) or to retry
        self.told: set[int] = set()  # ids of trials the strategy has heard of
        self.mine: set[int] = set()  # ids of trials this run held
        self.settled: set[int] = set()  # numbers of settled trials
        self.watermark = -1  # every trial numbered up to this one is settled and seen

    def retryable(self, trial: TrialRecord) -> bool:
        """A trial lost with its worker that may still be run again."""
        return trial.lost and trial.attempt <= self.max_retries

    def see(self, trial: TrialRecord) -> None:
        self.numbers.add(trial.number)
        self.keys.add(trial.key)
        if not trial.final or self.retryable(trial):
            self.pending.update(self._ids(trial))

    def hold(self, trial: TrialRecord) -> None:
        self.mine.add(trial.id)
        self.see(trial)

    def settle(self, trial: TrialRecord) -> None:
        self.pending.difference_update(self._ids(trial))
        self.settled.add(trial.number)
        while self.watermark + 1 in self.settled:
            self.watermark += 1

    @staticmethod
    def _ids(trial: TrialRecord) -> tuple[str, ...]:
        if trial.fidelity is None:
            return (trial.key,)
        return (trial.key, dedup_id(trial.key, trial.fidelity))


@dataclass
class _LoopState:
    """Counters of one run of the loop."""

    best: TrialRecord | None = None
    duplicates: int = 0
    in_a_row: int = 0
    skipped: int = 0
    infeasible_in_a_row: int = 0
    stop_reason: str = ""
    new_numbers: list[int] = field(default_factory=list)
    retry_check: bool = False
    retried: int = 0
    late: int = 0

    def record(self, trial: TrialRecord, objective: Objective, *, mine: bool) -> None:
        if mine:
            self.new_numbers.append(trial.number)
        if _replaces_best(trial, self.best, objective):
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

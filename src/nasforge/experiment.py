"""The search loop: ask → dedup by canonical key → reserve in the store → evaluate → store →
tell, with heartbeats for the trials in flight and retries of those lost with their worker."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.config import DEFAULT_MAX_RETRIES, StoredSearch
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError, DamagedRowWarning, NasforgeError, WorkersUnavailable
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, InlineExecutor, refuse_while_a_worker_starts
from nasforge.heartbeat import Heartbeat, Owner, owner_is_dead
from nasforge.objective import Objective, replaces_best
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace, foreign_arch
from nasforge.store.base import ExperimentRecord, Limit, Store, TrialRecord
from nasforge.strategies.base import Strategy

if TYPE_CHECKING:
    from nasforge.artifacts import ArtifactStore
    from nasforge.oneshot import PhaseProgress

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "Experiment",
    "Progress",
    "RunSummary",
    "check_metrics",
    "dedup_id",
]

MAX_DUPLICATES_IN_A_ROW = 2_000
"""A strategy proposing only stored architectures this many times in a row has converged."""

MAX_INFEASIBLE_IN_A_ROW = 2_000
"""Proposals in a row that violate a constraint before evaluation before the search gives up."""

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
        if getattr(strategy, "one_shot", False):
            strategy.attach(evaluator)  # type: ignore[attr-defined]
        self.name = name
        self.space = space
        self.evaluator = evaluator
        self.strategy = strategy
        self.store = store
        self.objective = objective or strategy.objective
        self.objectives = tuple(strategy.objectives)
        self.constraints = tuple(constraints)
        check_metrics(evaluator, self.objectives, self.constraints)
        self.search = StoredSearch(
            space=space.name,
            evaluator=evaluator.describe(),
            strategy=strategy.name,
            strategy_options=strategy.options(),
            seed=strategy.seed,
            objective=self.objective,
            objectives=self.objectives,
            constraints=self.constraints,
            source=dict(source) if source else None,
            extra=dict(config or {}),
        )
        self.config: dict[str, Any] = self.search.identity()
        self.record, self.created = store.get_or_create_experiment(name, self.search.to_json())
        diffs = self.search.differences(self.record.config)
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
        on_phase: Callable[[PhaseProgress], None] | None = None,
    ) -> RunSummary:
        """Search until ``budget`` is spent (counting stored trials), then return a summary.

        A one-shot strategy's supernet phase runs first (or resumes from its checkpoint, or
        is read back when it finished before); a time budget gives it at most its
        ``phase_share``.

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
                died while running it) is run again. A trial whose search process stopped or
                died is run again without limit from that cause, unless it ran inside that
                process (inline training), where it may have killed it. Failures of the
                candidate itself (an exception, NaN, a timeout) are never retried.
            heartbeat_interval: Seconds between heartbeats of the trials this run holds.
            stale_after: Seconds without a heartbeat after which another process declares a
                RUNNING trial stale (default: six heartbeats). A trial whose process died on
                this machine is stale at once.
            artifacts: Where the weights a result carries are saved (``trial-N.safetensors``).
                A one-shot phase keeps its checkpoint there too (or, when ``None``, in the
                experiment's artifact folder beside a file or server store).
            on_phase: Called after each stored epoch (or generation) of a supernet phase.
        """
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not heartbeat_interval > 0:
            raise ConfigError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval}")
        executor_ = executor or InlineExecutor(self.evaluator)
        run = _Run(
            budget=budget,
            executor=executor_,
            fidelity=fidelity,
            owner=Owner.new(trials_inside=not executor_.isolated and not self.evaluator.lookup),
            heartbeat=Heartbeat(self.store, heartbeat_interval),
            grace=stale_after if stale_after is not None else 6 * heartbeat_interval,
            view=_View(max_retries),
            max_retries=max_retries,
            callback=callback,
            artifacts=artifacts,
        )
        try:
            self._reap(run.grace, run.heartbeat)
            stored = self.store.trials(self.record.id)
            for trial in stored:  # replay history into the fresh strategy
                self._learn(trial, run.view, run.state)
            run.view.read(t.number for t in stored)
            run.state.retry_check = any(run.view.retryable(t) for t in stored)
            if getattr(self.strategy, "one_shot", False):
                self._supernet_phase(run, on_phase)
            run.last_poll = time.monotonic()
            while True:
                self._fill(run)
                if not run.in_flight:
                    break
                self._collect(run)
                self._poll(run)
        except WorkersUnavailable as exc:  # the executor runs no more: nothing in it is charged
            self._drop_not_run(run, exc)
            raise
        finally:
            self._hand_back(run)
            if executor is None:
                run.executor.close()
        return run.summary(self.record, resumed=len(stored))

    def _supernet_phase(self, run: _Run, report: Callable[[PhaseProgress], None] | None) -> None:
        from nasforge.artifacts import ArtifactStore, keeps_files
        from nasforge.oneshot import PhaseContext
        from nasforge.oneshot.phase import run_phase  # imports torch: only for one-shot

        checkpoints = run.artifacts
        target = getattr(self.store, "target", None)
        if checkpoints is None and target is not None and keeps_files(target):
            checkpoints = ArtifactStore.for_experiment(target, self.record.id)
        deadline = None
        if run.budget.unit is BudgetUnit.SECONDS:
            deadline = run.start + run.budget.amount * self.strategy.phase_share  # type: ignore[attr-defined]
        context = PhaseContext(self.store, self.record.id, checkpoints, deadline, report)
        self.strategy.take_phase(run_phase(self.strategy, context))  # type: ignore[attr-defined, arg-type]

    def _fill(self, run: _Run) -> None:
        """Submit trials (retries first) until the executor is full or nothing is left."""
        state = run.state
        while len(run.in_flight) < run.executor.capacity:
            if state.retry_check:
                retry = self.store.claim_retry(
                    self.record.id,
                    owner=run.owner.id,
                    max_retries=run.max_retries,
                    now=time.time(),
                )
                if retry is not None:
                    state.taken_up.add(retry.id)
                    self._start(run, retry)
                    continue
                state.retry_check = False
            if state.stop_reason:
                return
            if run.spent():
                state.stop_reason = "budget spent"
                return
            self._submit_next(run)

    def _collect(self, run: _Run) -> None:
        """Wait for trials in flight; store each that finished, tell the strategy, report."""
        finished, _ = wait(run.in_flight, timeout=POLL_INTERVAL_S, return_when=FIRST_COMPLETED)
        for future in sorted(finished, key=lambda f: run.in_flight[f].trial.number):
            running = run.in_flight.pop(future)
            run.heartbeat.remove(running.trial)
            outcome = self._finish(running, future.result(), run.artifacts, run.state)
            if outcome is None:
                continue
            self._learn(outcome, run.view, run.state)
            if run.callback is not None and not run.view.retryable(outcome):
                run.callback(
                    Progress(
                        len(run.view.numbers),
                        len(run.view.keys),
                        run.budget,
                        time.monotonic() - run.start,
                        self.objective,
                        run.state.best,
                        outcome,
                    )
                )

    def _poll(self, run: _Run) -> None:
        """Now and then: declare dead owners' trials stale, and hear other processes' trials."""
        if time.monotonic() - run.last_poll < POLL_INTERVAL_S:
            return
        run.last_poll = time.monotonic()
        if self._reap(run.grace, run.heartbeat):
            run.state.retry_check = True
        view = run.view
        # the trials stored since the last look, and those seen before that were not settled
        # then (running elsewhere, or lost and to be retried): never the whole history again
        fresh = self.store.trials(self.record.id, after=view.through)
        again = self.store.trials(self.record.id, numbers=view.open) if view.open else []
        for trial in sorted([*again, *fresh], key=lambda t: t.number):
            if trial.id not in view.told:
                self._learn(trial, view, run.state)
                run.state.retry_check |= view.retryable(trial)
        view.read(t.number for t in fresh)

    def _drop_not_run(self, run: _Run, exc: WorkersUnavailable) -> None:
        """Store the trials in flight as lost before they started: no attempt is charged."""
        not_run = Result.failed(f"not run: {exc}", lost=True, started=False)
        for running in run.in_flight.values():
            run.heartbeat.remove(running.trial)
            with contextlib.suppress(Exception):
                self.store.finish_trial(running.trial, not_run, finished_at=time.time())
        run.in_flight.clear()

    def _hand_back(self, run: _Run) -> None:
        """Stop the heartbeats; trials still in flight (an interrupt) are marked stale, so that
        a resume retries them; the owner is released."""
        run.heartbeat.stop()
        now = time.time()
        for running in run.in_flight.values():
            with contextlib.suppress(Exception):
                self.store.mark_stale(
                    self.record.id,
                    running.trial,
                    "the search stopped before the trial finished",
                    now=now,
                    charge=False,
                )
        run.owner.release()

    def _start(
        self,
        run: _Run,
        trial: TrialRecord,
        known: Mapping[str, float] | None = None,
        asked: int | None = None,
    ) -> None:
        """Submit the RUNNING ``trial`` (reserved or claimed by this run)."""
        run.view.hold(trial)
        run.heartbeat.add(trial)
        budget = trial.fidelity if trial.fidelity is not None else run.fidelity
        if asked is not None:
            budget = asked
        try:
            future = run.executor.submit(trial.arch, budget)
        except BaseException as exc:  # misuse (ConfigError) or an interrupt: not left RUNNING
            run.heartbeat.remove(trial)
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
        run.in_flight[future] = _Running(trial, dedup_id(trial.key, asked), known or {})

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
        if trial.id in state.taken_up and not trial.lost:
            state.retried += 1
        return trial

    def _learn(self, trial: TrialRecord, view: _View, state: _LoopState) -> None:
        """Take in a stored trial: count it, and tell the strategy once it is settled.

        A trial whose stored architecture is not one of the space's (the row was edited or
        damaged) is skipped, with a warning, as the store skips rows it cannot read.
        """
        if trial.id in view.damaged:
            return
        asked_here = trial.id in view.mine and trial.id not in state.taken_up  # validated
        if trial.id not in view.told and not asked_here:
            damage = foreign_arch(self.space, self.record.name, trial)
            if damage is not None:
                view.damaged.add(trial.id)
                view.skip(trial.number)
                warnings.warn(DamagedRowWarning(f"{damage}; it is skipped"), stacklevel=2)
                return
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
            # the trial may be at fault only if it ran inside the process that died
            charge = Owner(trial.owner or "").trials_inside
            marked_ = self.store.mark_stale(self.record.id, trial, reason, now=now, charge=charge)
            if marked_ is not None:
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

    def _submit_next(self, run: _Run) -> None:
        """Ask for one architecture and submit it, or answer it from the store."""
        view, state = run.view, run.state
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
            fidelity=asked if asked is not None else run.fidelity,
            owner=run.owner.id,
            dedup_fidelity=asked is not None,
            limit=run.limit,
        )
        if reservation.spent:
            state.stop_reason = "budget spent"
            return
        if reservation.existing is not None:  # another process stored or runs it
            self._learn(reservation.existing, view, state)
            self._duplicate(arch, dedup, view, state)
            return
        assert reservation.trial is not None
        self._start(run, reservation.trial, costs, asked)

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
        self.damaged: set[int] = set()  # ids of trials whose architecture is not the space's
        self.mine: set[int] = set()  # ids of trials this run held
        self.settled: set[int] = set()  # numbers of settled trials
        self.open: set[int] = set()  # numbers of trials seen, not settled
        self.skipped: set[int] = set()  # numbers of rows never to be learned (damaged)
        self.through = -1  # every trial numbered up to this one was seen or skipped

    def retryable(self, trial: TrialRecord) -> bool:
        """A trial lost with its worker that may still be run again."""
        return trial.lost and trial.attempt <= self.max_retries

    def see(self, trial: TrialRecord) -> None:
        self.numbers.add(trial.number)
        if trial.number == self.through + 1:
            self._advance()
        if trial.number not in self.settled:
            self.open.add(trial.number)
        self.keys.add(trial.key)
        if not trial.final or self.retryable(trial):
            self.pending.update(self._ids(trial))

    def read(self, numbers: Iterable[int]) -> None:
        """After a read of every trial numbered above ``through``, which returned ``numbers``:
        the numbers below the highest it returned and not among them are rows the store
        skipped (damaged): trials are stored in number order, so they were there to be read."""
        got = set(numbers)
        if got:
            for number in range(self.through + 1, max(got)):
                if number not in got and number not in self.numbers:
                    self.skipped.add(number)
        self._advance()

    def skip(self, number: int) -> None:
        """A row read but never to be learned (its architecture is not the space's)."""
        self.skipped.add(number)
        self._advance()

    def _advance(self) -> None:
        while self.through + 1 in self.numbers or self.through + 1 in self.skipped:
            self.through += 1

    def hold(self, trial: TrialRecord) -> None:
        self.mine.add(trial.id)
        self.see(trial)

    def settle(self, trial: TrialRecord) -> None:
        self.pending.difference_update(self._ids(trial))
        self.settled.add(trial.number)
        self.open.discard(trial.number)

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
    taken_up: set[int] = field(default_factory=set)  # ids of the lost trials this run retried
    retried: int = 0
    late: int = 0

    def record(self, trial: TrialRecord, objective: Objective, *, mine: bool) -> None:
        if mine:
            self.new_numbers.append(trial.number)
        if replaces_best(trial, self.best, objective):
            self.best = trial


@dataclass(eq=False)
class _Run:
    """One call of :meth:`Experiment.run`: what it holds while it searches."""

    budget: Budget
    executor: Executor
    fidelity: int | None
    owner: Owner
    heartbeat: Heartbeat
    grace: float
    view: _View
    max_retries: int
    callback: Callable[[Progress], None] | None
    artifacts: ArtifactStore | None
    state: _LoopState = field(default_factory=_LoopState)
    in_flight: dict[Future[Result], _Running] = field(default_factory=dict)
    start: float = field(default_factory=time.monotonic)
    last_poll: float = field(default_factory=time.monotonic)
    limit: tuple[Limit, int] | None = field(init=False)  # the budget as the store enforces it

    def __post_init__(self) -> None:
        self.limit = _limit(self.budget)

    def summary(self, record: ExperimentRecord, *, resumed: int) -> RunSummary:
        """What this run did."""
        state = self.state
        return RunSummary(
            experiment=record,
            resumed_trials=resumed,
            new_trials=len(state.new_numbers),
            archs=len(self.view.keys),
            duplicates=state.duplicates,
            elapsed=time.monotonic() - self.start,
            stop_reason=state.stop_reason or "budget spent",
            best=state.best,
            new_trial_numbers=state.new_numbers,
            skipped_infeasible=state.skipped,
            retried=state.retried,
            late_dropped=state.late,
        )

    def spent(self) -> bool:
        """Whether the budget is used up (time is this run's own)."""
        if self.budget.unit is BudgetUnit.ARCHS:
            return len(self.view.keys) >= self.budget.amount
        if self.budget.unit is BudgetUnit.TRIALS:
            return len(self.view.numbers) >= self.budget.amount
        return time.monotonic() - self.start >= self.budget.amount


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

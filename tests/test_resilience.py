"""The loop survives lost workers, dead search processes, late results and interruptions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution.base import Executor, evaluate_safely
from nasforge.experiment import Experiment
from nasforge.heartbeat import Owner, owner_is_dead
from nasforge.objective import Objective
from nasforge.result import Result, Status
from nasforge.store.base import STALE_PREFIX
from nasforge.store.sql import SqlStore

OBJ = Objective("val_acc")


def _experiment(store: SqlStore, evaluator: NasBenchGraphEvaluator | None = None) -> Experiment:
    ev = evaluator or NasBenchGraphEvaluator(dataset="cora")
    return Experiment(
        name="e",
        space=ev.space,
        evaluator=ev,
        strategy=make_strategy("random", ev.space, objective=OBJ, seed=0),
        store=store,
    )


class LosingExecutor(Executor):
    """Evaluates inline, but the first ``lose`` submissions are lost with their "worker"."""

    capacity = 1

    def __init__(self, evaluator: NasBenchGraphEvaluator, lose: int) -> None:
        self.evaluator = evaluator
        self.lose = lose
        self.submitted: list[str] = []

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        self.submitted.append(self.evaluator.space.canonical_key(arch))
        future: Future[Result] = Future()
        if self.lose > 0:
            self.lose -= 1
            future.set_result(Result.failed("the worker process died (simulated)", lost=True))
        else:
            future.set_result(evaluate_safely(self.evaluator, arch, budget))
        return future


def test_a_trial_lost_with_its_worker_is_retried_under_its_number(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    executor = LosingExecutor(ev, lose=2)
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        summary = exp.run(Budget(10, BudgetUnit.TRIALS), executor=executor, max_retries=2)
        stored = store.trials(exp.record.id)
    assert [t.number for t in stored] == list(range(10))
    assert all(t.status is Status.COMPLETE for t in stored)
    assert stored[0].attempt == 3 and all(t.attempt == 1 for t in stored[1:])
    # the same architecture was submitted three times, then the search went on
    assert executor.submitted[:3] == [stored[0].key] * 3
    assert summary.retried == 1 and summary.new_trials == 10


def test_a_trial_lost_more_often_than_allowed_stays_failed_stale(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        exp.run(Budget(5, BudgetUnit.TRIALS), executor=LosingExecutor(ev, lose=2), max_retries=1)
        stored = store.trials(exp.record.id)
    assert len(stored) == 5
    first = stored[0]
    assert first.status is Status.FAILED and first.lost and first.attempt == 2
    assert first.state == "FAILED (stale)" and (first.error or "").startswith(STALE_PREFIX)
    assert all(t.status is Status.COMPLETE for t in stored[1:])


class StealingExecutor(Executor):
    """Another process declares the first trial stale (and retries it) while it runs here."""

    capacity = 1

    def __init__(self, evaluator: NasBenchGraphEvaluator, db: Path) -> None:
        self.evaluator = evaluator
        self.db = db
        self.stolen = False

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        if not self.stolen:
            self.stolen = True
            with SqlStore(self.db) as other:
                [running] = other.trials(1, status=Status.RUNNING)
                other.mark_stale(1, running, "no heartbeat (simulated)", now=time.time())
                retry = other.claim_retry(1, owner="elsewhere", max_retries=2, now=time.time())
                assert retry is not None
                other.finish_trial(retry, self.evaluator.evaluate(arch), finished_at=time.time())
        future: Future[Result] = Future()
        future.set_result(evaluate_safely(self.evaluator, arch, budget))
        return future


def test_a_late_result_is_dropped_cleanly(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        summary = exp.run(Budget(6, BudgetUnit.TRIALS), executor=StealingExecutor(ev, db_path))
        stored = store.trials(exp.record.id)
    assert summary.late_dropped == 1
    assert [t.number for t in stored] == list(range(6))
    assert all(t.status is Status.COMPLETE for t in stored)
    assert stored[0].owner == "elsewhere" and stored[0].attempt == 2


def _dead_owner() -> str:
    """The owner id of a search process on this machine that has exited."""
    child = subprocess.run(
        [sys.executable, "-c", "from nasforge.heartbeat import Owner; print(Owner.new().id)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return child.stdout.strip()


def test_owner_liveness() -> None:
    me = Owner.new()
    assert not owner_is_dead(me.id)
    me.release()
    assert owner_is_dead(me.id)  # this process, but the run has ended
    assert owner_is_dead(_dead_owner())
    assert owner_is_dead(None)
    assert not owner_is_dead("another-host/abcd1234/1/1/x")  # its heartbeat decides


def test_resume_retries_the_trials_of_a_dead_search(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        exp.run(Budget(4, BudgetUnit.TRIALS))
        arch = ev.space.sample(np.random.default_rng(99))
        key = ev.space.canonical_key(arch)
        dead = store.reserve_trial(
            exp.record.id, arch, key, fidelity=None, owner=_dead_owner(), dedup_fidelity=False
        )
        assert dead.trial is not None and dead.trial.number == 4
        summary = _experiment(store, ev).run(Budget(8, BudgetUnit.TRIALS))
        stored = store.trials(exp.record.id)
    assert [t.number for t in stored] == list(range(8))
    assert all(t.status is Status.COMPLETE for t in stored)
    # the trial waited in a search that died: not its fault, so its attempt was given back
    assert stored[4].key == key and stored[4].attempt == 1
    assert summary.retried == 1


def _dead_owner_of_trials_inside() -> str:
    """The owner id of an exited search that trained its trials in its own process."""
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nasforge.heartbeat import Owner; print(Owner.new(trials_inside=True).id)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return child.stdout.strip()


def test_a_search_that_died_charges_only_the_trials_it_ran_inside(db_path: Path) -> None:
    """A dead search's trials are retried without limit, except those that ran inside it."""
    ev = NasBenchGraphEvaluator(dataset="cora")
    owners = {"waiting": _dead_owner(), "inside": _dead_owner_of_trials_inside()}
    assert not Owner(owners["waiting"]).trials_inside and Owner(owners["inside"]).trials_inside
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        rng = np.random.default_rng(3)
        for owner in (owners["waiting"], owners["inside"]):
            for _trial in range(5):  # five trials held by each search when it died
                arch = ev.space.sample(rng)
                store.reserve_trial(
                    exp.record.id,
                    arch,
                    ev.space.canonical_key(arch),
                    fidelity=None,
                    owner=owner,
                    dedup_fidelity=False,
                )
        _experiment(store, ev).run(Budget(10, BudgetUnit.TRIALS), max_retries=0)
        stored = store.trials(exp.record.id)
    waited, inside = stored[:5], stored[5:]
    assert all(t.status is Status.COMPLETE and t.attempt == 1 for t in waited)
    # with no retries allowed, a trial that may have killed the search that ran it stays lost
    assert all(t.status is Status.FAILED and t.lost and t.attempt == 1 for t in inside)
    assert all("died" in (t.error or "") for t in inside)


class PeekingEvaluator(NasBenchGraphEvaluator):
    """Notes the owner of the trial it evaluates; a look-up or not, as told."""

    def __init__(self, db: Path, *, lookup: bool) -> None:
        super().__init__(dataset="cora")
        self.db, self.lookup, self.owners = db, lookup, set[str]()  # type: ignore[misc]

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        with SqlStore(self.db) as store:
            self.owners |= {t.owner or "" for t in store.trials(1, status=Status.RUNNING)}
        return super().evaluate(arch, budget)


@pytest.mark.parametrize("lookup", [True, False])
def test_only_a_search_running_evaluations_that_may_kill_it_marks_its_trials(
    db_path: Path, lookup: bool
) -> None:
    ev = PeekingEvaluator(db_path, lookup=lookup)
    with SqlStore(db_path) as store:
        _experiment(store, ev).run(Budget(3, BudgetUnit.TRIALS))  # inline: in this process
    [owner] = ev.owners
    assert Owner(owner).trials_inside is not lookup


def test_a_silent_remote_trial_goes_stale_after_the_grace_period(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        arch = ev.space.sample(np.random.default_rng(5))
        remote = store.reserve_trial(
            exp.record.id,
            arch,
            ev.space.canonical_key(arch),
            fidelity=None,
            owner="other-machine/abcd1234/77/1/run",
            dedup_fidelity=False,
        )
        assert remote.trial is not None
        fresh = _experiment(store, ev)
        fresh.run(Budget(3, BudgetUnit.TRIALS), stale_after=3600)  # recent heartbeat: left alone
        assert store.trials(exp.record.id)[0].status is Status.RUNNING
        time.sleep(0.2)
        _experiment(store, ev).run(Budget(3, BudgetUnit.TRIALS), stale_after=0.1)
        [first, *_] = store.trials(exp.record.id)
    assert first.status is Status.COMPLETE and first.attempt == 1  # its search was lost
    assert first.owner != "other-machine/abcd1234/77/1/run"


class Interrupt(Exception):
    pass


class SlowExecutor(Executor):
    """Never finishes its trials (a search interrupted while they run)."""

    capacity = 2

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        return Future()


def test_an_interrupted_search_leaves_no_trial_running(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)

        def stop(_: object) -> None:
            raise Interrupt

        with pytest.raises(Interrupt):
            exp.run(Budget(5, BudgetUnit.TRIALS), callback=stop)
        assert all(t.status is not Status.RUNNING for t in store.trials(exp.record.id))
        # a run whose executor never answers, stopped from outside: its trials become stale
        import signal
        import threading

        # Ctrl-C as a terminal delivers it, even where this test process inherited SIGINT
        # ignored (a job started in the background by a shell without job control)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                _experiment(store, ev).run(Budget(5, BudgetUnit.TRIALS), executor=SlowExecutor())
        finally:
            signal.signal(signal.SIGINT, previous)
        stored = store.trials(exp.record.id)
        assert [t.status for t in stored[1:3]] == [Status.FAILED, Status.FAILED]
        assert all(t.lost and t.attempt == 0 for t in stored[1:3])  # stopped: not charged
        _experiment(store, ev).run(Budget(5, BudgetUnit.TRIALS))
        stored = store.trials(exp.record.id)
    assert [t.number for t in stored] == list(range(5))
    assert all(t.status is Status.COMPLETE for t in stored)


def test_bad_retry_settings_are_refused(db_path: Path) -> None:
    with SqlStore(db_path) as store:
        exp = _experiment(store)
        with pytest.raises(ConfigError, match="max_retries must be an integer >= 0"):
            exp.run(Budget(2), max_retries=-1)
        with pytest.raises(ConfigError, match="heartbeat_interval"):
            exp.run(Budget(2), heartbeat_interval=0)
        assert store.count_trials(exp.record.id) == 0


def test_report_and_trials_show_running_and_stale_trials(db_path: Path, tmp_path: Path) -> None:
    from nasforge import api
    from nasforge.cli import main

    api.search(benchmark="nas-bench-graph:cora", strategy="random", budget=5, name="r", db=db_path)
    ev = NasBenchGraphEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        record = store.get_experiment("r")
        archs = [ev.space.sample(np.random.default_rng(s)) for s in (11, 12)]
        running, lost = (
            store.reserve_trial(
                record.id,
                a,
                ev.space.canonical_key(a),
                fidelity=None,
                owner="elsewhere",
                dedup_fidelity=False,
            ).trial
            for a in archs
        )
        assert running is not None and lost is not None
        store.mark_stale(record.id, lost, "the worker process died", now=time.time())
    page = api.report("r", tmp_path / "r.html", db=db_path).read_text()
    assert "RUNNING" in page and "stale: the worker process died" in page
    assert main(["trials", "--name", "r", "--db", str(db_path), "--status", "RUNNING"]) == 0
    assert main(["best", "--name", "r", "--db", str(db_path)]) == 0


class MisusedEvaluator(NasBenchGraphEvaluator):
    """Raises ConfigError (misuse, which stops the search) on its third evaluation."""

    calls = 0

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        MisusedEvaluator.calls += 1
        if MisusedEvaluator.calls == 3:
            raise ConfigError("this evaluator was given a budget it cannot honour")
        return super().evaluate(arch, budget)


def test_a_search_stopped_by_misuse_leaves_no_trial_running(db_path: Path) -> None:
    ev = MisusedEvaluator(dataset="cora")
    with SqlStore(db_path) as store:
        exp = _experiment(store, ev)
        with pytest.raises(ConfigError, match="cannot honour"):
            exp.run(Budget(5, BudgetUnit.TRIALS))
        stored = store.trials(exp.record.id)
    assert [t.status for t in stored] == [Status.COMPLETE, Status.COMPLETE, Status.FAILED]
    assert not stored[2].lost and "cannot honour" in (stored[2].error or "")

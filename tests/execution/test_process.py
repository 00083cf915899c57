"""The process executor with real worker processes: crashes, hangs and failures stay isolated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import wait
from multiprocessing import resource_tracker
from pathlib import Path

import psutil
import pytest
from tests.execution.process_evaluators import (
    EXIT,
    HANG,
    HANG_DETACHED,
    NO_MEMORY,
    NO_TORCH_MEMORY,
    SLEEP,
    SLOW,
    UNPICKLABLE,
    DeviceReportingEvaluator,
    MisbehavingEvaluator,
    ThreadWatchingEvaluator,
    UnstartableEvaluator,
)

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget
from nasforge.errors import ConfigError, NasforgeError, WorkersUnavailable
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution.process import ProcessExecutor
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Result, Status
from nasforge.store.sql import SqlStore

RESULT_TIMEOUT_S = 60.0  # a worker starts in seconds (torch import): generous on a busy CI
REPO = Path(__file__).resolve().parents[2]


def _arch(*ops: str) -> Architecture:
    return Architecture.create("gnn", links=[0, 1, 2, 3], ops=list(ops))


def _fine(i: int) -> Architecture:
    """The ``i``-th of 8 well-behaved architectures (first op gcn)."""
    ops = ("gcn", "gin", "sage", "cheb")
    return _arch("gcn", ops[i % 4], ops[i // 4], "gcn")


@pytest.fixture(autouse=True)
def _importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers import the evaluators of ``tests/execution/process_evaluators.py`` by name
    (spawned processes start with the search's ``sys.path``)."""
    monkeypatch.syspath_prepend(str(REPO))


@pytest.fixture(scope="module")
def table() -> NasBenchGraphEvaluator:
    return NasBenchGraphEvaluator(dataset="cora")


@pytest.fixture
def evaluator(tmp_path: Path) -> MisbehavingEvaluator:
    return MisbehavingEvaluator(pid_dir=str(tmp_path))


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fail the test if it leaves a process of its own behind (a child, or a grandchild)."""
    resource_tracker.ensure_running()  # multiprocessing's own, started once for the session
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    _, alive = psutil.wait_procs(
        [p for p in me.children(recursive=True) if p.pid not in before], timeout=10
    )
    assert not alive, [p.pid for p in alive]


def _pids(pid_dir: Path, op: str, timeout: float = RESULT_TIMEOUT_S) -> list[int]:
    """The pids a trial whose first op is ``op`` wrote (the worker's, then its child's)."""
    path = pid_dir / f"{op}.pid"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"no trial wrote {path}"
        time.sleep(0.05)
    return [int(pid) for pid in path.read_text().split()]


def _gone(pid: int) -> bool:
    """True once ``pid`` runs no more (a zombie counts as gone unless it is ours to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    state, ppid = stat.rpartition(")")[2].split()[:2]
    return state in ("Z", "X") and int(ppid) != os.getpid()


def _wait_gone(*pids: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, [pid for pid in pids if not _gone(pid)]
        time.sleep(0.05)


def _assert_table_values(result: Result, arch: Architecture, table: NasBenchGraphEvaluator) -> None:
    assert result.status is Status.COMPLETE, result.reason
    expected = table.evaluate(arch)
    assert result.metrics == expected.metrics and result.test_metrics == expected.test_metrics


def test_eight_trials_on_two_workers_complete_with_the_tables_values(
    table: NasBenchGraphEvaluator, no_leftovers: None
) -> None:
    archs = [_fine(i) for i in range(8)]
    with ProcessExecutor(NasBenchGraphEvaluator(dataset="cora"), workers=2) as executor:
        assert executor.capacity == 2
        start = time.monotonic()
        futures = [executor.submit(arch) for arch in archs]  # beyond capacity: they queue
        assert time.monotonic() - start < 0.5  # submit never waits for a worker
        for arch, future in zip(archs, futures, strict=True):
            _assert_table_values(future.result(timeout=RESULT_TIMEOUT_S), arch, table)


def test_each_worker_knows_its_number_and_reports_its_device(no_leftovers: None) -> None:
    """Worker i is told i (device "cuda" takes GPU i % GPUs there); each result names the
    device it ran on and the device's name."""
    archs = [_fine(i) for i in range(6)]
    evaluator = DeviceReportingEvaluator(device="cpu", seconds=1.5)
    with ProcessExecutor(evaluator, workers=2) as executor:
        futures = [executor.submit(arch) for arch in archs]
        results = [future.result(timeout=RESULT_TIMEOUT_S) for future in futures]
    assert all(r.status is Status.COMPLETE for r in results), [r.reason for r in results]
    assert {r.costs["worker"] for r in results} == {0.0, 1.0}
    assert {r.device for r in results} == {"cpu"}
    assert all(r.device_name for r in results)


def test_a_worker_killed_mid_trial_costs_only_its_own_trial(
    evaluator: MisbehavingEvaluator, tmp_path: Path, table: NasBenchGraphEvaluator
) -> None:
    slow = _arch(SLOW, "gcn", "gcn", "gcn")
    with ProcessExecutor(evaluator, workers=2) as executor:
        doomed = executor.submit(_arch(SLEEP, "gcn", "gcn", "gcn"))
        other = executor.submit(slow)
        [worker] = _pids(tmp_path, SLEEP)
        _pids(tmp_path, SLOW)  # both trials are in flight
        os.kill(worker, signal.SIGKILL)
        lost = doomed.result(timeout=10)
        assert lost.status is Status.FAILED and lost.lost
        assert lost.reason == "the worker process died during the trial (killed by SIGKILL)"
        _assert_table_values(other.result(timeout=10), slow, table)
        later = [executor.submit(_fine(i)) for i in range(3)]  # the slot has a fresh worker
        for i, future in enumerate(later):
            _assert_table_values(future.result(timeout=RESULT_TIMEOUT_S), _fine(i), table)
    _wait_gone(worker)


@pytest.mark.parametrize("op", [HANG, HANG_DETACHED], ids=["child-in-group", "child-detached"])
def test_a_hung_trial_is_killed_at_its_timeout_with_its_process_tree(
    op: str, evaluator: MisbehavingEvaluator, tmp_path: Path, table: NasBenchGraphEvaluator
) -> None:
    with ProcessExecutor(evaluator, workers=1, trial_timeout=2) as executor:
        hung = executor.submit(_arch(op, "gcn", "gcn", "gcn"))
        worker, grandchild = _pids(tmp_path, op)
        start = time.monotonic()
        result = hung.result(timeout=10)
        assert time.monotonic() - start < 4  # 2 s after it started, plus the kill
        assert result.status is Status.FAILED and not result.lost  # a hang would hang again
        assert result.reason == "timed out after 2 s; the trial's process tree was killed"
        assert 2 <= result.wall_time < 4
        _wait_gone(worker, grandchild)
        after = executor.submit(_fine(0)).result(timeout=RESULT_TIMEOUT_S)
        _assert_table_values(after, _fine(0), table)


def test_out_of_memory_in_a_trial_fails_it_and_the_worker_goes_on(
    evaluator: MisbehavingEvaluator, tmp_path: Path, table: NasBenchGraphEvaluator
) -> None:
    with ProcessExecutor(evaluator, workers=1) as executor:  # one worker: all on the same
        python = executor.submit(_arch(NO_MEMORY, "gcn", "gcn", "gcn"))
        torch = executor.submit(_arch(NO_TORCH_MEMORY, "gcn", "gcn", "gcn"))
        fine = executor.submit(_fine(1))
        failed = python.result(timeout=RESULT_TIMEOUT_S)
        assert failed.status is Status.FAILED and failed.reason == "MemoryError:"
        failed = torch.result(timeout=10)
        assert failed.status is Status.FAILED and not failed.lost
        assert failed.reason is not None and "can't allocate memory" in failed.reason
        _assert_table_values(fine.result(timeout=10), _fine(1), table)
    assert len({*_pids(tmp_path, NO_MEMORY), *_pids(tmp_path, NO_TORCH_MEMORY)}) == 1


def test_a_worker_exiting_mid_trial_is_lost_and_its_slot_works_again(
    evaluator: MisbehavingEvaluator, table: NasBenchGraphEvaluator
) -> None:
    with ProcessExecutor(evaluator, workers=1) as executor:
        exiting = executor.submit(_arch(EXIT, "gcn", "gcn", "gcn"))
        next_one = executor.submit(_fine(2))
        lost = exiting.result(timeout=RESULT_TIMEOUT_S)
        assert lost.status is Status.FAILED and lost.lost
        assert lost.reason == "the worker process died during the trial (exit code 3)"
        _assert_table_values(next_one.result(timeout=RESULT_TIMEOUT_S), _fine(2), table)


def test_a_result_that_cannot_be_sent_back_is_a_failed_trial(
    evaluator: MisbehavingEvaluator, table: NasBenchGraphEvaluator
) -> None:
    with ProcessExecutor(evaluator, workers=1) as executor:
        result = executor.submit(_arch(UNPICKLABLE, "gcn", "gcn", "gcn")).result(
            timeout=RESULT_TIMEOUT_S
        )
        assert result.status is Status.FAILED and not result.lost
        assert result.reason is not None
        assert result.reason.startswith("the trial's result could not be sent back")
        _assert_table_values(executor.submit(_fine(3)).result(timeout=10), _fine(3), table)


def test_a_worker_that_cannot_start_loses_the_trial_and_takes_no_more(
    no_leftovers: None,
) -> None:
    with ProcessExecutor(UnstartableEvaluator(), workers=1) as executor:
        result = executor.submit(_fine(0)).result(timeout=RESULT_TIMEOUT_S)
        # not the trial's fault: lost, so a resume runs it again
        assert result.status is Status.FAILED and result.lost
        assert result.reason == (
            "the worker process could not start (RuntimeError: this evaluator cannot be "
            "loaded in another process)"
        )
        assert not result.started  # the search stops here: no attempt is charged
        # an error of its own would only happen again: no more trials, no more workers
        with pytest.raises(WorkersUnavailable, match="worker processes cannot start: Runtime"):
            executor.submit(_fine(1))
        time.sleep(0.5)
        assert len(psutil.Process().children()) <= 1


def test_closing_resolves_the_trials_in_flight_and_leaves_no_process(
    evaluator: MisbehavingEvaluator, tmp_path: Path, no_leftovers: None
) -> None:
    executor = ProcessExecutor(evaluator, workers=2)
    futures = [
        executor.submit(_arch(SLEEP, "gcn", "gcn", "gcn")),
        executor.submit(_arch(HANG, "gcn", "gcn", "gcn")),
        executor.submit(_fine(0)),  # queued behind them
    ]
    [sleeper] = _pids(tmp_path, SLEEP)
    hanger, grandchild = _pids(tmp_path, HANG)
    start = time.monotonic()
    executor.close()
    assert time.monotonic() - start < 5
    done, _ = wait(futures, timeout=0)
    assert len(done) == 3
    for future in futures:
        assert future.result() == Result.failed("the executor was closed before the trial finished")
    _wait_gone(sleeper, hanger, grandchild)
    executor.close()  # idempotent
    with pytest.raises(NasforgeError, match="closed"):
        executor.submit(_fine(0))


def test_a_forgotten_executor_stops_its_workers(no_leftovers: None) -> None:
    executor = ProcessExecutor(NasBenchGraphEvaluator(dataset="cora"), workers=1)
    assert executor.submit(_fine(0)).result(timeout=RESULT_TIMEOUT_S).ok
    del executor  # collected: its finaliser kills and reaps the worker


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "2"])
def test_bad_trial_timeouts_are_refused(timeout: object) -> None:
    with pytest.raises(ConfigError, match="finite number of seconds > 0"):
        ProcessExecutor(
            NasBenchGraphEvaluator(dataset="cora"),
            workers=1,
            trial_timeout=timeout,  # type: ignore[arg-type]
        )


def test_an_evaluator_that_does_not_pickle_is_refused() -> None:
    evaluator = NasBenchGraphEvaluator(dataset="cora")
    evaluator.hook = lambda: None  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="evaluator must be picklable"):
        ProcessExecutor(evaluator, workers=1)


SEARCH = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.execution.process_evaluators import SLEEP, MisbehavingEvaluator
from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget
from nasforge.execution.process import ProcessExecutor
from nasforge.experiment import Experiment
from nasforge.objective import Objective
executor = ProcessExecutor(MisbehavingEvaluator(pid_dir=sys.argv[1]), workers=1)
executor.submit(Architecture.create("gnn", links=[0, 1, 2, 3], ops=[SLEEP, "gcn", "gcn", "gcn"]))
import time; time.sleep(600)
"""


def test_workers_end_when_the_search_process_is_killed(tmp_path: Path) -> None:
    import subprocess
    import sys

    search = subprocess.Popen([sys.executable, "-c", SEARCH, str(tmp_path), str(REPO)])
    try:
        [worker] = _pids(tmp_path, SLEEP)  # deep in a 60 s trial, not reading its pipe
        os.kill(search.pid, signal.SIGKILL)
        search.wait()
        _wait_gone(worker, timeout=5)
    finally:
        search.kill()
        search.wait()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to split")
def test_idle_workers_cores_go_to_the_trial_still_running(no_leftovers: None) -> None:
    cpus = len(os.sched_getaffinity(0))
    ex = ProcessExecutor(ThreadWatchingEvaluator(seconds=2.5), workers=2)
    try:
        assert ex.threads == cpus // 2 and ex.adaptive
        # two trials at once: each keeps its half
        both = [ex.submit(_fine(0)), ex.submit(_fine(1))]
        for future in both:
            costs = future.result(RESULT_TIMEOUT_S).costs
            assert costs["threads_first"] == cpus // 2, costs
        # one trial alone: it takes up the idle worker's cores, its latency is timed at half
        costs = ex.submit(_fine(2)).result(RESULT_TIMEOUT_S).costs
        assert costs["threads_first"] == cpus // 2 and costs["threads_last"] == cpus, costs
        assert costs["threads_base"] == cpus // 2
    finally:
        ex.close()


def test_given_threads_stay_fixed(no_leftovers: None) -> None:
    ex = ProcessExecutor(ThreadWatchingEvaluator(seconds=1.5), workers=2, threads=1)
    try:
        assert not ex.adaptive
        costs = ex.submit(_fine(0)).result(RESULT_TIMEOUT_S).costs
        assert costs["threads_first"] == costs["threads_last"] == costs["threads_base"] == 1
    finally:
        ex.close()


UNGUARDED = """
import sys
import nasforge

# no 'if __name__ == "__main__":' guard: every worker runs this file again while starting
result = nasforge.search(task="synthetic", budget=3, epochs=2, db=sys.argv[1], name="s")
print("best", result.best.number)
"""


def test_a_script_without_the_main_guard_gets_the_fix_and_loses_nothing(tmp_path: Path) -> None:
    """A worker that dies while starting, before reading its (large) evaluator, must not hang
    the search; the script's own search is refused in the worker with the fix."""
    script, db = tmp_path / "search.py", tmp_path / "runs.db"
    script.write_text(UNGUARDED, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Put the code that starts the search under 'if __name__ ==" in proc.stderr
    assert "WorkersUnavailable: worker processes cannot start: it exited" in proc.stderr
    with SqlStore(db) as store:
        [record] = store.list_experiments()
        trials = store.trials(record.id)
    assert len(trials) == 1 and trials[0].lost  # not the trial's fault: runs on resume

    guarded = UNGUARDED.replace("result =", 'if __name__ == "__main__":\n    result =')
    script.write_text(guarded.replace('print("best"', '    print("best"'), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    with SqlStore(db) as store:
        trials = store.trials(record.id)
    assert sorted(t.number for t in trials if t.status is Status.COMPLETE) == [0, 1, 2]


def test_runs_whose_workers_cannot_start_spend_no_attempt(
    tmp_path: Path, table: NasBenchGraphEvaluator, no_leftovers: None
) -> None:
    """A trial that never started is not charged an attempt: however often the workers fail
    to start, the search with the cause fixed still runs it."""

    def experiment(store: SqlStore, evaluator: NasBenchGraphEvaluator) -> Experiment:
        strategy = make_strategy("random", evaluator.space, objective=Objective("val_acc"), seed=0)
        return Experiment(
            name="e", space=evaluator.space, evaluator=evaluator, strategy=strategy, store=store
        )

    with SqlStore(tmp_path / "runs.db") as store:
        for _ in range(3):  # more failed runs than retries
            broken = UnstartableEvaluator()
            with (
                ProcessExecutor(broken, workers=1) as executor,
                pytest.raises(WorkersUnavailable),
            ):
                experiment(store, broken).run(Budget(2), executor=executor, max_retries=1)
            [trial] = store.trials(1)
            assert trial.lost and trial.attempt == 0, trial  # lost before it started
            assert trial.error is not None and "cannot start" in trial.error
        experiment(store, table).run(Budget(2), max_retries=1)
        trials = store.trials(1)
    assert [(t.status, t.attempt) for t in trials] == [(Status.COMPLETE, 1)] * 2


def test_a_worker_killed_while_starting_is_replaced_and_its_trial_charged(
    table: NasBenchGraphEvaluator, no_leftovers: None
) -> None:
    """Killed from outside (the OOM killer) before it was ready: not the pool's own error, so
    a new worker takes the next trial; the lost trial is charged its attempt, which keeps the
    retries of a trial whose workers keep being killed bounded."""
    with ProcessExecutor(NasBenchGraphEvaluator(dataset="cora"), workers=1) as executor:
        slot = executor._pool.slots[0]
        deadline = time.monotonic() + 10
        while slot.worker is None and time.monotonic() < deadline:  # started by the monitor
            time.sleep(0.002)
        worker = slot.worker
        assert worker is not None
        # stopped at once, so that it cannot become ready and run the trial before the kill
        # lands (on a busy machine the submit below can take longer than a table look-up)
        os.kill(worker.process.pid or 0, signal.SIGSTOP)
        assert not worker.ready
        future = executor.submit(_fine(0))
        # the pool's thread hands the trial to the (stopped) worker; killed before that, the
        # worker would take no trial with it (on a busy machine that thread can lag)
        deadline = time.monotonic() + 10
        while worker.job is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert worker.job is not None
        os.kill(worker.process.pid or 0, signal.SIGKILL)
        lost = future.result(timeout=RESULT_TIMEOUT_S)
        assert lost.status is Status.FAILED and lost.lost and lost.started
        assert lost.reason is not None and "could not start" in lost.reason
        _assert_table_values(executor.submit(_fine(1)).result(RESULT_TIMEOUT_S), _fine(1), table)

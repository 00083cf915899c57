"""Local worker processes, each with its share of the CPU threads, isolated from each other.

One long-lived process per slot (started with ``spawn``), each with its own duplex pipe, and
one monitor thread in the search process that waits on every pipe and every process sentinel
at once. A worker that dies (``kill -9``, the OOM killer, a segfault, ``os._exit``) costs only
its own trial: that trial fails as *lost*, the slot gets a fresh worker, and the trials of the
other workers go on. A trial exceeding ``trial_timeout`` has its worker's whole process tree
killed (each worker leads its own process group).

The cores are split evenly between the workers; while fewer trials run than there are
workers (the end of a search), the idle workers' cores go to the running trials, which
adopt their new share between epochs (:mod:`nasforge.train.threads`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import pickle
import signal
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing import get_context, reduction
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, NasforgeError, WorkersUnavailable
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import (
    Executor,
    check_trial_timeout,
    evaluate_safely,
    refuse_while_a_worker_starts,
)
from nasforge.result import Result

__all__ = ["START_TIMEOUT_S", "ProcessExecutor"]

START_TIMEOUT_S = 300.0
"""How long a worker may take to start (import torch, unpickle the evaluator)."""

CLOSED_REASON = "the executor was closed before the trial finished"
_JOIN_TIMEOUT_S = 10.0

# Messages from a worker: (_READY,), (_ERROR, text) before it exits, (_RESULT, Result).
_READY, _ERROR, _RESULT = "ready", "error", "result"

GROW_DELAY_S = 0.5
"""How long cores must stay idle before running trials take them up (a new trial usually
follows a finished one within milliseconds; only a lasting gap is worth re-splitting for)."""


class _Payload:
    """Bytes handed to new workers through an anonymous file, not the spawn pipe.

    ``spawn`` writes a new process's arguments into a pipe whose read end the parent keeps
    open until the write is done, so a child that died while starting (before it read them)
    would block a large write, and the search, for ever. Only a duplicate of the file's
    descriptor goes through the pipe; the worker reads the file by offset (``pread``), so
    workers starting at once do not share a file position.
    """

    def __init__(self, data: bytes) -> None:
        if hasattr(os, "memfd_create"):  # Linux: in memory, as the pipe was
            fd = os.memfd_create("nasforge-evaluator", os.MFD_CLOEXEC)
            self.file: Any = os.fdopen(fd, "w+b")
        else:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (open for the pool's life)
        self.file.write(data)
        self.file.flush()
        self.size = len(data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_read_payload, (reduction.DupFd(self.file.fileno()), self.size))

    def close(self) -> None:
        self.file.close()


def _read_payload(duplicate: Any, size: int) -> bytes:
    """In a new worker: read the payload from the descriptor it was given, then close it."""
    fd = duplicate.detach()
    try:
        chunks, offset = [], 0
        while offset < size:
            chunk = os.pread(fd, min(size - offset, 1 << 24), offset)
            if not chunk:
                raise EOFError(f"the evaluator file ended at byte {offset} of {size}")
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --- the worker process ------------------------------------------------------------------


def _follow_parent(parent: int, interval: float = 0.5) -> None:
    """End this worker's process group when the search process that started it dies.

    A worker deep in a trial does not read its pipe, so it would not notice the search being
    killed (kill -9) and would train on for nothing; its children in the group go with it.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="nasforge-parent-watch", daemon=True).start()


def _worker_main(
    conn: Connection,
    evaluator_bytes: bytes,
    threads: int,
    parent: int,
    shares: Any = None,
    slot: int = 0,
    epochs: Any = None,
) -> None:
    """Body of a worker: set up, then evaluate the jobs read from ``conn`` until it closes.

    ``shares[slot]`` (shared memory written by the search) is this worker's current share of
    the cores; ``None`` keeps ``threads`` throughout.
    """
    os.setpgid(0, 0)  # lead a process group: the search kills the worker's whole tree by it
    _follow_parent(parent)  # the search's pid, given: it may have died while this one started
    try:
        import torch

        from nasforge.train import progress
        from nasforge.train import threads as thread_share
        from nasforge.train.device import assign_worker

        torch.set_num_interop_threads(1)
        assign_worker(slot)  # device "cuda" takes GPU slot % GPUs: one per worker
        if epochs is not None:  # the search shows each running trial's epochs
            progress.report_to(functools.partial(_write_epochs, epochs, slot))
        share = None if shares is None else (lambda: int(shares[slot]))
        thread_share.configure(threads, share)
        evaluator: Evaluator = pickle.loads(evaluator_bytes)
    except BaseException as exc:
        conn.send_bytes(pickle.dumps((_ERROR, f"{type(exc).__name__}: {exc}")))
        os._exit(1)
    del evaluator_bytes
    conn.send_bytes(pickle.dumps((_READY,)))
    while True:
        try:
            arch, budget = pickle.loads(conn.recv_bytes())
        except EOFError:  # the search closed the pipe (or died)
            return
        thread_share.between_epochs()  # start with this worker's current share
        conn.send_bytes(_result_message(_evaluate(evaluator, arch, budget)))


def _write_epochs(epochs: Any, slot: int, done: int, planned: int) -> None:
    epochs[2 * slot], epochs[2 * slot + 1] = done, planned


def _evaluate(evaluator: Evaluator, arch: dict[str, Any], budget: int | None) -> Result:
    start = time.perf_counter()
    try:
        return evaluate_safely(evaluator, Architecture.from_dict(arch), budget)
    except Exception as exc:  # misuse such as a ConfigError: this trial fails, not the worker
        reason = f"{type(exc).__name__}: {exc}".strip()
        return Result.failed(reason, wall_time=time.perf_counter() - start)


def _result_message(result: Result) -> bytes:
    """The pickled result message, or a FAILED result saying why the result cannot be sent."""
    try:
        return pickle.dumps((_RESULT, result), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        reason = (
            "the trial's result could not be sent back to the search (it cannot be pickled: "
            f"{type(exc).__name__}: {exc})"
        )
        return pickle.dumps((_RESULT, Result.failed(reason, wall_time=result.wall_time)))


# --- killing a process tree (Linux: process groups and /proc) ----------------------------


def _descendants(pid: int) -> set[int]:
    """Every descendant of ``pid``, found through /proc (none without /proc)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # gone meanwhile
                continue
            ppid = int(stat.rpartition(b")")[2].split()[1])  # after "pid (comm) state"
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, signum: int, *, group: bool = False) -> None:
    with contextlib.suppress(OSError):  # gone already (or never became a group leader)
        (os.killpg if group else os.kill)(pid, signum)


def _kill_tree(pid: int) -> None:
    """SIGKILL the worker ``pid``, its process group and its descendants that left the group.

    The group is stopped first so that nothing forks while the descendants are collected.
    Call it before reaping the worker: while it is unreaped, its pid names its own group.
    """
    if pid <= 0:  # 0 or -1 would signal the search's own group, or every process
        return
    _signal(pid, signal.SIGSTOP, group=True)
    _signal(pid, signal.SIGSTOP)
    stopped: set[int] = set()
    for _ in range(3):  # descendants outside the group may fork until they are stopped too
        new = _descendants(pid) - stopped
        if not new:
            break
        for child in new:
            _signal(child, signal.SIGSTOP)
        stopped |= new
    _signal(pid, signal.SIGKILL, group=True)
    _signal(pid, signal.SIGKILL)
    for child in stopped:
        _signal(child, signal.SIGKILL)


def _exit_status(process: BaseProcess) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# --- the pool, driven by the monitor thread ----------------------------------------------


@dataclass(eq=False)
class _Job:
    arch: dict[str, Any]
    budget: int | None
    future: Future[Result]
    started: float = 0.0  # when the worker had it and was ready (the trial's clock)


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    job: _Job | None = None
    deadline: float = 0.0  # monotonic; START_TIMEOUT_S while starting, then the trial's


@dataclass(eq=False)
class _Slot:
    worker: _Worker | None = None
    restart: bool = True  # start a worker for this slot without waiting for a job


@dataclass(eq=False)
class _Pool:
    """The workers and their monitor thread.

    Only the monitor thread touches the slots and the workers; other threads share only the
    queue of submitted jobs and the ``closed`` flag, under ``lock``, and wake the monitor
    through a pipe. The executor holds the pool, never the reverse, so that a forgotten
    executor is collected and its finaliser still stops the workers.
    """

    evaluator: _Payload
    threads: int
    trial_timeout: float | None
    slots: list[_Slot]
    cpus: int = 1
    shares: Any = None  # shared array of each slot's current threads, or None (fixed threads)
    epochs: Any = None  # shared array: slot i's trial at epoch [2i] of [2i + 1] (0: none)
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: deque[_Job] = field(default_factory=deque)
    closed: bool = False
    broken: str | None = None  # why workers cannot start (their own error): no more trials
    wake_r: int = -1
    wake_w: int = -1
    monitor: threading.Thread | None = None
    busy: frozenset[int] = frozenset()  # slots with a trial, as of the last re-split
    busy_since: float = 0.0  # when that set last changed (monotonic)
    grown: bool = False  # whether idle cores went to the running trials since then

    def submit(self, job: _Job) -> None:
        with self.lock:
            if self.broken is not None:
                raise WorkersUnavailable(f"worker processes cannot start: {self.broken}")
            if self.closed:
                raise NasforgeError("the process executor is closed; build a new one")
            self.queue.append(job)
            self._wake()

    def shutdown(self) -> None:
        """Stop the monitor (which fails the unfinished trials and kills the workers)."""
        with self.lock:
            if self.wake_w < 0:
                return
            self.closed = True
            self._wake()
        if self.monitor is not None and self.monitor is not threading.current_thread():
            self.monitor.join()
        with self.lock:
            for fd in (self.wake_r, self.wake_w):
                os.close(fd)
            self.wake_r = self.wake_w = -1
        self.evaluator.close()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self.wake_w, b"x")

    # Everything below runs in the monitor thread.

    def run(self) -> None:
        """The monitor: start workers, hand out jobs, collect results, enforce deadlines."""
        settle: list[tuple[Future[Result], Result]] = []
        reason = CLOSED_REASON
        try:
            while not self.closed:
                self._dispatch()
                self._split_cores(time.monotonic())
                workers = [s.worker for s in self.slots if s.worker is not None]
                ready = wait(
                    [self.wake_r]
                    + [w.conn for w in workers]
                    + [w.process.sentinel for w in workers],
                    timeout=self._timeout(workers),
                )
                if self.wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 4096):
                            pass
                for slot in self.slots:
                    worker = slot.worker
                    if worker is not None and worker.conn in ready:
                        self._receive(slot, worker, settle)
                    elif worker is not None and worker.process.sentinel in ready:
                        self._lost(slot, worker, None, settle)
                self._expire(time.monotonic(), settle)
                self._split_cores(time.monotonic())
                _settle_all(settle)
        except BaseException as exc:
            reason = f"the process executor's monitor thread failed ({type(exc).__name__}: {exc})"
            raise
        finally:
            with self.lock:
                self.closed = True
                jobs = list(self.queue)
                self.queue.clear()
            for slot in self.slots:
                if slot.worker is not None:
                    worker, slot.worker = slot.worker, None
                    if worker.job is not None:
                        jobs.append(worker.job)
                    self._stop(worker)
            settle += [(job.future, Result.failed(reason)) for job in jobs]
            _settle_all(settle)

    def _timeout(self, workers: list[_Worker]) -> float | None:
        deadlines = [w.deadline for w in workers if not w.ready or w.job is not None]
        if self.shares is not None and self.busy and not self.grown:
            deadlines.append(self.busy_since + GROW_DELAY_S)  # time to hand out idle cores
        first = min(deadlines, default=math.inf)
        return None if math.isinf(first) else max(0.0, first - time.monotonic())

    def _dispatch(self) -> None:
        """Start the workers the slots need, and hand queued jobs to free ones."""
        for slot in sorted(self.slots, key=lambda s: not (s.worker and s.worker.ready)):
            if slot.worker is None and (slot.restart or self.queue):
                slot.worker = self._start(self.slots.index(slot))
                slot.restart = False
            worker = slot.worker
            while worker is not None and worker.job is None:
                with self.lock:
                    if not self.queue:
                        break
                    job = self.queue.popleft()
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued
                job.started = time.monotonic()
                self._clear_epochs(self.slots.index(slot))  # before the worker can report
                with contextlib.suppress(OSError):  # it died: its sentinel reports that
                    worker.conn.send_bytes(pickle.dumps((job.arch, job.budget)))
                worker.job = job
                if worker.ready:
                    worker.deadline = job.started + (self.trial_timeout or math.inf)

    def _split_cores(self, now: float) -> None:
        """Publish each worker's share of the cores: the even split while every worker has a
        trial (or right after that changed), else the idle workers' cores spread over the
        running trials."""
        if self.shares is None:
            return
        busy = frozenset(
            i for i, s in enumerate(self.slots) if s.worker is not None and s.worker.job is not None
        )
        if busy != self.busy:
            self.busy, self.busy_since, self.grown = busy, now, False
            for i in range(len(self.slots)):  # a new trial must not wait for its cores
                self.shares[i] = self.threads
        if self.grown or not busy or now < self.busy_since + GROW_DELAY_S:
            return
        each, extra = divmod(self.cpus, len(busy))
        for rank, i in enumerate(sorted(busy)):
            self.shares[i] = max(self.threads, each + (rank < extra))
        self.grown = True

    def _clear_epochs(self, index: int) -> None:
        if self.epochs is not None:
            self.epochs[2 * index] = self.epochs[2 * index + 1] = 0

    def _start(self, index: int) -> _Worker:
        parent, child = get_context("spawn").Pipe(duplex=True)
        process = get_context("spawn").Process(
            target=_worker_main,
            args=(
                child,
                self.evaluator,
                self.threads,
                os.getpid(),
                self.shares,
                index,
                self.epochs,
            ),
            name="nasforge-worker",
        )
        process.start()
        child.close()
        return _Worker(process, parent, deadline=time.monotonic() + START_TIMEOUT_S)

    def _receive(
        self, slot: _Slot, worker: _Worker, settle: list[tuple[Future[Result], Result]]
    ) -> None:
        try:
            message = pickle.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):  # it died
            self._lost(slot, worker, None, settle)
            return
        except Exception as exc:  # a result this process cannot unpickle
            message = (_RESULT, Result.failed(f"the trial's result could not be read: {exc}"))
        now = time.monotonic()
        if message[0] == _READY:
            worker.ready = True
            if worker.job is not None:
                worker.job.started = now
                worker.deadline = now + (self.trial_timeout or math.inf)
        elif message[0] == _ERROR:
            self._lost(slot, worker, message[1], settle)
        elif worker.job is not None:
            settle.append((worker.job.future, message[1]))
            worker.job = None
            self._clear_epochs(self.slots.index(slot))

    def _lost(
        self,
        slot: _Slot,
        worker: _Worker,
        error: str | None,
        settle: list[tuple[Future[Result], Result]],
    ) -> None:
        """The worker died or failed to start: fail its trial, reap it, free the slot."""
        self._stop(worker)
        slot.worker = None
        self._clear_epochs(self.slots.index(slot))
        job = worker.job
        if not worker.ready:  # no restart until a job needs the slot: no busy loop
            status = _exit_status(worker.process)
            why = error or f"it exited before it was ready ({status}; see its standard error)"
            # killed from outside (kill -9, the OOM killer) while starting: the trial is lost
            # with it and runs again; an error of its own would only happen again, so the
            # pool takes no more trials (the search stops; a resume runs them again)
            killed = error is None and (worker.process.exitcode or 0) < 0
            if not killed:
                with self.lock:
                    self.broken = why
                    queued = list(self.queue)
                    self.queue.clear()
                settle += [
                    (j.future, Result.failed(f"not run: {why}", lost=True, started=False))
                    for j in queued
                ]
            if job is not None:
                reason = f"the worker process could not start ({why})"
                # not charged an attempt only when the search stops here: a worker killed from
                # outside while starting is replaced, and its retries must stay bounded
                lost = Result.failed(reason, lost=True, started=killed)
                settle.append((job.future, lost))
            return
        slot.restart = job is not None
        if job is not None:
            reason = f"the worker process died during the trial ({_exit_status(worker.process)})"
            elapsed = time.monotonic() - job.started
            settle.append((job.future, Result.failed(reason, wall_time=elapsed, lost=True)))

    def _expire(self, now: float, settle: list[tuple[Future[Result], Result]]) -> None:
        """Kill the workers whose trial (or start) is past its deadline."""
        for slot in self.slots:
            worker = slot.worker
            if worker is None or now < worker.deadline or (worker.ready and worker.job is None):
                continue
            if not worker.ready:
                self._lost(slot, worker, f"not ready within {START_TIMEOUT_S:g} s", settle)
                continue
            job = worker.job
            assert job is not None and self.trial_timeout is not None
            self._stop(worker)
            slot.worker, slot.restart = None, True
            reason = (
                f"timed out after {self.trial_timeout:g} s; the trial's process tree was killed"
            )
            settle.append((job.future, Result.failed(reason, wall_time=now - job.started)))

    @staticmethod
    def _stop(worker: _Worker) -> None:
        """Kill the worker's process tree (what is left of it), reap it, close its pipe."""
        _kill_tree(worker.process.pid or 0)
        worker.process.join(_JOIN_TIMEOUT_S)
        worker.conn.close()


def _settle_all(settle: list[tuple[Future[Result], Result]]) -> None:
    """Resolve futures outside the lock (their callbacks may submit again)."""
    while settle:
        future, result = settle.pop(0)
        with contextlib.suppress(InvalidStateError):  # cancelled by its owner
            future.set_result(result)


# --- the executor ------------------------------------------------------------------------


class ProcessExecutor(Executor):
    """Evaluates in ``workers`` local processes (started with ``spawn``), one trial each.

    The evaluator (with its data) is sent to each worker once, when the worker starts; each
    submission then carries only the architecture, and its result comes back over the same
    pipe. The machine's CPU threads are split evenly between workers so that they do not
    oversubscribe the cores. Submissions beyond ``capacity`` queue; ``submit`` never blocks.
    Worker ``i`` knows its number: an evaluator on device ``cuda`` (or ``auto`` on a machine
    with GPUs) trains there on GPU ``i % GPUs``, so the machine's GPUs are shared out.

    Failures cost only their own trial (a FAILED result, never an exception of the future):

    * the candidate raises (including ``MemoryError``): FAILED with the exception, and the
      worker goes on;
    * the worker dies (a signal, the OOM killer, ``os._exit``): FAILED with ``lost=True``
      (the search may retry it), and the slot gets a fresh worker;
    * the trial runs longer than ``trial_timeout``: the worker's process tree is killed, and
      the trial is FAILED (not lost: it would hang again);
    * the worker cannot start (e.g. the evaluator cannot be unpickled there): the trial that
      needed it is FAILED, and the next one tries a fresh worker.

    Args:
        evaluator: What every worker evaluates with (it must pickle).
        workers: Number of worker processes (>= 1).
        threads: Torch threads per worker, fixed. By default each worker gets CPUs // workers
            (at least 1), and while some workers are idle their cores go to the trials still
            running (taken up between epochs; costs such as latency are still measured at
            CPUs // workers). Results then do not depend on the seed alone: a trial's floating
            point sums may differ in their last bits with the threads it ran on.
        trial_timeout: Seconds a trial may run (from when its worker is ready), or ``None``.

    Raises:
        ConfigError: For a bad option, or an evaluator that cannot be pickled.
    """

    kind = "process"
    parallel = True
    isolated = True

    @classmethod
    def create(
        cls,
        evaluator: Evaluator,
        *,
        workers: int | None = None,
        address: str | None = None,
        trial_timeout: float | None = None,
    ) -> ProcessExecutor:
        """A pool of ``workers`` processes (default: one per CPU this process may use)."""
        cls.check(workers=workers, address=address, trial_timeout=trial_timeout)
        if workers is None:
            affinity = getattr(os, "sched_getaffinity", None)
            workers = len(affinity(0)) if affinity else (os.cpu_count() or 1)
        return cls(evaluator, workers=workers, trial_timeout=trial_timeout)

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        workers: int,
        threads: int | None = None,
        trial_timeout: float | None = None,
    ) -> None:
        refuse_while_a_worker_starts()
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ConfigError(f"threads must be an integer >= 1 (or None), got {threads!r}")
        check_trial_timeout(trial_timeout)
        try:
            evaluator_bytes = pickle.dumps(evaluator, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ConfigError(
                f"the evaluator must be picklable to run in worker processes: {exc}"
            ) from None
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.threads = threads or max(1, (cpus or 1) // workers)
        self.capacity = workers
        self.evaluator = evaluator
        self.trial_timeout = trial_timeout
        # given threads stay fixed; the default even split lends idle workers' cores out
        self.adaptive = threads is None and workers > 1
        shares = get_context("spawn").RawArray("i", workers) if self.adaptive else None
        pool = _Pool(
            _Payload(evaluator_bytes),
            self.threads,
            trial_timeout,
            [_Slot() for _ in range(workers)],
            cpus=cpus or 1,
            shares=shares,
            epochs=get_context("spawn").RawArray("i", 2 * workers),
        )
        pool.wake_r, pool.wake_w = os.pipe()
        os.set_blocking(pool.wake_r, False)
        os.set_blocking(pool.wake_w, False)
        pool.monitor = threading.Thread(target=pool.run, name="nasforge-monitor", daemon=True)
        self._pool = pool
        self._close: Callable[[], None] = weakref.finalize(self, pool.shutdown)
        pool.monitor.start()

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        """Queue ``arch`` for the next free worker; its future resolves to a Result."""
        future: Future[Result] = Future()
        self._pool.submit(_Job(arch.to_dict(), budget, future))
        return future

    def epochs(self) -> list[tuple[int, int]]:
        """``(epoch done, planned)`` of each worker's trial that has finished an epoch."""
        values = list(self._pool.epochs)
        return [(values[i], values[i + 1]) for i in range(0, len(values), 2) if values[i + 1] > 0]

    def close(self) -> None:
        """Fail the trials not finished, kill every worker's process tree and reap it."""
        self._close()

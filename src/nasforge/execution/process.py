"""Local worker processes, each with its share of the CPU threads."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, evaluate_safely
from nasforge.result import Result

__all__ = ["ProcessExecutor"]

_worker_evaluator: Evaluator | None = None


def _init_worker(evaluator: Evaluator, threads: int) -> None:
    global _worker_evaluator
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    _worker_evaluator = evaluator


def _run(arch: dict[str, Any], budget: int | None) -> Result:
    assert _worker_evaluator is not None, "worker not initialised"
    return evaluate_safely(_worker_evaluator, Architecture.from_dict(arch), budget)


class ProcessExecutor(Executor):
    """Evaluates in ``workers`` local processes (started with ``spawn``).

    The evaluator (with its data) is sent to each worker once, when the worker starts; each
    submission then carries only the architecture. The machine's CPU threads are split evenly
    between workers so that they do not oversubscribe the cores.

    Args:
        evaluator: What every worker evaluates with.
        workers: Number of worker processes (>= 1).
        threads: Torch threads per worker (default: CPUs // workers, at least 1).
    """

    def __init__(self, evaluator: Evaluator, *, workers: int, threads: int | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.threads = threads or max(1, (cpus or 1) // workers)
        self.capacity = workers
        self.evaluator = evaluator
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.capacity,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.evaluator, self.threads),
        )

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        outer: Future[Result] = Future()
        try:
            inner = self._pool.submit(_run, arch.to_dict(), budget)
        except BrokenProcessPool:
            self._pool = self._start()
            inner = self._pool.submit(_run, arch.to_dict(), budget)

        def relay(done: Future[Result]) -> None:
            try:
                outer.set_result(done.result())
            except BrokenProcessPool:
                outer.set_result(Result.failed("the worker process died during the trial"))
            except BaseException as exc:
                outer.set_result(Result.failed(f"{type(exc).__name__}: {exc}"))

        inner.add_done_callback(relay)
        return outer

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

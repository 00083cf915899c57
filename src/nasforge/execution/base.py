"""The executor contract and the in-process executor."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from multiprocessing import current_process

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.result import Result

__all__ = [
    "Executor",
    "InlineExecutor",
    "check_trial_timeout",
    "evaluate_safely",
    "refuse_while_a_worker_starts",
]


def evaluate_safely(evaluator: Evaluator, arch: Architecture, budget: int | None) -> Result:
    """Run one evaluation; an exception of the candidate becomes a FAILED result."""
    start = time.perf_counter()
    try:
        return evaluator.evaluate(arch, budget)
    except ConfigError:
        raise  # misuse (e.g. an architecture of another space) stops the search
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".strip()
        return Result.failed(reason, wall_time=time.perf_counter() - start)


def check_trial_timeout(trial_timeout: object) -> None:
    """Check a per-trial timeout: ``None`` (no limit) or a finite number of seconds > 0.

    Raises:
        ConfigError: For anything else, saying what is accepted.
    """
    if trial_timeout is None:
        return
    if (
        isinstance(trial_timeout, bool)
        or not isinstance(trial_timeout, int | float)
        or not 0 < trial_timeout < math.inf
    ):
        raise ConfigError(
            "the trial timeout must be a finite number of seconds > 0 (or None for no limit), "
            f"got {trial_timeout!r}"
        )


class Executor(ABC):
    """Runs evaluations and hands back futures of their results.

    Contract:
        * ``submit`` never blocks longer than the evaluation itself; at most ``capacity``
          submissions should be in flight at once.
        * A future resolves to a ``Result``; a candidate's exception becomes a FAILED result
          with the reason, never an exception of the future (a lost worker is reported as a
          FAILED result too).
        * ``close`` waits for nothing: evaluations still running are abandoned.
    """

    capacity: int = 1

    @abstractmethod
    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        """Start evaluating ``arch`` (at fidelity ``budget``)."""

    def close(self) -> None:  # noqa: B027
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Evaluates in the calling thread, one at a time (the default)."""

    capacity = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        future: Future[Result] = Future()
        future.set_result(evaluate_safely(self.evaluator, arch, budget))
        return future


def refuse_while_a_worker_starts() -> None:
    """Raise if this process is a worker still starting, running the main script again.

    Worker processes are started with ``spawn``, which runs the search's main script again
    (as ``__mp_main__``) before the worker's own code. A script that starts a search at
    import would start another one there, writing to the same store; it is stopped here,
    with the fix, before it touches anything.
    """
    if getattr(current_process(), "_inheriting", False):
        raise ConfigError(
            "a search was started inside a nasforge worker process while it was starting: "
            "worker processes run the main script again (Python's 'spawn' start method), "
            "and this script starts a search when it is run. Put the code that starts the "
            "search under 'if __name__ == \"__main__\":'"
        )

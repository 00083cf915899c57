"""The executor contract and the in-process executor."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.result import Result

__all__ = ["Executor", "InlineExecutor", "check_trial_timeout", "evaluate_safely"]


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

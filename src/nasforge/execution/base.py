"""The executor contract, the executor registry and the in-process executor."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from multiprocessing import current_process
from typing import ClassVar

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidResultError
from nasforge.evaluators.base import Evaluator
from nasforge.registry import Registry
from nasforge.result import Result

__all__ = [
    "EXECUTORS",
    "Executor",
    "InlineExecutor",
    "check_trial_timeout",
    "check_workers",
    "evaluate_safely",
    "refuse_while_a_worker_starts",
    "register_executor",
]


def evaluate_safely(evaluator: Evaluator, arch: Architecture, budget: int | None) -> Result:
    """Run one evaluation; an exception of the candidate becomes a FAILED result."""
    start = time.perf_counter()
    try:
        result = evaluator.evaluate(arch, budget)
        if not isinstance(result, Result):
            raise InvalidResultError(
                f"evaluate() returned {type(result).__name__}; it must return a Result"
            )
        return result
    except InvalidResultError as exc:  # the evaluator's answer for this candidate
        return Result.failed(f"invalid result: {exc}", wall_time=time.perf_counter() - start)
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


def check_workers(workers: object) -> None:
    """Check a worker count: ``None`` (the executor's default) or an integer >= 1.

    Raises:
        ConfigError: For anything else.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")


class Executor(ABC):
    """Runs evaluations and hands back futures of their results.

    Contract:
        * ``submit`` never blocks longer than the evaluation itself; at most ``capacity``
          submissions should be in flight at once.
        * A future resolves to a ``Result``; a candidate's exception becomes a FAILED result
          with the reason, never an exception of the future (a lost worker is reported as a
          FAILED result too).
        * ``close`` waits for nothing: evaluations still running are abandoned.
        * Executors are registered by :attr:`kind` (:data:`EXECUTORS`); :meth:`check` tells
          whether settings fit a kind without starting anything, and :meth:`create` starts
          one. What a kind can do is said by :attr:`parallel` (several trials at once),
          :attr:`isolated` (a trial runs outside the search's process, so that it can be
          killed: timeouts) and :attr:`addressed` (it joins a cluster at an address).

    Attributes:
        kind: The registered name (``--executor KIND``).
        capacity: Trials it runs at once.
    """

    kind: ClassVar[str]
    parallel: ClassVar[bool] = False
    isolated: ClassVar[bool] = False
    addressed: ClassVar[bool] = False
    capacity: int = 1

    @classmethod
    def check(
        cls,
        *,
        workers: int | None = None,
        address: str | None = None,
        trial_timeout: float | None = None,
    ) -> None:
        """Check settings for this kind without starting anything.

        Raises:
            ConfigError: For bad workers, an address for a kind that joins none, a bad
                timeout, or one for a kind whose trials run in the search's own process.
        """
        if address is not None and not cls.addressed:
            kinds = _kinds(addressed=True)
            raise ConfigError(
                f"a cluster address ({address!r}) applies to the {' and '.join(kinds)} executor "
                f"only; use {' or '.join(f'--executor {n}' for n in kinds)} (got --executor "
                f"{cls.kind})"
            )
        check_workers(workers)
        if not cls.parallel and workers not in (None, 1):
            others = " or ".join(f"--executor {n}" for n in _kinds(parallel=True))
            raise ConfigError(
                f"the {cls.kind} executor runs one trial at a time, got workers={workers}; use "
                f"{others} for parallel trials"
            )
        check_trial_timeout(trial_timeout)
        if not cls.isolated and trial_timeout is not None:
            others = " or ".join(_kinds(isolated=True))
            raise ConfigError(
                f"--trial-timeout needs --executor {others}: a trial running in the search's "
                "own process cannot be killed without killing the search"
            )

    @classmethod
    def create(
        cls,
        evaluator: Evaluator,
        *,
        workers: int | None = None,
        address: str | None = None,
        trial_timeout: float | None = None,
    ) -> Executor:
        """Start an executor of this kind evaluating with ``evaluator`` (checked settings;
        ``workers=None`` for the kind's default). A registered executor implements it; one
        used only from Python (``Experiment.run(executor=...)``) need not.

        Raises:
            ConfigError: As :meth:`check`.
        """
        raise NotImplementedError(
            f"{cls.__name__} cannot be made by name: a registered executor implements create()"
        )

    @abstractmethod
    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        """Start evaluating ``arch`` (at fidelity ``budget``)."""

    def epochs(self) -> list[tuple[int, int]]:
        """``(epoch done, epochs planned)`` of each trial training now, for a live display
        (safe to call from another thread); empty where the kind does not follow them."""
        return []

    def close(self) -> None:  # noqa: B027
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Evaluates in the calling thread, one at a time."""

    kind = "inline"
    capacity = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self._running = False

    @classmethod
    def create(
        cls,
        evaluator: Evaluator,
        *,
        workers: int | None = None,
        address: str | None = None,
        trial_timeout: float | None = None,
    ) -> InlineExecutor:
        cls.check(workers=workers, address=address, trial_timeout=trial_timeout)
        return cls(evaluator)

    def submit(self, arch: Architecture, budget: int | None = None) -> Future[Result]:
        from nasforge.train import progress

        future: Future[Result] = Future()
        progress.reset()
        self._running = True
        try:
            future.set_result(evaluate_safely(self.evaluator, arch, budget))
        finally:
            self._running = False
            progress.reset()
        return future

    def epochs(self) -> list[tuple[int, int]]:
        """The epochs of the trial this process is training, if any."""
        from nasforge.train import progress

        done, planned = progress.current()
        return [(done, planned)] if self._running and planned else []


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


EXECUTORS: Registry[type[Executor]] = Registry("executor")
"""The registered executor classes, by kind."""


def register_executor(executor: type[Executor], *, summary: str = "") -> None:
    """Make an executor class available by its :attr:`~Executor.kind` (``--executor KIND``).

    Raises:
        ConfigError: If the kind is taken.
    """
    EXECUTORS.register(executor.kind, lambda: executor, summary=summary)


def _kinds(**able: bool) -> list[str]:
    """The registered kinds whose class attributes (``parallel``, ...) are as ``able`` says."""
    kinds = [EXECUTORS.create(name) for name in EXECUTORS.names()]
    return [k.kind for k in kinds if all(getattr(k, a) == v for a, v in able.items())]

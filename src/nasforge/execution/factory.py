"""Build an executor by name (what ``--executor``/``--ray-address`` resolve through), and
decide, in one place, which one a search uses when none is named."""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import EXECUTORS, Executor

__all__ = ["ExecutorChoice", "check_executor", "default_executor", "make_executor"]


@dataclass(frozen=True, slots=True)
class ExecutorChoice:
    """The executor a search runs its trials on, and how many at once."""

    kind: str
    workers: int | None


def default_executor(
    *,
    trains: bool,
    workers: int | None,
    ray_address: str | None,
    trial_timeout: float | None,
) -> ExecutorChoice:
    """The executor of a search that names none, and its workers.

    * An address means a cluster: ``ray``.
    * Training (``trains``), several workers or a trial timeout mean ``process``: each trial
      runs in a worker process, so that a crash, an out-of-memory kill or a timeout costs one
      trial, not the search; one worker unless more are asked for, so that the same seed
      gives the same search.
    * Otherwise (a table look-up takes microseconds) ``inline``: the search's own process,
      with no worker to start.
    """
    if ray_address:
        return ExecutorChoice("ray", workers)
    several = isinstance(workers, int) and workers > 1
    if trains or several or trial_timeout is not None:
        return ExecutorChoice("process", 1 if workers is None else workers)
    return ExecutorChoice("inline", workers)


def check_executor(
    kind: str,
    *,
    workers: int | None,
    ray_address: str | None = None,
    trial_timeout: float | None = None,
) -> None:
    """Check executor settings without starting anything (see :func:`make_executor`).

    Raises:
        ConfigError: For an unknown kind (listing the registered ones), bad workers, an
            address for a kind that joins no cluster, or a bad ``trial_timeout`` (or one for
            a kind whose trials run in the search's own process).
    """
    EXECUTORS.create(kind).check(workers=workers, address=ray_address, trial_timeout=trial_timeout)


def make_executor(
    kind: str,
    evaluator: Evaluator,
    *,
    workers: int | None,
    ray_address: str | None = None,
    trial_timeout: float | None = None,
) -> Executor:
    """The executor of ``kind`` evaluating with ``evaluator`` (close it when done).

    Args:
        kind: A registered executor: ``"inline"`` (in the calling thread, one trial at a
            time), ``"process"`` (local worker processes) or ``"ray"`` (a Ray cluster).
        evaluator: What the trials are evaluated with.
        workers: Trials in flight; ``None`` for the kind's default (inline: 1; process: this
            machine's CPUs; ray: the cluster's CPUs).
        ray_address: For ``kind="ray"`` only: ``"auto"``, ``"HOST:PORT"`` of a head node, or
            ``None`` to start a local Ray bound to 127.0.0.1 (stopped with the executor).
        trial_timeout: Seconds a trial may run before its worker is killed and the trial
            fails (``None``: no limit); needs ``kind="process"`` or ``"ray"``.

    Raises:
        ConfigError: As :func:`check_executor`; also Ray not installed, or no Ray cluster at
            the address.
    """
    return EXECUTORS.create(kind).create(
        evaluator, workers=workers, address=ray_address, trial_timeout=trial_timeout
    )

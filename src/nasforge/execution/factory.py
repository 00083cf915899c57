"""Build an executor by name: what ``--executor``/``--ray-address`` resolve through."""

from __future__ import annotations

from nasforge.errors import ConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, check_trial_timeout

__all__ = ["EXECUTORS", "check_executor", "make_executor"]

EXECUTORS = ("inline", "process", "ray")
"""The executor kinds, in the order the CLI lists them."""


def make_executor(
    kind: str,
    evaluator: Evaluator,
    *,
    workers: int | None,
    ray_address: str | None = None,
    trial_timeout: float | None = None,
) -> Executor | None:
    """The executor of ``kind`` evaluating with ``evaluator``.

    Args:
        kind: ``"inline"`` (in the calling thread, one trial at a time), ``"process"`` (local
            worker processes) or ``"ray"`` (a Ray cluster).
        evaluator: What the trials are evaluated with.
        workers: Trials in flight; ``None`` for the kind's default (inline: 1; process: this
            machine's CPUs; ray: the cluster's CPUs).
        ray_address: For ``kind="ray"`` only: ``"auto"``, ``"HOST:PORT"`` of a head node, or
            ``None`` to start a local Ray bound to 127.0.0.1 (stopped with the executor).
        trial_timeout: Seconds a trial may run before its worker is killed and the trial
            fails (``None``: no limit); needs ``kind="process"`` or ``"ray"``.

    Returns:
        The executor (close it when done), or ``None`` for ``"inline"``:
        :meth:`~nasforge.experiment.Experiment.run` then evaluates in the calling thread.

    Raises:
        ConfigError: For an unknown kind, bad workers, a ``ray_address`` without
            ``kind="ray"``, a bad ``trial_timeout`` or one with ``kind="inline"``, Ray not
            installed, or no Ray cluster at the address.
    """
    check_executor(kind, workers=workers, ray_address=ray_address, trial_timeout=trial_timeout)
    if kind == "inline":
        return None
    if kind == "process":
        import os

        from nasforge.execution.process import ProcessExecutor

        if workers is None:
            affinity = getattr(os, "sched_getaffinity", None)
            workers = len(affinity(0)) if affinity else (os.cpu_count() or 1)
        return ProcessExecutor(evaluator, workers=workers, trial_timeout=trial_timeout)
    from nasforge.execution.ray import RayExecutor  # imports ray

    return RayExecutor(evaluator, address=ray_address, workers=workers, trial_timeout=trial_timeout)


def check_executor(
    kind: str,
    *,
    workers: int | None,
    ray_address: str | None = None,
    trial_timeout: float | None = None,
) -> None:
    """Check the executor settings without starting anything (see :func:`make_executor`).

    Raises:
        ConfigError: For an unknown kind, bad workers, a ``ray_address`` without ``ray``, or
            a bad ``trial_timeout`` (or one with ``inline``).
    """
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
    if ray_address is not None and kind != "ray":
        raise ConfigError(
            f"a Ray address ({ray_address!r}) applies to the ray executor only; use "
            f"--executor ray (got --executor {kind})"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    if kind == "inline" and workers not in (None, 1):
        raise ConfigError(
            f"the inline executor runs one trial at a time, got workers={workers}; use "
            "--executor process (local processes) or --executor ray for parallel trials"
        )
    check_trial_timeout(trial_timeout)
    if kind == "inline" and trial_timeout is not None:
        raise ConfigError(
            "--trial-timeout needs --executor process or ray: a trial running in the search's "
            "own process cannot be killed without killing the search"
        )

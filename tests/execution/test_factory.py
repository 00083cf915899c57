"""Executors built by name, as ``--executor``/``--ray-address`` ask for them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution import EXECUTORS, InlineExecutor, make_executor
from nasforge.execution.factory import check_executor
from nasforge.execution.process import ProcessExecutor


@pytest.fixture(scope="module")
def evaluator() -> NasBenchGraphEvaluator:
    return NasBenchGraphEvaluator(dataset="cora")


def test_unknown_kind_lists_the_valid_ones(evaluator: NasBenchGraphEvaluator) -> None:
    with pytest.raises(ConfigError, match="unknown executor 'dask'; valid: inline, process, ray"):
        make_executor("dask", evaluator, workers=None)
    assert EXECUTORS.names() == ["inline", "process", "ray"]


@pytest.mark.parametrize("kind", ["inline", "process"])
def test_a_ray_address_needs_the_ray_executor(kind: str, evaluator: NasBenchGraphEvaluator) -> None:
    with pytest.raises(ConfigError, match=f"applies to the ray executor only.*--executor {kind}"):
        make_executor(kind, evaluator, workers=None, ray_address="auto")


def test_inline_is_a_real_executor(evaluator: NasBenchGraphEvaluator) -> None:
    for workers in (None, 1):
        executor = make_executor("inline", evaluator, workers=workers)
        assert isinstance(executor, InlineExecutor) and executor.capacity == 1
        arch = evaluator.space.sample(np.random.default_rng(0))
        assert executor.submit(arch).result().metrics["val_acc"] > 0
    with pytest.raises(ConfigError, match="inline executor runs one trial at a time"):
        make_executor("inline", evaluator, workers=2)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5])
def test_bad_workers_are_refused(workers: object, evaluator: NasBenchGraphEvaluator) -> None:
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        make_executor("process", evaluator, workers=workers)  # type: ignore[arg-type]


def test_process_executor_with_its_workers(evaluator: NasBenchGraphEvaluator) -> None:
    executor = make_executor("process", evaluator, workers=3)
    try:
        assert isinstance(executor, ProcessExecutor) and executor.capacity == 3
    finally:
        assert executor is not None
        executor.close()


@pytest.mark.parametrize("timeout", [0, -2.5, float("nan"), float("inf"), True, "30"])
@pytest.mark.parametrize("kind", ["process", "ray"])
def test_bad_trial_timeouts_are_refused_before_anything_starts(
    kind: str, timeout: object, evaluator: NasBenchGraphEvaluator
) -> None:
    with pytest.raises(ConfigError, match=r"finite number of seconds > 0 \(or None"):
        check_executor(kind, workers=2, trial_timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"finite number of seconds > 0 \(or None"):
        make_executor(kind, evaluator, workers=2, trial_timeout=timeout)  # type: ignore[arg-type]


def test_a_trial_in_the_searchs_own_process_cannot_time_out(
    evaluator: NasBenchGraphEvaluator,
) -> None:
    message = (
        "--trial-timeout needs --executor process or ray: a trial running in the search's own "
        "process cannot be killed without killing the search"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_executor("inline", workers=None, trial_timeout=60)
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_executor("inline", evaluator, workers=1, trial_timeout=60)


def test_the_process_executor_gets_its_trial_timeout(evaluator: NasBenchGraphEvaluator) -> None:
    executor = make_executor("process", evaluator, workers=1, trial_timeout=2.5)
    try:
        assert isinstance(executor, ProcessExecutor) and executor.trial_timeout == 2.5
    finally:
        assert executor is not None
        executor.close()

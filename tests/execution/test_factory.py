"""Executors built by name, as ``--executor``/``--ray-address`` ask for them."""

from __future__ import annotations

import pytest

from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution import EXECUTORS, make_executor
from nasforge.execution.process import ProcessExecutor


@pytest.fixture(scope="module")
def evaluator() -> NasBenchGraphEvaluator:
    return NasBenchGraphEvaluator(dataset="cora")


def test_unknown_kind_lists_the_valid_ones(evaluator: NasBenchGraphEvaluator) -> None:
    with pytest.raises(ConfigError, match="unknown executor 'dask'; valid: inline, process, ray"):
        make_executor("dask", evaluator, workers=None)
    assert EXECUTORS == ("inline", "process", "ray")


@pytest.mark.parametrize("kind", ["inline", "process"])
def test_a_ray_address_needs_the_ray_executor(kind: str, evaluator: NasBenchGraphEvaluator) -> None:
    with pytest.raises(ConfigError, match=f"applies to the ray executor only.*--executor {kind}"):
        make_executor(kind, evaluator, workers=None, ray_address="auto")


def test_inline_is_the_experiments_own_loop(evaluator: NasBenchGraphEvaluator) -> None:
    assert make_executor("inline", evaluator, workers=None) is None
    assert make_executor("inline", evaluator, workers=1) is None
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

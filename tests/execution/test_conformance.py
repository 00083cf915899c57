"""The conformance suite every registered executor must pass: its settings are checked by
what it says it can do, and the results it hands back are the evaluator's."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution.base import EXECUTORS, Executor
from nasforge.execution.factory import default_executor, make_executor

KINDS = EXECUTORS.names()


@pytest.fixture(scope="module")
def evaluator() -> NasBenchGraphEvaluator:
    return NasBenchGraphEvaluator(dataset="cora")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> type[Executor]:
    return EXECUTORS.create(request.param)


def test_settings_are_checked_by_what_the_kind_can_do(kind: type[Executor]) -> None:
    assert EXECUTORS.summary(kind.kind)
    kind.check(workers=None)
    kind.check(workers=1)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
            kind.check(workers=bad)  # type: ignore[arg-type]
    if kind.parallel:
        kind.check(workers=3)
    else:
        with pytest.raises(ConfigError, match="runs one trial at a time"):
            kind.check(workers=3)
    if kind.isolated:
        kind.check(trial_timeout=2.5)
    else:
        with pytest.raises(ConfigError, match="--trial-timeout needs --executor"):
            kind.check(trial_timeout=2.5)
    if not kind.addressed:
        with pytest.raises(ConfigError, match=f"only; use .* \\(got --executor {kind.kind}\\)"):
            kind.check(address="127.0.0.1:6379")


@pytest.fixture
def executor(kind: type[Executor], evaluator: NasBenchGraphEvaluator) -> Iterator[Executor]:
    running = make_executor(kind.kind, evaluator, workers=1)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.slow
def test_results_are_the_evaluators(
    executor: Executor, kind: type[Executor], evaluator: NasBenchGraphEvaluator
) -> None:
    assert isinstance(executor, kind) and executor.capacity == 1
    archs = evaluator.space.sample_distinct(3, np.random.default_rng(0))
    futures = [executor.submit(arch) for arch in archs]
    for arch, future in zip(archs, futures, strict=True):
        got, direct = future.result(timeout=300), evaluator.evaluate(arch)
        assert got.status is direct.status
        assert got.metrics == direct.metrics and got.test_metrics == direct.test_metrics


def test_the_default_executor_says_why() -> None:
    assert default_executor(trains=False, workers=None, ray_address=None, trial_timeout=None)
    choice = default_executor(trains=False, workers=None, ray_address=None, trial_timeout=None)
    assert (choice.kind, choice.workers) == ("inline", None)
    choice = default_executor(trains=True, workers=None, ray_address=None, trial_timeout=None)
    assert (choice.kind, choice.workers) == ("process", 1)
    choice = default_executor(trains=False, workers=4, ray_address=None, trial_timeout=None)
    assert (choice.kind, choice.workers) == ("process", 4)
    choice = default_executor(trains=False, workers=None, ray_address=None, trial_timeout=9.0)
    assert choice.kind == "process"
    choice = default_executor(trains=True, workers=2, ray_address="auto", trial_timeout=None)
    assert (choice.kind, choice.workers) == ("ray", 2)
    assert all(
        default_executor(trains=t, workers=w, ray_address=a, trial_timeout=None).kind in KINDS
        for t in (True, False)
        for w in (None, 1, 3)
        for a in (None, "auto")
    )

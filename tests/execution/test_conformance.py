"""The conformance suite every registered executor must pass: its settings are checked by
what it says it can do, and the results it hands back are the evaluator's."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge.errors import ConfigError
from nasforge.execution.base import EXECUTORS, Executor
from nasforge.execution.factory import default_executor

KINDS = EXECUTORS.names()


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


_RESULTS = """
import json, sys
import numpy as np
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.execution.factory import make_executor

if __name__ == "__main__":
    evaluator = NasBenchGraphEvaluator(dataset="cora")
    executor = make_executor(sys.argv[1], evaluator, workers=1)
    try:
        archs = evaluator.space.sample_distinct(3, np.random.default_rng(0))
        futures = [executor.submit(arch) for arch in archs]
        got = [f.result(timeout=300) for f in futures]
    finally:
        executor.close()
    direct = [evaluator.evaluate(a) for a in archs]
    print(json.dumps({
        "kind": type(executor).kind,
        "capacity": executor.capacity,
        "same": [
            (g.status, g.metrics, g.test_metrics) == (d.status, d.metrics, d.test_metrics)
            for g, d in zip(got, direct, strict=True)
        ],
    }))
"""


@pytest.mark.slow
def test_results_are_the_evaluators(kind: type[Executor], tmp_path: Path) -> None:
    """Each kind runs in a fresh interpreter (a cluster kind starts its own there), evaluates
    three architectures and hands back exactly what the evaluator gives."""
    script = tmp_path / "results.py"
    script.write_text(_RESULTS)
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, str(script), kind.kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.splitlines()[-1])
    assert answer == {"kind": kind.kind, "capacity": 1, "same": [True, True, True]}


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

"""The warm start: proxy-ranked first candidates for every strategy, on real data and stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import nasforge
from nasforge.api import SearchPlan, experiment, make_strategy, plan
from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.evaluators.proxies import rank_by_proxy, rank_sample
from nasforge.proxies import make_batch, proxy_function
from nasforge.store.base import TrialRecord
from nasforge.strategies.base import black_box_strategies
from nasforge.strategies.warm_start import WarmStart

FAST = {"epochs": 2, "executor": "inline", "seed": 0}

BLACK_BOX = black_box_strategies()
"""Every registered strategy driven by ask and tell alone (one-shot ones need a phase)."""


def _plan(task: str, strategy: str = "random", **settings: Any) -> SearchPlan:
    return plan(task=task, strategy=strategy, name="warm", **{**FAST, **settings})


def _warm(settings: SearchPlan) -> WarmStart:
    assert isinstance(settings.strategy, WarmStart)
    return settings.strategy


def _top(settings: SearchPlan, pool: int, size: int, proxy: str = "synflow") -> list[str]:
    """The pool's best ``size`` keys by the library's own ranking."""
    ranked = rank_by_proxy(settings.space, settings.evaluator, n_samples=pool, proxy=proxy, seed=0)
    return [settings.space.canonical_key(arch) for arch, _ in ranked[:size]]


def _keys(db: Path) -> list[str]:
    return [t.key for t in nasforge.trials("warm", db=db)]


def _replays(settings: SearchPlan, strategy: str, stored: list[TrialRecord], warm: int) -> None:
    """After the warm trials, a fresh ``strategy`` told every result proposes the stored ones:
    the warm start told it everything and then let it search."""
    fresh = make_strategy(strategy, settings.space, objective=settings.objective, seed=0)
    for trial in stored[:warm]:
        fresh.tell(trial.arch, trial.to_result().visible())
    for trial in stored[warm:]:
        (arch,) = fresh.ask(1)
        assert settings.space.canonical_key(arch) == trial.key
        fresh.tell(arch, trial.to_result().visible())


@pytest.mark.parametrize(
    ("task", "strategy"),
    [("synthetic", "random"), ("tabular:breast_cancer", "evolution"), ("synthetic", "bananas")],
)
def test_first_trials_are_the_pools_top_by_the_proxy(
    task: str, strategy: str, db_path: Path
) -> None:
    settings = _plan(task, strategy, budget=6, warm_start=3, warm_pool=8)
    settings.run(db=db_path)
    stored = nasforge.trials("warm", db=db_path)
    assert [t.key for t in stored[:3]] == _top(settings, 8, 3)
    assert len({t.key for t in stored}) == 6
    _replays(settings, strategy, stored, 3)
    assert _warm(settings).scored == 8


def test_the_ranking_is_the_proxy_of_the_model_the_trainer_builds(db_path: Path) -> None:
    """Against ``rank_sample`` (what ``nasforge proxies`` prints) and the proxy function on
    the model built as the training evaluator builds it."""
    settings = _plan("image:digits", budget=2, warm_start=2, warm_pool=5, warm_proxy="snip")
    settings.run(db=db_path)
    rows = rank_sample("image:digits", n=5, proxies=["snip"], seed=0)
    assert _keys(db_path) == [row.key for row in rows[:2]]

    evaluator: Any = settings.evaluator
    batch = make_batch(evaluator.task, seed=0, batch_size=64, max_rows=256)
    values = {}
    for row in rows:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = settings.space.build(row.arch, evaluator.task, evaluator.hyper)  # type: ignore[attr-defined]
        values[row.key] = proxy_function("snip")(model, batch)
    assert _keys(db_path) == sorted(values, key=lambda k: -values[k])[:2]


@pytest.mark.parametrize("strategy", BLACK_BOX)
def test_every_strategy_takes_a_warm_start(strategy: str, db_path: Path) -> None:
    settings = _plan("synthetic", strategy, budget=4, warm_start=2, warm_pool=4)
    summary = settings.run(db=db_path).summary
    stored = nasforge.trials("warm", db=db_path)
    assert [t.key for t in stored[:2]] == _top(settings, 4, 2)
    assert summary.archs == 4
    assert len(_warm(settings).history) == len(_warm(settings).inner.history) == len(stored)
    record = experiment("warm", db=db_path)
    assert record.config["strategy"] == strategy
    assert record.config["strategy_options"] == {
        **settings.strategy.inner.options(),  # type: ignore[attr-defined]
        "warm_start": 2,
        "warm_pool": 4,
        "warm_proxy": "synflow",
    }


def test_resume_gives_the_uninterrupted_trials_and_scores_no_more(tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole.db", tmp_path / "parts.db"
    settings = dict(warm_start=3, warm_pool=9)
    _plan("synthetic", budget=7, **settings).run(db=whole)

    first = _plan("synthetic", budget=2, **settings)  # stops inside the warm phase
    first.run(db=parts)
    middle = _plan("synthetic", budget=5, **settings)
    middle.run(db=parts)
    last = _plan("synthetic", budget=7, **settings)
    last.run(db=parts)

    assert _keys(parts) == _keys(whole)
    assert _keys(parts)[:3] == _top(first, 9, 3)
    assert _warm(first).scored == 9
    assert _warm(middle).scored == 7  # the 2 warm candidates stored are not scored again
    assert _warm(last).scored == 0  # the warm phase is over: nothing to score


def test_resume_with_other_warm_settings_is_refused(db_path: Path) -> None:
    _plan("tabular:breast_cancer", budget=2, warm_start=1, warm_pool=3).run(db=db_path)
    for other in ({"warm_start": 2, "warm_pool": 3}, {"warm_start": 0}, {"warm_start": 1}):
        with pytest.raises(ConfigError, match="exists with other settings: strategy_options="):
            _plan("tabular:breast_cancer", budget=3, **other).run(db=db_path)
    assert len(nasforge.trials("warm", db=db_path)) == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"warm_start": -1}, "warm_start must be an integer >= 0"),
        ({"warm_start": 3, "warm_pool": 2}, r"warm_pool must be an integer >= warm_start \(3\)"),
        ({"warm_start": 2, "warm_proxy": "magic"}, "unknown warm_proxy 'magic'; valid: synflow"),
        ({"warm_pool": 5}, "warm_pool and warm_proxy apply with warm_start >= 1"),
        (
            {"warm_start": 2, "benchmark": "nas-bench-graph:cora", "task": None},
            "warm_start applies to --task searches only",
        ),
    ],
)
def test_bad_values_are_refused_before_anything_is_stored(
    settings: dict[str, Any], message: str, db_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        nasforge.search(**{"task": "synthetic", "budget": 2, "db": db_path, **FAST, **settings})
    assert not db_path.exists()


def test_a_table_look_up_cannot_be_warm_started() -> None:
    evaluator = NasBenchGraphEvaluator(dataset="cora")
    inner = make_strategy("random", evaluator.space, objective=evaluator.objectives[0], seed=0)
    with pytest.raises(ConfigError, match="NasBenchGraphEvaluator has none"):
        WarmStart(inner, source=evaluator, size=2)


def test_cli_search_with_a_warm_start(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default executor (a worker process) with the warm start in the search process."""
    args = ["search", "--task", "tabular:breast_cancer", "--strategy", "evolution", "--budget",
            "3", "--epochs", "2", "--name", "warm", "--db", str(db_path), "--no-progress",
            "--warm-start", "2", "--warm-pool", "6", "--warm-proxy", "grad_norm"]  # fmt: skip
    assert main(args) == 0
    settings = _plan("tabular:breast_cancer", "evolution", budget=3, warm_start=2, warm_pool=6)
    assert _keys(db_path)[:2] == _top(settings, 6, 2, proxy="grad_norm")
    assert len(_keys(db_path)) == 3


def _exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's usage errors
        return int(str(exc.code))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--task", "synthetic", "--warm-start", "-1"], "--warm-start: must be an integer >= 0"),
        (
            ["--task", "synthetic", "--warm-start", "2", "--warm-pool", "1"],
            "warm_pool must be an integer >= warm_start (2)",
        ),
        (
            ["--task", "synthetic", "--warm-start", "2", "--warm-proxy", "magic"],
            "unknown warm_proxy",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--warm-start", "2"],
            "warm_start applies to --task searches only",
        ),
    ],
)
def test_cli_bad_warm_values_exit_2(
    flags: list[str], message: str, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(["search", "--db", str(db_path), *flags]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert not db_path.exists()

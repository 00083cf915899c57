"""The typed search configuration: built once from keywords (the API's and the CLI's), read
back as keywords, and the typed record an experiment stores."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from nasforge import api
from nasforge.budget import Budget, BudgetUnit
from nasforge.cli import build_parser
from nasforge.config import SearchConfig, SourceSettings, StoredSearch
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.objective import Direction, Objective


def test_every_field_of_every_part_has_one_keyword() -> None:
    keywords = SearchConfig.keywords()
    parts = [f for f in fields(SearchConfig) if f.name in SearchConfig.PARTS]
    assert len(keywords) == 2 + sum(len(fields(getattr(SearchConfig(), p.name))) for p in parts)
    assert keywords["strategy"] == ("strategy", "name")
    assert keywords["training"] == ("training", "overrides")
    assert keywords["budget"] == (None, "budget")


def test_keywords_are_normalised_and_read_back() -> None:
    config = SearchConfig.from_settings(
        benchmark="nas-bench-graph:cora",
        strategy="random",
        budget="30trials",
        objectives=["val_acc:max", Objective("latency_ms", Direction.MINIMIZE)],
        constraints=["params<=1e6"],
        table=Path("/data/table.pth"),
        options={"x": 1},
    )
    assert config.budget == Budget(30, BudgetUnit.TRIALS)
    assert config.goals.objectives == (
        Objective("val_acc"),
        Objective("latency_ms", Direction.MINIMIZE),
    )
    assert config.goals.constraints == (Constraint("params", "<=", 1e6),)
    assert config.source.table == "/data/table.pth" and config.strategy.name == "random"
    assert SearchConfig.from_settings(**config.settings()) == config
    assert set(config.settings()) == set(SearchConfig.keywords())


def test_an_unknown_keyword_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown search setting\(s\) \['stratgy'\]; valid: "):
        SearchConfig.from_settings(stratgy="random")
    with pytest.raises(ConfigError, match="give a SearchConfig or settings as keywords"):
        api.plan(SearchConfig(), budget=3)


def test_the_cli_and_the_api_build_the_same_config() -> None:
    args = build_parser().parse_args(
        ["search", "--task", "tabular:wine", "--strategy", "random", "--budget", "5",
         "--epochs", "3", "--lr", "0.02", "--label", "y", "--task-option", "split_seed=2",
         "--objective", "val_acc:max", "--constraint", "params<=5000", "-o", "x=1"]
    )  # fmt: skip
    from nasforge.cli import _search_config

    expected = SearchConfig.from_settings(
        task="tabular:wine",
        strategy="random",
        budget=5,
        epochs=3,
        training={"lr": 0.02},
        task_options={"label": "y", "split_seed": 2},
        objectives=["val_acc:max"],
        constraints=["params<=5000"],
        options={"x": 1},
    )
    assert _search_config(args) == expected


def test_a_config_object_searches_as_its_keywords_do(tmp_path: Path) -> None:
    config = SearchConfig(
        source=SourceSettings(benchmark="nas-bench-graph:cora"),
        budget=Budget(5),
        name="typed",
    )
    typed = api.search(config, db=tmp_path / "a.db")
    keywords = api.search(db=tmp_path / "b.db", **config.settings())
    assert [t.key for t in api.trials("typed", db=tmp_path / "a.db")] == [
        t.key for t in api.trials("typed", db=tmp_path / "b.db")
    ]
    assert typed.best is not None and keywords.best is not None
    assert typed.best.key == keywords.best.key


def test_the_stored_record_keeps_the_layout_of_earlier_stores() -> None:
    stored = {
        "space": "gnn",
        "evaluator": {"kind": "nas-bench-graph", "dataset": "citeseer"},
        "strategy": "random",
        "strategy_options": {},
        "seed": 1,
        "objective": "val_acc:max",
        "objectives": ["val_acc:max", "latency_ms:min"],
        "constraints": ["params<=2e+06"],
        "source": {"benchmark": "nas-bench-graph:citeseer", "table": None},
    }
    record = StoredSearch.from_json(stored)
    assert record.to_json() == stored and list(record.to_json()) == list(stored)
    assert record.differences(stored) == []
    other = {**stored, "seed": 2, "source": {"benchmark": "elsewhere"}}  # source: not compared
    assert record.differences(other) == ["seed=2 (this run: 1)"]
    assert record.source_name() == "nas-bench-graph:citeseer"
    assert record.source_text() == "benchmark nas-bench-graph:citeseer"
    assert StoredSearch.from_json({"space": "gnn"}).objectives == (Objective("val_acc"),)

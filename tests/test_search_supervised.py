"""Searches that train on image and tabular data, through the API and the CLI."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import nasforge
from nasforge import api
from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.result import Status


def test_mlp_search_on_breast_cancer_trains_and_resumes(db_path: Path) -> None:
    first = nasforge.search(
        task="tabular:breast_cancer",
        strategy="evolution",
        budget=4,
        seed=0,
        name="bc",
        db=db_path,
        epochs=5,
    )
    assert first.summary.new_trials == 4 and first.objective.metric == "val_acc"
    trials = api.trials("bc", db=db_path)
    assert all(t.status is Status.COMPLETE for t in trials)
    for t in trials:
        assert 0.5 < t.metrics["val_acc"] <= 1 and 0 < t.test_metrics["test_acc"] <= 1
        assert t.costs["params"] > 0 and t.costs["flops"] > 0 and t.costs["latency_ms"] > 0
        assert t.fidelity == 5 and len(t.curve) <= 5
        assert t.arch.space == "mlp"
    again = nasforge.search(
        task="tabular:breast_cancer",
        strategy="evolution",
        budget=6,
        seed=0,
        name="bc",
        db=db_path,
        epochs=5,
    )
    assert again.summary.resumed_trials == 4 and again.summary.new_trials == 2
    assert [t.key for t in api.trials("bc", db=db_path)][:4] == [t.key for t in trials]


def test_regression_search_minimises_rmse(db_path: Path) -> None:
    result = nasforge.search(
        task="tabular:diabetes",
        strategy="random",
        budget=3,
        seed=1,
        name="dia",
        db=db_path,
        epochs=8,
    )
    assert str(result.objective) == "val_rmse:min"
    trials = api.trials("dia", db=db_path)
    best = min(trials, key=lambda t: t.metrics["val_rmse"])
    assert result.best is not None and result.best.number == best.number
    assert all(math.isfinite(t.test_metrics["test_rmse"]) for t in trials)


def test_space_must_fit_the_data() -> None:
    with pytest.raises(ConfigError, match=r"needs an nb201 .* or mlp .* space; got space 'gnn'"):
        api.plan(task="tabular:wine", space="gnn", budget=2)
    with pytest.raises(ConfigError, match="needs a gnn space"):
        api.plan(task="synthetic", space="mlp", budget=2)
    with pytest.raises(ConfigError, match=r"unknown training option.*'hidden'"):
        api.plan(task="tabular:wine", budget=2, training={"hidden": 3})
    with pytest.raises(ConfigError, match="unknown task option"):
        api.plan(task="tabular:wine", budget=2, task_options={"colour": 1})
    with pytest.raises(ConfigError, match="label column applies to csv"):
        api.plan(task="tabular:wine", budget=2, task_options={"label": "x"})


def test_cli_csv_search_and_bad_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    lines = ["f1,f2,f3,price"] + [
        f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 0.1 * c:.4f}" for a, b, c in x
    ]
    (tmp_path / "houses.csv").write_text("\n".join(lines) + "\n")
    db = tmp_path / "cli.db"
    code = main(
        [
            "search",
            "--task",
            f"csv:{tmp_path / 'houses.csv'}",
            "--label",
            "price",
            "--budget",
            "2",
            "--epochs",
            "3",
            "--name",
            "houses",
            "--db",
            str(db),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "val_rmse=" in out and "test_rmse=" in out
    assert main(["trials", "--name", "houses", "--db", str(db), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(rows) == 2 and all("val_rmse" in r["metrics"] for r in rows)

    with sqlite3.connect(db) as con:
        before = con.execute("select * from nasforge_trials").fetchall()
    broken = [*lines[:10], "1.0,abc,2.0,3.0", *lines[10:]]
    (tmp_path / "broken.csv").write_text("\n".join(broken) + "\n")
    code = main(
        [
            "search",
            "--task",
            f"csv:{tmp_path / 'broken.csv'}",
            "--budget",
            "2",
            "--name",
            "houses",
            "--db",
            str(db),
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "line 11, column 'f2'" in err and "'abc'" in err
    with sqlite3.connect(db) as con:
        assert con.execute("select * from nasforge_trials").fetchall() == before
    code = main(
        [
            "search",
            "--task",
            f"csv:{tmp_path / 'houses.csv'}",
            "--label",
            "cost",
            "--budget",
            "2",
            "--db",
            str(db),
            "--no-progress",
        ]
    )
    assert code == 2
    assert "no label column 'cost'; columns: f1, f2, f3, price" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("task", "training", "message"),
    [
        ("synthetic", {"lr": "fast"}, "training option lr must be a number, got 'fast'"),
        ("synthetic", {"hidden": "64"}, "training option hidden must be an integer, got '64'"),
        ("synthetic", {"patience": 2.5}, "patience must be an integer or None, got 2.5"),
        ("synthetic", {"dropout": True}, "dropout must be a number, got True"),
        ("synthetic", {"optimizer": 3}, "optimizer must be a string, got 3"),
        ("image:digits", {"channels": 8.0}, "channels must be an integer, got 8.0"),
    ],
)
def test_training_options_of_the_wrong_type_are_named(
    task: str, training: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        api.plan(task=task, budget=2, training=training)


def test_training_options_of_the_right_types_pass() -> None:
    settings = api.plan(
        task="synthetic", budget=2, training={"lr": 1, "patience": None, "optimizer": "sgd"}
    )
    assert settings.evaluator.describe()["train"]["lr"] == 1

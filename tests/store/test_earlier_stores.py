"""A store written by an earlier nasforge (at a6e8ed8, before searches had a typed config
and spaces their model side) is read, reported, exported and resumed; nothing stored changes.

``fixtures/store-a6e8ed8.sqlite`` was written by ``fixtures/make_store_fixture.py`` run with
that version: two table searches (one with two objectives and a constraint) and three
training searches (a table, a graph, images).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nasforge import api
from nasforge.cli import main
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.exporting import load
from nasforge.objective import Direction, Objective

FIXTURE = Path(__file__).parent / "fixtures" / "store-a6e8ed8.sqlite"
STORED = {
    "table-evolution": 12,
    "table-multi": 10,
    "train-wine": 3,
    "train-graph": 2,
    "train-digits": 2,
}
SEARCHES: dict[str, dict[str, Any]] = {
    "table-evolution": {"benchmark": "nas-bench-graph:cora", "strategy": "evolution", "seed": 3},
    "table-multi": {
        "benchmark": "nas-bench-graph:citeseer",
        "strategy": "random",
        "seed": 1,
        "objectives": ["val_acc:max", "latency_ms:min"],
        "constraints": ["params<=2e6"],
    },
    "train-wine": {
        "task": "tabular:wine",
        "strategy": "random",
        "seed": 0,
        "epochs": 3,
        "training": {"lr": 0.01},
    },
    "train-graph": {
        "task": "synthetic",
        "strategy": "random",
        "seed": 0,
        "epochs": 3,
        "training": {"hidden": 16},
    },
    "train-digits": {"task": "image:digits", "strategy": "random", "seed": 0, "epochs": 1},
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "earlier.sqlite"
    shutil.copyfile(FIXTURE, path)
    return path


def _columns() -> str:
    """The trial columns the fixture was written with (an upgrade adds empty ones)."""
    with sqlite3.connect(FIXTURE) as conn:
        return ", ".join(row[1] for row in conn.execute("PRAGMA table_info(nasforge_trials)"))


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT {_columns()} FROM nasforge_trials ORDER BY id").fetchall()


def test_every_experiment_reads_as_typed_records(db: Path) -> None:
    records = {e.name: e for e in api.list_experiments(db)}
    assert {name: len(api.trials(name, db=db)) for name in records} == STORED
    multi = records["table-multi"].search
    assert multi.objectives == (Objective("val_acc"), Objective("latency_ms", Direction.MINIMIZE))
    assert multi.constraints == (Constraint("params", "<=", 2e6),)
    assert multi.source_name() == "nas-bench-graph:citeseer" and multi.space == "gnn"
    wine = records["train-wine"].search
    assert wine.evaluator_kind == "training" and wine.source_name() == "tabular:wine"
    assert wine.to_json() == dict(records["train-wine"].config)  # written back alike
    for name in STORED:
        assert api.best(name, db=db) is not None


@pytest.mark.parametrize("name", list(SEARCHES))
def test_each_search_resumes_with_its_settings(db: Path, name: str) -> None:
    before = api.trials(name, db=db)
    rows = _rows(db)
    result = api.search(name=name, db=db, budget=STORED[name] + 1, **SEARCHES[name])
    assert result.summary.resumed_trials == STORED[name]
    assert result.summary.new_trials == 1
    after = api.trials(name, db=db)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert _rows(db)[: len(rows)] == rows  # nothing stored was changed


def test_a_resume_with_other_settings_is_refused_and_changes_nothing(db: Path) -> None:
    rows = _rows(db)
    settings = {**SEARCHES["table-evolution"], "seed": 4}
    with pytest.raises(ConfigError, match=r"exists with other settings: seed=3 \(this run: 4\)"):
        api.search(name="table-evolution", db=db, budget=20, **settings)
    assert _rows(db) == rows


def test_report_export_and_the_cli_read_it(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = api.report("table-multi", tmp_path / "report.html", db=db)
    assert "Pareto front" in report.read_text(encoding="utf-8")
    folder = api.export("train-wine", out=tmp_path / "model", db=db)
    assert load(folder).metadata["experiment"] == "train-wine"
    assert main(["list", "experiments", "--db", str(db)]) == 0
    assert main(["best", "--name", "train-graph", "--db", str(db)]) == 0
    assert main(["pareto", "--name", "table-multi", "--db", str(db)]) == 0
    assert "train-digits" in capsys.readouterr().out

"""Knowledge read from real stores and the shipped NAS-Bench-Graph tables, and task matching."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import nasforge
from nasforge.errors import StoreError
from nasforge.knowledge import (
    MIN_SHARED,
    match_tasks,
    read_knowledge,
    store_tasks,
    table_tasks,
)
from nasforge.result import Status
from nasforge.spaces.base import SPACES


def _search(db: Path, name: str, dataset: str, *, seed: int = 0, budget: int = 15) -> None:
    nasforge.search(
        benchmark=f"nas-bench-graph:{dataset}",
        strategy="random",
        budget=budget,
        seed=seed,
        db=db,
        name=name,
    )


def test_a_store_gives_one_known_task_per_task_with_the_best_validation_score(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    _search(db, "a", "cora")
    _search(db, "b", "cora", seed=1)
    _search(db, "own", "citeseer")
    tasks = store_tasks(str(db), exclude="own")
    assert [(t.label, t.space, t.metric, t.experiments) for t in tasks] == [
        ("nas-bench-graph:cora", "gnn", "val_acc", ("a", "b"))
    ]
    expected: dict[str, float] = {}
    for name in ("a", "b"):
        for trial in nasforge.trials(name, db=db):
            if trial.status is Status.COMPLETE:
                value = trial.metrics["val_acc"]
                expected[trial.key] = max(value, expected.get(trial.key, value))
    assert dict(tasks[0].scores) == expected
    assert set(tasks[0].archs) == set(expected)
    percentiles = tasks[0].percentiles()
    best = max(expected, key=lambda k: expected[k])
    assert percentiles[best] == 1.0 and min(percentiles.values()) > 0


def test_bad_knowledge_sources_get_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=r"knowledge source .*missing\.db: no such file"):
        read_knowledge([str(missing)], tables=False)
    assert not missing.exists()
    foreign = tmp_path / "optuna.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, name TEXT)")
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="another application") as caught:
        read_knowledge([str(foreign)], tables=False)
    assert "\n" not in str(caught.value)
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optuna.db"]


def test_the_search_s_own_store_may_be_missing_or_empty(tmp_path: Path) -> None:
    own = str(tmp_path / "new.db")
    found = read_knowledge([own], tables=False, current=own)
    assert found.tasks == [] and "holds no other search" in found.notes[0]
    assert not Path(own).exists()


def test_tables_leave_the_searched_one_out_and_fit_the_proteins_space() -> None:
    tasks = table_tasks(exclude="nas-bench-graph:cora")
    labels = [t.label for t in tasks]
    assert len(labels) == 8 and "nas-bench-graph:cora" not in labels
    proteins_space = SPACES.create("gnn-proteins")
    usable = read_knowledge([], exclude_task="nas-bench-graph:proteins").usable_for(proteins_space)
    assert len(usable.tasks) == 8  # the gnn tables, cut to the architectures of the space
    for task in usable.tasks:
        assert 0 < len(task) < 26206
        for arch in list(task.archs.values())[:50]:
            assert arch.space == "gnn-proteins"
            proteins_space.validate(arch)


def test_a_space_that_accepts_none_of_the_knowledge_is_said_in_one_note() -> None:
    usable = read_knowledge([]).usable_for(SPACES.create("mlp"))
    assert usable.tasks == []
    assert len(usable.notes) == 1
    assert "space 'mlp' accepts none" in usable.notes[0]


def test_tasks_that_rank_alike_match() -> None:
    alike = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    reversed_ = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}
    barely = {"a": 1.0}
    observed = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.5}
    matches = match_tasks([alike, reversed_, barely], observed)
    assert [round(m.rho, 6) for m in matches] == [1.0, -1.0, 0.0]
    assert [m.shared for m in matches] == [4, 4, 1]
    assert [m.weight for m in matches] == [1.0, 0.0, 0.0]
    few = dict(list(observed.items())[: MIN_SHARED - 1])
    assert [m.weight for m in match_tasks([alike, reversed_], few)] == [0.5, 0.5]


@pytest.mark.postgres
def test_a_postgresql_store_is_knowledge_too(pg_store_url: str) -> None:
    nasforge.search(
        benchmark="nas-bench-graph:pubmed", strategy="random", budget=10, db=pg_store_url, name="pg"
    )
    [task] = read_knowledge([pg_store_url], tables=False).tasks
    assert (task.label, len(task)) == ("nas-bench-graph:pubmed", 10)
    password = sa.make_url(pg_store_url).password
    assert password and password not in task.source and "***" in task.source


def test_compression_experiments_are_not_knowledge(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    nasforge.search(task="tabular:wine", budget=2, epochs=2, executor="inline", db=db, name="wine")
    nasforge.compress("wine", method="magnitude", sparsity=[0.5], db=db)
    assert len(nasforge.list_experiments(db)) == 2
    [task] = store_tasks(str(db))
    assert (task.label, task.space, task.experiments) == ("tabular:wine", "mlp", ("wine",))

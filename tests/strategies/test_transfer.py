"""The transfer strategy on NAS-Bench-Graph: its probes, its knowledge (never the searched
table), resuming, learning from an earlier search in the store, and its command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nasforge
from nasforge.plan import SearchPlan
from nasforge.strategies.transfer import Transfer


def _plan(dataset: str = "cora", **extra: object) -> SearchPlan:
    return nasforge.plan(
        benchmark=f"nas-bench-graph:{dataset}", strategy="transfer", seed=0, **extra
    )


def _keys(name: str, db: Path) -> list[str]:
    return [t.key for t in nasforge.trials(name, db=db)]


def test_probes_are_the_known_tasks_bests_and_the_searched_table_is_not_known(
    tmp_path: Path,
) -> None:
    notes: list[str] = []
    plan = _plan(budget=8, name="t")
    plan.run(db=tmp_path / "t.db", on_note=notes.append)
    strategy = plan.strategy
    assert isinstance(strategy, Transfer) and strategy.known is not None
    labels = [t.label for t in strategy.known.tasks]
    assert len(labels) == 8 and "nas-bench-graph:cora" not in labels
    bests = {max(t.scores, key=lambda k: t.scores[k]) for t in strategy.known.tasks}
    probes = _keys("t", tmp_path / "t.db")[: strategy.n_probes]
    assert probes == strategy._probes and set(probes) <= bests
    assert any("knowledge of 8 tasks" in n for n in notes)
    matched = [n for n in notes if n.startswith("transfer: matched after 5 results: ")]
    assert len(matched) == 1 and "rho" in matched[0]


def test_a_resumed_transfer_search_proposes_what_an_uninterrupted_one_does(
    tmp_path: Path,
) -> None:
    _plan(budget=12, name="x").run(db=tmp_path / "a.db")
    _plan(budget=22, name="x").run(db=tmp_path / "a.db")
    _plan(budget=22, name="x").run(db=tmp_path / "b.db")
    assert _keys("x", tmp_path / "a.db") == _keys("x", tmp_path / "b.db")
    assert len(set(_keys("x", tmp_path / "a.db"))) == 22


def test_an_earlier_search_in_the_store_is_knowledge(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    nasforge.search(
        benchmark="nas-bench-graph:citeseer", strategy="random", budget=30, db=db, name="early"
    )
    notes: list[str] = []
    plan = _plan(budget=6, name="new", options={"tables": False})
    plan.run(db=db, on_note=notes.append)
    strategy = plan.strategy
    assert isinstance(strategy, Transfer) and strategy.known is not None
    [task] = strategy.known.tasks
    assert (task.label, task.source, task.experiments) == (
        "nas-bench-graph:citeseer",
        str(db.resolve()),
        ("early",),
    )
    best_early = nasforge.best("early", db=db)
    assert best_early is not None
    assert _keys("new", db)[0] == best_early.key  # the known task's best is probed first
    assert any(str(db.resolve()) in n and "nas-bench-graph:citeseer (30)" in n for n in notes)


def test_without_knowledge_of_the_space_it_says_so_and_searches(tmp_path: Path) -> None:
    notes: list[str] = []
    plan = _plan(budget=12, name="plain", options={"tables": False})
    result = plan.run(db=tmp_path / "t.db", on_note=notes.append)
    assert result.summary.new_trials == 12
    assert any("searching without knowledge (as bananas)" in n for n in notes)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        timeout=120,
    )


def test_cli_names_the_knowledge_before_the_first_trial_and_refuses_bad_sources(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "runs.db")
    base = ["search", "--benchmark", "nas-bench-graph:cora", "--budget", "6", "--db", db]
    done = _cli(*base, "--strategy", "transfer", "--name", "t")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    first_trial = next(i for i, line in enumerate(lines) if ": trial 0 " in line)
    assert any("knowledge of 8 tasks" in line for line in lines[:first_trial])
    missing = _cli(*base, "--strategy", "transfer", "--name", "u", "--knowledge", "no.db")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr
    other = _cli(*base, "--strategy", "random", "--name", "v", "--knowledge", db)
    assert other.returncode == 2 and "--knowledge applies to --strategy transfer" in other.stderr
    assert [t.name for t in nasforge.list_experiments(db)] == ["t"]


def test_similar_lists_alike_tasks_and_the_nearest_known_architectures(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    nasforge.search(
        benchmark="nas-bench-graph:citeseer", strategy="random", budget=25, db=db, name="early"
    )
    nasforge.search(
        benchmark="nas-bench-graph:cora", strategy="random", budget=25, db=db, name="now"
    )
    found = nasforge.similar("now", db=db, top=4)
    labels = [t.label for t in found.tasks]
    assert "nas-bench-graph:cora" not in labels  # the searched table is not knowledge
    assert "nas-bench-graph:citeseer" in labels and len(labels) == 9  # 8 tables + the store's
    assert [t.rho for t in found.tasks] == sorted((t.rho for t in found.tasks), reverse=True)
    assert found.best.key == nasforge.best("now", db=db).key  # type: ignore[union-attr]
    assert len(found.neighbours) == 4
    distances = [n.distance for n in found.neighbours]
    assert distances == sorted(distances) and distances[0] == 0.0  # the best itself is known
    assert found.neighbours[0].key == found.best.key
    assert all(0 < m.percentile <= 1 for n in found.neighbours for m in n.measured)
    universal = nasforge.similar("now", db=db, top=3, tables=False, encoding="universal")
    assert len(universal.neighbours) == 3  # the 25 architectures of the earlier search
    assert [n.distance for n in universal.neighbours] == sorted(
        n.distance for n in universal.neighbours
    )
    assert {m.label for n in universal.neighbours for m in n.measured} == {
        "nas-bench-graph:citeseer"
    }
    done = _cli("similar", "--name", "now", "--db", str(db), "--top", "3", "--no-tables")
    assert done.returncode == 0, done.stderr
    assert "nas-bench-graph:citeseer" in done.stdout and "nearest to trial" in done.stdout
    bad = _cli("similar", "--name", "now", "--db", str(db), "--knowledge", str(tmp_path / "x"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr


def test_similar_places_a_new_task_by_its_probes_and_resumes_them(tmp_path: Path) -> None:
    db = str(tmp_path / "probes.db")
    args = ["similar", "--benchmark", "nas-bench-graph:photo", "--db", db, "--top", "2"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(": trial ") == 5  # the probes, evaluated and stored
    table = first.stdout[first.stdout.index("known tasks") :]
    assert "nas-bench-graph:photo " not in table  # the new task is not its own knowledge
    again = _cli(*args)
    assert again.returncode == 0 and ": trial " not in again.stderr  # resumed, nothing rerun
    [record] = nasforge.list_experiments(db)
    assert record.name == "similar-nas-bench-graph-photo"

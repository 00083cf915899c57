"""A damaged row (bad JSON, a wrong type, a value out of range) is reported with its trial
number and column, skipped by every reader and never rewritten; the rest of the store works."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.dashboard.test_server import fetch_json

from nasforge.architecture import Architecture
from nasforge.cli import main
from nasforge.dashboard import serve
from nasforge.errors import DamagedRowWarning
from nasforge.result import Result, Status
from nasforge.store.sql import SqlStore

BENCH = "nas-bench-graph:cora"

# (column, SQL value, what the message names): each a way a row is found damaged
DEFECTS = [
    ("metrics", "'{\"val_acc\": 0.9'", "is not JSON"),
    ("metrics", "'[0.9]'", "a JSON object of numbers is expected"),
    ("metrics", '\'{"val_acc": "0.9"}\'', "a number or null is expected"),
    ("costs", "'{\"latency_ms\": true}'", "a number or null is expected"),
    ("test_metrics", "''", "is not JSON"),
    ("arch", "'[1, 2]'", "is not an architecture"),
    ("arch", '\'{"space": "gnn", "genes": {"ops": 7}}\'', "is not an architecture"),
    ("curve", "'{}'", "a JSON list is expected"),
    ("status", "'DONE'", "one of RUNNING, COMPLETE"),
    ("started_at", "'yesterday'", "a finite number >= 0 is expected"),
    ("wall_time", "-3.0", "a finite number >= 0 is expected"),
    ("attempt", "-1", "a whole number >= 0 is expected"),
    ("fidelity", "2.5", "a whole number >= 0 is expected"),
    ("lost", "7", "0 or 1 is expected"),
    ("error", "x'00ff'", "text is expected"),
]


def _search(db: Path, budget: int, name: str = "run") -> int:
    args = ["search", "--benchmark", BENCH, "--budget", str(budget), "--name", name]
    goals = ["--objective", "val_acc", "--objective", "latency_ms"]
    return main([*args, *goals, "--db", str(db), "--no-progress"])


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM nasforge_trials ORDER BY id").fetchall()


def _damage(db: Path, number: int, column: str, value: str, table: str = "trials") -> None:
    conn = sqlite3.connect(db)
    key = "number" if table == "trials" else "id"
    conn.execute(f"UPDATE nasforge_{table} SET {column} = {value} WHERE {key} = ?", (number,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("column", "value", "said"), DEFECTS)
def test_every_reader_skips_a_damaged_trial_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: str, said: str
) -> None:
    db = tmp_path / "runs.db"
    assert _search(db, 12) == 0
    _damage(db, 4, column, value)
    before = _rows(db)
    capsys.readouterr()

    commands = [
        ["trials", "--name", "run"],
        ["trials", "--name", "run", "--json"],
        ["best", "--name", "run"],
        ["report", "--name", "run", "--out", str(tmp_path / "report.html")],
        ["pareto", "--name", "run"],
    ]
    for command in commands:
        assert main([*command, "--db", str(db)]) == 0, command
        captured = capsys.readouterr()
        [line] = captured.err.splitlines()
        assert line.startswith("warning: trial 4 of experiment 'run' is damaged: column ")
        assert f"column {column} " in line and said in line and "skipped" in line
        assert "Traceback" not in captured.out + captured.err
        if "--json" in command:
            numbers = [json.loads(line)["number"] for line in captured.out.splitlines()]
            assert numbers == [n for n in range(12) if n != 4]
        elif command[0] == "best":
            assert "(trial 4)" not in captured.out
    assert _rows(db) == before  # read many times, never rewritten

    # the search resumes around it: the strategy replays the other 11, the budget is met
    assert _search(db, 16) == 0
    after = _rows(db)
    assert after[: len(before)] == before
    assert len(after) == 16 and sorted(r[2] for r in after) == list(range(16))

    assert main(["doctor", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert (
        "file check ok" in out and f"trial 4 of experiment 'run' is damaged: column {column}" in out
    )
    assert "1 damaged row: every reader skips them" in out


def test_doctor_passes_a_sound_store_and_never_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert _search(db, 6) == 0
    image = db.read_bytes()
    capsys.readouterr()
    assert main(["doctor", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "file check ok; 1 experiments, 6 trials" in out and "no damage found" in out
    assert db.read_bytes() == image
    assert main(["doctor", "--db", str(tmp_path / "absent.db")]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "absent.db" in line
    assert not (tmp_path / "absent.db").exists()


def test_a_damaged_experiment_row_leaves_the_others_usable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert _search(db, 5, "first") == 0
    assert _search(db, 5, "second") == 0
    _damage(db, 1, "config", "'{\"space\": '", table="experiments")
    capsys.readouterr()

    assert main(["list", "experiments", "--db", str(db)]) == 0
    captured = capsys.readouterr()
    assert "second" in captured.out and "first" not in captured.out
    assert "experiment 'first' is damaged: column config is not JSON" in captured.err

    assert main(["trials", "--name", "first", "--db", str(db)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: experiment 'first' is damaged: column config is not JSON")
    assert main(["best", "--name", "second", "--db", str(db)]) == 0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with serve(db, port=0) as server:
            data = fetch_json(server, "/api/experiments")
    assert [e["name"] for e in data["experiments"]] == ["second"]
    assert any(issubclass(w.category, DamagedRowWarning) for w in caught)

    assert main(["doctor", "--db", str(db)]) == 1
    assert "experiment 'first' is damaged: column config" in capsys.readouterr().out


def test_the_dashboard_serves_an_experiment_with_damaged_trials(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    assert _search(db, 8) == 0
    _damage(db, 2, "metrics", "'{bad'")
    with warnings.catch_warnings(record=True), serve(db, port=0) as server:
        warnings.simplefilter("always")
        [exp] = fetch_json(server, "/api/experiments")["experiments"]
        trials = fetch_json(server, "/api/trials?name=run")
    assert exp["total"] == 7
    assert 2 not in [t["number"] for t in trials["trials"]]


def _pg_damage(url: str, experiment_id: int, number: int, column: str, value: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE nasforge_trials SET {column} = {value} "
            f"WHERE experiment_id = {experiment_id} AND number = {number}"
        )
    engine.dispose()


def test_the_store_contract_on_sqlite_and_postgresql(target: str) -> None:
    """A row of valid JSON but the wrong shape (all a server database lets through) is damage
    too; ``reserve_trial`` passes over it and ``claim_retry`` never takes it."""
    arch = Architecture.create("gnn", links=[0, 0, 0, 0], ops=["gcn", "gcn", "gcn", "gcn"])
    done = Result(Status.COMPLETE, metrics={"val_acc": 0.5})
    with SqlStore(target) as store:
        record, _ = store.get_or_create_experiment("contract", {"space": "gnn"})
        first = store.add_trial(record.id, arch, "k0", done, started_at=1.0, finished_at=2.0)
        lost = store.reserve_trial(
            record.id, arch, "k1", fidelity=None, owner="o", dedup_fidelity=False
        ).trial
        assert lost is not None
        store.mark_stale(record.id, lost, "gone", now=3.0)
        url = target if "://" in target else f"sqlite:///{target}"
        _pg_damage(url, record.id, first.number, "metrics", "'[1, 2]'")
        _pg_damage(url, record.id, lost.number, "arch", "'{\"space\": 3}'")

        with pytest.warns(DamagedRowWarning) as caught:
            assert store.trials(record.id) == []
        said = sorted(str(w.message).split(" is damaged")[0] for w in caught)
        assert said == ["trial 0 of experiment 'contract'", "trial 1 of experiment 'contract'"]
        again = store.reserve_trial(
            record.id, arch, "k0", fidelity=None, owner="o", dedup_fidelity=False
        )
        assert again.trial is not None and again.trial.number == 2  # a new row, not a rewrite
        assert store.claim_retry(record.id, owner="o", max_retries=3, now=4.0) is None
        found = [(d.number, d.column) for d in store.damaged()]
        assert found == [(0, "metrics"), (1, "arch")]

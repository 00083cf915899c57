"""Files that are not nasforge's are refused byte for byte untouched; a nasforge store on a
read-only medium can still be read."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.store.mounts import files, remount_read_only, tmpfs

from nasforge.errors import StoreError
from nasforge.store.sql import SqlStore


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _search(db: Path, budget: int = 12) -> subprocess.CompletedProcess[str]:
    return cli(
        "search",
        "--benchmark",
        "nas-bench-graph:cora",
        "--budget",
        str(budget),
        "--name",
        "run",
        "--db",
        str(db),
        "--no-progress",
    )


def _optuna_database(path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="theirs")
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)


def _wal_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('mine')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make", [_optuna_database, _wal_database], ids=["optuna", "wal"])
def test_a_foreign_database_is_refused_and_left_byte_for_byte(tmp_path: Path, make: object) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    db = folder / "app.db"
    make(db)  # type: ignore[operator]
    before = files(folder)
    header = db.read_bytes()[18:20]  # the file format's write/read versions: 1 rollback, 2 WAL
    for create in (True, False):
        with pytest.raises(StoreError, match="belongs to another application"):
            SqlStore(db, create=create)
    for args in (
        ("trials", "--db", str(db)),
        ("best", "--name", "theirs", "--db", str(db)),
        ("list", "experiments", "--db", str(db)),
    ):
        proc = cli(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "belongs to another application" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = _search(db)
    assert proc.returncode == 1 and "belongs to another application" in proc.stderr
    assert files(folder) == before  # nothing written, no journal or -shm left beside it
    assert db.read_bytes()[18:20] == header


def test_a_store_on_a_read_only_medium_can_be_read(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "medium", "8m") as medium:
        db = medium / "runs.db"
        proc = _search(db)
        assert proc.returncode == 0, proc.stderr
        remount_read_only(medium)
        before = files(medium)
        with SqlStore(db, create=False) as store:
            assert store.read_only
            trials = store.trials(store.get_experiment("run").id)
        assert len(trials) == 12
        for args in (
            ("trials", "--db", str(db)),
            ("best", "--db", str(db)),
            ("list", "experiments", "--db", str(db)),
            ("report", "--db", str(db), "--out", str(tmp_path / "report.html")),
        ):
            proc = cli(*args)
            assert proc.returncode == 0, (args, proc.stderr)
        assert (tmp_path / "report.html").stat().st_size > 0
        proc = _search(db, budget=20)  # a search must write: one line, exit 1
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert files(medium) == before


KILLED_WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("UPDATE nasforge_experiments SET created_at = created_at + 1")
print("written", flush=True)
time.sleep(60)
"""


def test_a_read_only_store_with_unmerged_writes_says_what_to_do(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "medium", "8m") as medium:
        db = medium / "runs.db"
        assert _search(db).returncode == 0
        writer = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(db)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None and writer.stdout.readline() == "written\n"
        writer.kill()  # killed before its log was merged into the file
        writer.wait()
        assert db.with_name("runs.db-wal").stat().st_size > 0
        remount_read_only(medium)
        proc = cli("trials", "--db", str(db))
        assert proc.returncode == 1, proc.stderr
        assert "read-only medium" in proc.stderr and "copy both files" in proc.stderr

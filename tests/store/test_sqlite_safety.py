"""The SQLite store refuses what it must not touch and keeps what it stored."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from nasforge.architecture import Architecture
from nasforge.errors import StoreError
from nasforge.result import Result
from nasforge.store.sql import SCHEMA_VERSION, SqlStore

ARCH = Architecture.create("gnn", links=[0, 0, 0, 0], ops=["gcn", "gcn", "gcn", "gcn"])


def _fill(path: Path, n: int = 50) -> None:
    with SqlStore(path) as s:
        rec, _ = s.get_or_create_experiment("e", {"seed": 0})
        for i in range(n):
            s.add_trial(
                rec.id,
                ARCH,
                f"k{i}",
                Result(metrics={"val_acc": i / n}),
                started_at=0,
                finished_at=0,
            )


def test_wal_mode_and_busy_timeout(db_path: Path) -> None:
    with SqlStore(db_path) as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("my thesis, do not overwrite\n")
    with pytest.raises(StoreError, match="is not a SQLite database"):
        SqlStore(path)
    assert path.read_text() == "my thesis, do not overwrite\n"


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    with pytest.raises(StoreError, match=r"belongs to another application \(tables: users\)"):
        SqlStore(path)
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables == ["users"]


def test_a_damaged_store_gives_a_clear_error(db_path: Path) -> None:
    _fill(db_path, 400)
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db_path.stat().st_size
    with db_path.open("r+b") as fh:  # scribble over every page after the schema
        fh.seek(4096 * 2)
        fh.write(os.urandom(size - 4096 * 2))
    with (
        pytest.raises(StoreError, match=r"damaged|malformed|not a database"),
        SqlStore(db_path, create=False) as s,
    ):
        s.trials(s.get_experiment("e").id)


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    _fill(db_path, 1)
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE nasforge_meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    with pytest.raises(StoreError, match="newer nasforge"):
        SqlStore(db_path)


def test_missing_store_is_not_created_by_readers(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(StoreError, match="no nasforge store at"):
        SqlStore(path, create=False)
    assert not path.exists()


def test_unwritable_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SqlStore(tmp_path / "nope" / "x.db")
    with pytest.raises(StoreError, match="is a directory"):
        SqlStore(tmp_path)
    with pytest.raises(StoreError, match="not writable"):
        SqlStore("/proc/nasforge-test.db")  # not writable even for root
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores directory permissions")
        with pytest.raises(StoreError, match="not writable"):
            SqlStore(locked / "x.db")
    finally:
        locked.chmod(0o700)


def test_integrity_check_reports_ok(db_path: Path) -> None:
    _fill(db_path, 10)
    with SqlStore(db_path) as s:
        assert s.integrity_check() == "ok"


def test_opening_a_second_store_keeps_the_first_ones_locks(db_path: Path) -> None:
    """Another process's committed trials survive this process opening the file twice.

    Closing any plain file descriptor of a SQLite file drops every POSIX lock the process
    holds on it; a store that checked the file with ``open()`` let another process's
    checkpoint discard trials that were already committed.
    """
    import subprocess
    import sys

    from nasforge import api

    api.search(benchmark="nas-bench-graph:cora", strategy="random", budget=8, db=db_path, name="a")
    held = SqlStore(db_path)
    record = held.get_experiment("a")
    assert held.count_trials(record.id) == 8  # a pooled connection now holds its locks
    assert api.best("a", db=db_path) is not None  # opens and closes a second store
    code = (
        "from nasforge import api; api.search(benchmark='nas-bench-graph:cora', "
        f"strategy='random', budget=12, name='a', db={str(db_path)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    with SqlStore(db_path) as other:  # a write from this process, then the held store closes
        first = other.trials(record.id)[0]
        other.add_trial(
            record.id, first.arch, first.key, Result(metrics={"val_acc": 0.5}),
            started_at=0.0, finished_at=0.0,
        )  # fmt: skip
    held.close()
    count = f"from nasforge import api; print(len(api.trials('a', db={str(db_path)!r})))"
    out = subprocess.run(
        [sys.executable, "-c", count], check=True, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == "13"

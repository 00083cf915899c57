"""Faults injected under a running search: the disk fills up (a tiny tmpfs), or the driver's
writes fail with an I/O error as on a failing disk. The search stops with one line and exit 1,
the database stays intact, every trial it committed stays readable, and a resume (with room
again) completes the budget with nothing lost."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.store.mounts import _mount, tmpfs

from nasforge.cli import main

SEARCH = ["search", "--benchmark", "nas-bench-graph:cora", "--strategy", "random"]


def _search(db: Path, budget: int) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    args = [*SEARCH, "--budget", f"{budget}trials", "--name", "run", "--db", str(db)]
    return subprocess.Popen(
        [sys.executable, "-m", "nasforge.cli", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _complete(db: Path) -> dict[int, tuple[object, ...]]:
    """The COMPLETE trials by number, read without writing (the medium may be read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT number, key, metrics FROM nasforge_trials WHERE status = 'COMPLETE'"
        ).fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    return {r[0]: r for r in rows}


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def _resume_completes(db: Path, budget: int, before: dict[int, tuple[object, ...]]) -> None:
    proc = _search(db, budget)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    after = _complete(db)
    assert all(after.get(n) == row for n, row in before.items())  # nothing lost or changed
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM nasforge_trials").fetchone() == (budget,)
    conn.close()


def test_a_full_disk_stops_the_search_cleanly_and_a_resume_finishes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "1m") as small:
        db = small / "runs.db"
        proc = _search(db, 3000)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        line = _one_error_line(err)
        assert line.startswith(f"error: the disk holding store {db} is full")
        assert "free space" in line
        before = _complete(db)
        assert len(before) > 20  # it ran until the disk was full

        assert _mount("-o", "remount,size=16m", str(small)).returncode == 0
        _resume_completes(db, 3000, before)


class _FailingWrites:
    """Connections of the SQLite driver whose writes of a trial fail from the ``after``-th
    on, as a failing disk makes SQLite fail (``disk I/O error``): every statement the store
    runs goes through them, through the engine or on the connection it holds."""

    def __init__(self, after: int) -> None:
        self.after, self.writes = after, 0

    def check(self, statement: str) -> None:
        if statement.lstrip().upper().startswith(("INSERT INTO NASFORGE_TRIALS", "UPDATE")):
            self.writes += 1
            if self.writes >= self.after:
                raise sqlite3.OperationalError("disk I/O error")

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        shim = self

        class Cursor(sqlite3.Cursor):
            def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
                shim.check(sql)
                return super().execute(sql, *params)

        class Connection(sqlite3.Connection):
            def cursor(self, factory: Any = Cursor) -> Any:
                return super().cursor(factory)

            def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
                return self.cursor().execute(sql, *params)

        return _CONNECT(*args, **kwargs, factory=Connection)


_CONNECT = sqlite3.connect


@pytest.mark.parametrize("after", [1, 2, 25, 60])
def test_an_io_error_mid_search_stops_it_in_one_line_and_loses_nothing(
    db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    args = [*SEARCH, "--budget", "40trials", "--name", "run", "--db", str(db_path)]
    with monkeypatch.context() as patched:
        patched.setattr(sqlite3.dbapi2, "connect", _FailingWrites(after).connect)
        code = main([*args, "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    line = _one_error_line(captured.err)
    assert line.startswith(f"error: store {db_path}: the disk reported an I/O error")
    assert "run the same command to resume" in line
    before = _complete(db_path)

    assert main([*args, "--no-progress"]) == 0
    after_resume = _complete(db_path)
    assert all(after_resume.get(n) == row for n, row in before.items())
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM nasforge_trials").fetchone() == (40,)
    conn.close()

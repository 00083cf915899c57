"""Every store test runs on a SQLite file and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nasforge.store.sql import SqlStore


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store path or URL: a new SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_store_url"))


@pytest.fixture
def store(target: str) -> Iterator[SqlStore]:
    with SqlStore(target) as s:
        yield s

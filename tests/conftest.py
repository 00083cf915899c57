"""Shared fixtures: real SQLite files and a real PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.pg_cluster import ClusterUnavailable, private_cluster

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MISSING_CORA = "no Planetoid raw files"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep nasforge's cache (processed datasets) inside the test session's temp folder."""
    old = os.environ.get("NASFORGE_CACHE")
    os.environ["NASFORGE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("NASFORGE_CACHE", None)
    else:
        os.environ["NASFORGE_CACHE"] = old


@pytest.fixture(scope="session")
def planetoid_root() -> Path:
    """The raw Planetoid files shipped beside the repository (../shared/datasets/planetoid)."""
    root = Path(os.environ.get("NASFORGE_PLANETOID_ROOT", SHARED_DATASETS / "planetoid"))
    if not (root / "Cora" / "raw").is_dir():
        pytest.skip(f"{MISSING_CORA} at {root}/Cora/raw")
    return root


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a not-yet-existing SQLite store in a fresh directory."""
    return tmp_path / "nasforge.db"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a PostgreSQL superuser's connection: ``NASFORGE_TEST_PG_URL`` when set, else the
    session's own cluster (tests/pg_cluster.py), stopped and deleted after the session.

    Skips (with the reason) when neither can be had.
    """
    given = os.environ.get("NASFORGE_TEST_PG_URL")
    if given:
        yield given
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(private_cluster())
        except ClusterUnavailable as exc:
            pytest.skip(f"no PostgreSQL for the tests: {exc}")
        yield url


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the session."""
    try:
        admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        shown = sa.make_url(pg_admin_url).render_as_string(hide_password=True)
        pytest.skip(f"no PostgreSQL server at {shown} ({type(exc).__name__}: {exc})")
    name = f"nasforge_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(pg_admin_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


@pytest.fixture
def pg_store_url(pg_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied of nasforge tables after each test."""
    yield pg_url
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        for table in ("nasforge_trials", "nasforge_experiments", "nasforge_meta"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    engine.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line for the tests skipped because Cora's raw files are not beside the checkout,
    with the folder looked in and how to point the tests elsewhere."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if MISSING_CORA in str(getattr(report, "longrepr", ""))
    ]
    if skipped:
        root = os.environ.get("NASFORGE_PLANETOID_ROOT", str(SHARED_DATASETS / "planetoid"))
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: no Cora raw files under {root}/Cora/raw "
            "(set NASFORGE_PLANETOID_ROOT to a folder holding Cora/raw/ to run them)"
        )

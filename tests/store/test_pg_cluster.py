"""The test session's own PostgreSQL cluster: loopback only, password required, not run as
root, and gone (server and files) when the session is over."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.pg_cluster import ClusterUnavailable, private_cluster

pytestmark = pytest.mark.postgres


def test_private_cluster_is_loopback_only_and_deleted_afterwards() -> None:
    with ExitStack() as stack:
        try:
            url = stack.enter_context(private_cluster())
        except ClusterUnavailable as exc:
            pytest.skip(f"no PostgreSQL binaries: {exc}")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            listen = conn.exec_driver_sql("SHOW listen_addresses").scalar_one()
            data = Path(conn.exec_driver_sql("SHOW data_directory").scalar_one())
        engine.dispose()
        assert listen == "127.0.0.1"
        assert data.parent.name.startswith("nasforge-test-pg-")
        assert data.stat().st_uid != 0 or os.geteuid() != 0
        wrong = sa.make_url(url).set(password="not-the-password")
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
            sa.create_engine(wrong).connect()
    assert not data.parent.exists()
    with pytest.raises(sa.exc.OperationalError):
        sa.create_engine(url, connect_args={"connect_timeout": 2}).connect()

"""Experiment stores: the :class:`Store` contract and its records (:mod:`~nasforge.store.base`)
and the SQLAlchemy implementation for SQLite and PostgreSQL (:mod:`~nasforge.store.sql`).

The implementation is imported when one of its names is first used, so that reading the
contract does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge.store.base import DamagedRow, ExperimentRecord, Store, TrialRecord

if TYPE_CHECKING:
    from nasforge.store.sql import SCHEMA_VERSION, SqlStore, open_store

__all__ = [
    "SCHEMA_VERSION",
    "DamagedRow",
    "ExperimentRecord",
    "SqlStore",
    "Store",
    "TrialRecord",
    "open_store",
]

_SQL = ("SCHEMA_VERSION", "SqlStore", "open_store")


def __getattr__(name: str) -> Any:
    if name in _SQL:
        from nasforge.store import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

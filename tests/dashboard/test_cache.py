"""The dashboard's trial cache: reads only new trials, and keeps Pareto fronts up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import api
from nasforge.dashboard.cache import TrialCache
from nasforge.errors import ConfigError
from nasforge.pareto import pareto_front
from nasforge.store.sql import open_store

GOALS = ["val_acc:max", "latency_ms:min"]


def _search(db: Path, budget: str) -> None:
    api.search(
        benchmark="nas-bench-graph:cora",
        strategy="random",
        budget=budget,
        seed=0,
        name="mo",
        db=db,
        objectives=GOALS,
    )


def test_cache_follows_the_store_and_builds_the_front_in_chunks(tmp_path: Path) -> None:
    db = tmp_path / "mo.db"
    _search(db, "120trials")
    with open_store(db, create=False) as store:
        record = store.get_experiment("mo")
        objectives = api.objectives_of(record)
        cache = TrialCache(store, chunk=16)
        first = cache.trials(record)
        assert first == store.trials(record.id)
        front = cache.front(record, first, objectives)
        assert front == pareto_front(first, objectives) and len(front) >= 2
        store.engine.dispose()  # as the server does after each request

        _search(db, "300trials")  # the search goes on
        grown = cache.trials(record)
        everything = store.trials(record.id)
        assert len(grown) == 300 and grown == everything
        assert grown[:120] == first
        assert cache.front(record, grown, objectives) == pareto_front(everything, objectives)
        assert cache.trials(record) == everything  # nothing new: the same list again


def test_chunk_must_be_positive(tmp_path: Path) -> None:
    db = tmp_path / "mo.db"
    _search(db, "3trials")
    with open_store(db, create=False) as store, pytest.raises(ConfigError, match="chunk"):
        TrialCache(store, chunk=0)

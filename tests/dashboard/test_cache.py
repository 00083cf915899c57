"""The dashboard's trial cache: reads only new trials, and keeps Pareto fronts up to date."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nasforge import api
from nasforge.dashboard.cache import TrialCache
from nasforge.errors import ConfigError
from nasforge.pareto import pareto_front
from nasforge.result import Result, Status
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
        front = cache.front(record, objectives)
        assert front == pareto_front(first, objectives) and len(front) >= 2
        store.engine.dispose()  # as the server does after each request

        _search(db, "300trials")  # the search goes on
        grown = cache.trials(record)
        everything = store.trials(record.id)
        assert len(grown) == 300 and grown == everything
        assert grown[:120] == first
        assert cache.front(record, objectives) == pareto_front(everything, objectives)
        assert cache.trials(record) == everything  # nothing new: the same list again


def test_chunk_must_be_positive(tmp_path: Path) -> None:
    db = tmp_path / "mo.db"
    _search(db, "3trials")
    with open_store(db, create=False) as store, pytest.raises(ConfigError, match="chunk"):
        TrialCache(store, chunk=0)


def test_running_and_stale_trials_are_read_again_until_they_settle(tmp_path: Path) -> None:
    db = tmp_path / "mo.db"
    _search(db, "20trials")
    with open_store(db, create=False) as store:
        record = store.get_experiment("mo")
        objectives = api.objectives_of(record)
        cache = TrialCache(store, chunk=4)
        cache.trials(record)
        cache.front(record, objectives)
        [a, b] = [t.arch for t in store.trials(record.id)[:2]]
        first = store.reserve_trial(
            record.id, a, "x1", fidelity=None, owner="o", dedup_fidelity=False
        )
        second = store.reserve_trial(
            record.id, b, "x2", fidelity=None, owner="o", dedup_fidelity=False
        )
        assert first.trial is not None and second.trial is not None
        seen = cache.trials(record)
        assert [t.status for t in seen[20:]] == [Status.RUNNING, Status.RUNNING]
        # one ends with an unbeatable trial; the other is lost with its worker, then retried
        best = Result(metrics={"val_acc": 1.0}, costs={"latency_ms": 0.0})
        assert store.finish_trial(first.trial, best, finished_at=time.time()) is not None
        assert store.mark_stale(record.id, second.trial, "died", now=time.time()) is not None
        seen = cache.trials(record)
        assert seen == store.trials(record.id)
        assert seen[20].status is Status.COMPLETE and seen[21].lost
        assert cache.front(record, objectives) == pareto_front(seen, objectives)
        assert [t.number for t in cache.front(record, objectives)] == [20]
        retry = store.claim_retry(record.id, owner="p", max_retries=2, now=time.time())
        assert retry is not None and retry.number == 21
        done = Result(metrics={"val_acc": 0.1}, costs={"latency_ms": 99.0})
        assert store.finish_trial(retry, done, finished_at=time.time()) is not None
        seen = cache.trials(record)
        assert seen == store.trials(record.id)
        assert seen[21].status is Status.COMPLETE and seen[21].attempt == 2
        assert cache.front(record, objectives) == pareto_front(seen, objectives)

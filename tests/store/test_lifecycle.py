"""A trial's life in the store (reserve, heartbeat, finish, stale, retry) on SQLite and on a
real PostgreSQL, including concurrent processes and the upgrade of a schema-1 store."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from nasforge.architecture import Architecture
from nasforge.result import Result, Status
from nasforge.store.base import STALE_PREFIX, Limit
from nasforge.store.sql import SCHEMA_VERSION, SqlStore

CONFIG = {"space": "gnn", "strategy": "random", "seed": 0}
OPS = ["gcn", "gat", "sage", "gin", "cheb", "arma", "graph", "fc", "skip"]


def arch(i: int) -> Architecture:
    return Architecture.create(
        "gnn", links=[0, 0, 1, 2], ops=[OPS[i % 9], OPS[(i // 9) % 9], OPS[(i // 81) % 9], "fc"]
    )


def test_reserve_stores_a_running_trial_and_refuses_duplicates(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("e", CONFIG)
    first = store.reserve_trial(
        rec.id, arch(0), "k0", fidelity=None, owner="me", dedup_fidelity=False
    )
    assert first.trial is not None and first.existing is None and not first.spent
    assert first.trial.status is Status.RUNNING and first.trial.number == 0
    assert first.trial.owner == "me" and first.trial.attempt == 1
    assert first.trial.heartbeat_at is not None
    again = store.reserve_trial(
        rec.id, arch(0), "k0", fidelity=None, owner="other", dedup_fidelity=False
    )
    assert again.trial is None and again.existing is not None and again.existing.number == 0
    [stored] = store.trials(rec.id)
    assert stored.status is Status.RUNNING and stored.owner == "me"


def test_fidelity_is_part_of_the_identity_when_asked(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("e", CONFIG)
    low = store.reserve_trial(rec.id, arch(0), "k0", fidelity=5, owner="me", dedup_fidelity=True)
    high = store.reserve_trial(rec.id, arch(0), "k0", fidelity=20, owner="me", dedup_fidelity=True)
    same = store.reserve_trial(rec.id, arch(0), "k0", fidelity=20, owner="me", dedup_fidelity=True)
    assert low.trial is not None and high.trial is not None
    assert same.existing is not None and same.existing.fidelity == 20
    assert [t.fidelity for t in store.trials(rec.id)] == [5, 20]


@pytest.mark.parametrize(("unit", "expected"), [(Limit.TRIALS, 3), (Limit.ARCHS, 3)])
def test_the_budget_is_enforced_by_the_store(store: SqlStore, unit: Limit, expected: int) -> None:
    rec, _ = store.get_or_create_experiment("e", CONFIG)
    answers = [
        store.reserve_trial(
            rec.id,
            arch(i),
            f"k{i}",
            fidelity=None,
            owner="me",
            dedup_fidelity=False,
            limit=(unit, 3),
        )
        for i in range(5)
    ]
    assert [a.trial is not None for a in answers] == [True, True, True, False, False]
    assert all(a.spent for a in answers[3:])
    assert store.count_trials(rec.id) == expected


def test_finish_stores_the_outcome_once(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("e", CONFIG)
    trial = store.reserve_trial(
        rec.id, arch(0), "k0", fidelity=7, owner="me", dedup_fidelity=False
    ).trial
    assert trial is not None
    result = Result(metrics={"val_acc": 0.8}, test_metrics={"test_acc": 0.7}, wall_time=1.5)
    done = store.finish_trial(trial, result, finished_at=time.time())
    assert done is not None and done.status is Status.COMPLETE and done.fidelity == 7
    assert done.metrics == {"val_acc": 0.8}
    [stored] = store.trials(rec.id)
    assert stored.status is Status.COMPLETE and stored.metrics == {"val_acc": 0.8}
    assert stored.test_metrics == {"test_acc": 0.7} and stored.wall_time == 1.5
    # a second finish (a duplicate delivery) changes nothing
    assert store.finish_trial(trial, Result.failed("late"), finished_at=time.time()) is None
    assert store.trials(rec.id)[0].status is Status.COMPLETE


def test_a_stale_trial_is_retried_and_its_late_result_dropped(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("e", CONFIG)
    trial = store.reserve_trial(
        rec.id, arch(0), "k0", fidelity=None, owner="dead", dedup_fidelity=False
    ).trial
    assert trial is not None
    assert store.heartbeat([trial], now=time.time()) == {trial.id}
    stale = store.mark_stale(rec.id, trial, "its process died", now=time.time())
    assert stale is not None and stale.lost and stale.status is Status.FAILED
    assert stale.error == STALE_PREFIX + "its process died"
    assert stale.state == "FAILED (stale)"
    assert store.mark_stale(rec.id, trial, "again", now=time.time()) is None  # only once
    assert store.heartbeat([trial], now=time.time()) == set()  # no longer the owner's
    retry = store.claim_retry(rec.id, owner="new", max_retries=2, now=time.time())
    assert retry is not None and retry.number == trial.number and retry.attempt == 2
    assert retry.owner == "new" and retry.status is Status.RUNNING
    # the former owner's result arrives late: dropped
    assert store.finish_trial(trial, Result(metrics={"val_acc": 0.1}), finished_at=0) is None
    done = store.finish_trial(retry, Result(metrics={"val_acc": 0.9}), finished_at=time.time())
    assert done is not None and done.attempt == 2
    [stored] = store.trials(rec.id)
    assert stored.metrics == {"val_acc": 0.9} and not stored.lost and stored.attempt == 2
    assert store.claim_retry(rec.id, owner="new", max_retries=2, now=time.time()) is None


def test_retries_stop_at_max_retries(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("e", CONFIG)
    trial = store.reserve_trial(
        rec.id, arch(0), "k0", fidelity=None, owner="a", dedup_fidelity=False
    ).trial
    assert trial is not None
    for attempt in (1, 2):
        lost = Result.failed("the worker process died", lost=True)
        done = store.finish_trial(trial, lost, finished_at=time.time())
        assert done is not None and done.lost and done.attempt == attempt
        assert done.error == STALE_PREFIX + "the worker process died"
        claimed = store.claim_retry(rec.id, owner="a", max_retries=1, now=time.time())
        if attempt == 2:
            assert claimed is None  # one retry allowed: attempts 1 and 2
        else:
            assert claimed is not None
            trial = claimed
    [stored] = store.trials(rec.id)
    assert stored.status is Status.FAILED and stored.lost and stored.attempt == 2


def test_concurrent_reservations_never_share_an_architecture(target: str) -> None:
    with SqlStore(target) as setup:
        rec, _ = setup.get_or_create_experiment("conc", CONFIG)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        try:
            with SqlStore(target) as s:
                for i in range(40):  # every worker tries the same 40 architectures
                    r = s.reserve_trial(
                        rec.id,
                        arch(i),
                        f"k{i}",
                        fidelity=None,
                        owner=name,
                        dedup_fidelity=False,
                        limit=(Limit.TRIALS, 30),
                    )
                    if r.trial is not None:
                        with lock:
                            got.append(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == len(set(got)) == 30
    with SqlStore(target) as s:
        stored = s.trials(rec.id)
    assert [t.number for t in stored] == list(range(30))
    assert len({t.key for t in stored}) == 30


V1_TRIALS = """
CREATE TABLE nasforge_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE nasforge_experiments (id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(255) NOT NULL UNIQUE, config JSON NOT NULL, created_at FLOAT NOT NULL);
CREATE TABLE nasforge_trials (id INTEGER PRIMARY KEY AUTOINCREMENT,
  experiment_id INTEGER NOT NULL REFERENCES nasforge_experiments(id) ON DELETE CASCADE,
  number INTEGER NOT NULL, arch JSON NOT NULL, key VARCHAR(512) NOT NULL, fidelity INTEGER,
  status VARCHAR(16) NOT NULL, metrics JSON NOT NULL, test_metrics JSON NOT NULL,
  costs JSON NOT NULL, curve JSON NOT NULL, error TEXT, started_at FLOAT, finished_at FLOAT,
  wall_time FLOAT, CONSTRAINT uq_trial_number UNIQUE (experiment_id, number));
INSERT INTO nasforge_meta VALUES ('schema_version', '1');
INSERT INTO nasforge_experiments VALUES (1, 'old', '{"space": "gnn"}', 0.0);
"""


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_TRIALS)
    conn.execute(
        "INSERT INTO nasforge_trials (experiment_id, number, arch, key, status, metrics, "
        "test_metrics, costs, curve, started_at, finished_at, wall_time) VALUES "
        "(1, 0, ?, 'k0', 'COMPLETE', '{\"val_acc\": 0.5}', '{}', '{}', '[]', 0, 1, 1)",
        (__import__("json").dumps(arch(0).to_dict()),),
    )
    conn.commit()
    conn.close()
    with SqlStore(db) as store:
        [old] = store.trials(1)
        assert old.metrics == {"val_acc": 0.5} and old.attempt == 1 and not old.lost
        assert old.status is Status.COMPLETE and old.device is None
        new = store.reserve_trial(1, arch(1), "k1", fidelity=None, owner="me", dedup_fidelity=False)
        assert new.trial is not None and new.trial.number == 1
        assert store.integrity_check() == "ok"
    conn = sqlite3.connect(db)
    version = conn.execute("SELECT value FROM nasforge_meta WHERE key='schema_version'").fetchone()
    conn.close()
    assert int(version[0]) == SCHEMA_VERSION == 4

"""The conformance suite every store backend passes: a SQLite file and a real PostgreSQL."""

from __future__ import annotations

import math
import threading

import pytest

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.result import Result, Status
from nasforge.store.sql import SCHEMA_VERSION, SqlStore

ARCH = Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn", "gat", "skip", "fc"])
CONFIG = {"space": "gnn", "strategy": "random", "seed": 0}


def _result(val: float, **kw: object) -> Result:
    return Result(metrics={"val_acc": val}, test_metrics={"test_acc": val - 0.01}, **kw)  # type: ignore[arg-type]


def test_experiments_are_created_once(store: SqlStore) -> None:
    rec, created = store.get_or_create_experiment("exp", CONFIG)
    again, created_again = store.get_or_create_experiment("exp", {"other": 1})
    assert created and not created_again
    assert again == rec and dict(again.config) == CONFIG
    assert [e.name for e in store.list_experiments()] == ["exp"]
    assert store.get_experiment("exp") == rec


def test_unknown_experiment_lists_the_stored_ones(store: SqlStore) -> None:
    store.get_or_create_experiment("alpha", CONFIG)
    with pytest.raises(ConfigError, match=r"no experiment named 'beta'.*stored: alpha"):
        store.get_experiment("beta")


def test_trials_round_trip_with_gapless_numbers(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("exp", CONFIG)
    curve = ({"epoch": 1.0, "val_acc": 0.5},)
    added = [
        store.add_trial(
            rec.id,
            ARCH,
            "k0",
            _result(0.8, costs={"params": 10.0}, curve=curve, fidelity=3),
            started_at=1.0,
            finished_at=2.0,
        ),
        store.add_trial(
            rec.id, ARCH, "k1", Result.failed("boom: exploded"), started_at=3.0, finished_at=4.0
        ),
        store.add_trial(
            rec.id, ARCH, "k2", Result(metrics={"val_acc": math.nan}), started_at=5, finished_at=6
        ),
    ]
    assert [t.number for t in added] == [0, 1, 2]
    got = store.trials(rec.id)
    assert [t.number for t in got] == [0, 1, 2]
    first = got[0]
    assert first.arch == ARCH and first.key == "k0" and first.fidelity == 3
    assert first.metrics == {"val_acc": 0.8} and first.test_metrics == {"test_acc": 0.8 - 0.01}
    assert first.costs == {"params": 10.0} and first.curve == curve
    assert got[1].status is Status.FAILED and got[1].error == "boom: exploded"
    assert math.isnan(got[2].metrics["val_acc"])  # NaN survives as NaN, never as a number
    assert not got[2].to_result().ok
    assert store.count_trials(rec.id) == 3
    assert [t.number for t in store.trials(rec.id, status=Status.FAILED)] == [1]
    assert [t.number for t in store.trials(rec.id, after=0)] == [1, 2]  # what a poller lacks
    assert store.trials(rec.id, after=2) == []
    assert [t.number for t in store.trials(rec.id, status=Status.COMPLETE, after=0)] == [2]


def test_records_are_frozen(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("exp", CONFIG)
    trial = store.add_trial(rec.id, ARCH, "k", _result(0.5), started_at=0, finished_at=1)
    with pytest.raises(AttributeError):
        trial.number = 9  # type: ignore[misc]


def test_experiments_keep_their_own_numbering(store: SqlStore) -> None:
    a, _ = store.get_or_create_experiment("a", CONFIG)
    b, _ = store.get_or_create_experiment("b", CONFIG)
    for _ in range(3):
        store.add_trial(a.id, ARCH, "k", _result(0.1), started_at=0, finished_at=0)
    assert store.add_trial(b.id, ARCH, "k", _result(0.1), started_at=0, finished_at=0).number == 0


def test_concurrent_writers_get_unique_gapless_numbers(target: str) -> None:
    with SqlStore(target) as setup:
        rec, _ = setup.get_or_create_experiment("conc", CONFIG)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with SqlStore(target) as s:
                for _ in range(25):
                    s.add_trial(rec.id, ARCH, "k", _result(0.2), started_at=0, finished_at=0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with SqlStore(target) as s:
        assert [t.number for t in s.trials(rec.id)] == list(range(100))


def test_schema_version_is_recorded(store: SqlStore) -> None:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        version = conn.execute(
            sa.text("SELECT value FROM nasforge_meta WHERE key = 'schema_version'")
        ).scalar_one()
    assert int(version) == SCHEMA_VERSION


def test_reopening_keeps_everything(target: str) -> None:
    with SqlStore(target) as s:
        rec, _ = s.get_or_create_experiment("keep", CONFIG)
        s.add_trial(rec.id, ARCH, "k", _result(0.7), started_at=0, finished_at=0)
    with SqlStore(target, create=False) as s:
        assert s.get_experiment("keep").config == CONFIG
        assert s.trials(rec.id)[0].metrics == {"val_acc": 0.7}


def test_phase_records_are_replaced_by_step_and_read_in_order(store: SqlStore) -> None:
    rec, _ = store.get_or_create_experiment("exp", CONFIG)
    other, _ = store.get_or_create_experiment("other", CONFIG)
    for step in (3, 1, 2):
        store.put_phase(rec.id, "epoch", step, {"loss": float(step), "w": [0.5, 0.5]})
    store.put_phase(rec.id, "epoch", 2, {"loss": 20.0})  # a resumed phase runs epoch 2 again
    store.put_phase(rec.id, "result", 0, {"derived": [ARCH.to_dict()]})
    store.put_phase(other.id, "epoch", 1, {"loss": 9.0})
    epochs = store.phase(rec.id, "epoch")
    assert [(r.step, r.data["loss"]) for r in epochs] == [(1, 1.0), (2, 20.0), (3, 3.0)]
    assert epochs[0].data["w"] == [0.5, 0.5] and epochs[0].kind == "epoch"
    (result,) = store.phase(rec.id, "result")
    assert Architecture.from_dict(result.data["derived"][0]) == ARCH
    assert [r.data for r in store.phase(other.id, "epoch")] == [{"loss": 9.0}]
    assert store.phase(rec.id, "generation") == []
    with pytest.raises(ConfigError, match="plain JSON"):
        store.put_phase(rec.id, "epoch", 4, {"bad": object()})

"""The search loop's work per trial does not grow with the number of stored trials.

Counted, not timed: every statement the store runs and SQLite's virtual-machine steps (the
work inside a statement, which grows when a query scans the experiment's trials instead of
using an index), from the driver's own hooks on every connection the store opens.
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
from pathlib import Path
from typing import Any

import pytest

from nasforge import api
from nasforge.errors import DamagedRowWarning
from nasforge.experiment import Progress
from nasforge.spaces.gnn import GnnSpace
from nasforge.store.base import Limit
from nasforge.store.sql import SqlStore

_CONNECT = sqlite3.connect
STEPS = 100  # SQLite calls the progress handler once per this many VM instructions


class Counter:
    """Statements and VM steps of every connection opened while installed."""

    def __init__(self) -> None:
        self.statements = 0
        self.steps = 0

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = _CONNECT(*args, **kwargs)
        conn.set_trace_callback(self._statement)
        conn.set_progress_handler(self._step, STEPS)
        return conn

    def _statement(self, _sql: str) -> None:
        self.statements += 1

    def _step(self) -> int:
        self.steps += 1
        return 0  # go on


def _per_trial(
    monkeypatch: pytest.MonkeyPatch, db: Path, strategy: str, trials: int, windows: list[int]
) -> dict[int, tuple[float, float]]:
    """Median statements and VM steps per trial over 100 trials from each of ``windows``."""
    counter = Counter()
    marks: list[tuple[int, int]] = []

    def mark(_: Progress) -> None:
        marks.append((counter.statements, counter.steps))

    monkeypatch.setattr(sqlite3.dbapi2, "connect", counter.connect)
    api.search(
        benchmark="nas-bench-graph:cora",
        strategy=strategy,
        budget=f"{trials}trials",
        seed=0,
        db=db,
        callback=mark,
    )
    assert len(marks) == trials
    out = {}
    for start in windows:
        span = marks[start : start + 101]
        deltas = [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(span)]
        out[start] = (
            statistics.median(d[0] for d in deltas),
            statistics.median(d[1] for d in deltas),
        )
    return out


@pytest.mark.parametrize("strategy", ["random", "evolution", "local"])
def test_store_work_per_trial_is_the_same_at_100_and_at_5000_trials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, strategy: str
) -> None:
    counts = _per_trial(monkeypatch, tmp_path / "s.db", strategy, 5000, [100, 4899])
    (early_statements, early_steps), (late_statements, late_steps) = counts[100], counts[4899]
    assert early_statements > 0 and early_steps > 0
    assert late_statements == early_statements
    # B-tree look-ups grow with log n (a level more at most); a scan would be ~50x here
    assert late_steps <= 1.25 * early_steps, counts


def test_the_budget_check_counts_rows_only_at_the_limit(tmp_path: Path) -> None:
    """Stored numbers below the limit settle it; at the limit the exact count decides."""
    with SqlStore(tmp_path / "b.db") as store:
        space = GnnSpace()
        record, _ = store.get_or_create_experiment("b", {"space": "gnn"})
        archs = list(space.enumerate())[:5]

        def reserve(i: int, limit: tuple[Limit, int], fidelity: int | None = None) -> Any:
            return store.reserve_trial(
                record.id,
                archs[i],
                space.canonical_key(archs[i]),
                fidelity=fidelity,
                owner="o",
                dedup_fidelity=limit[0] is Limit.ARCHS,
                limit=limit,
            )

        for i in range(3):
            assert reserve(i, (Limit.TRIALS, 3)).trial is not None
        assert reserve(3, (Limit.TRIALS, 3)).spent and store.count_trials(record.id) == 3
        # an archs budget: one key at two fidelities is one architecture
        again = reserve(0, (Limit.ARCHS, 4), fidelity=7)
        assert again.trial is not None and again.trial.number == 3
        # 4 trials but 3 architectures: room for one more
        assert reserve(3, (Limit.ARCHS, 4)).trial is not None
        assert reserve(4, (Limit.ARCHS, 4)).spent


def test_a_damaged_row_does_not_make_each_look_at_the_store_read_the_history(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The loop hears other processes' trials by reading those stored since its last look
    and those it saw unsettled: a row it can never settle (damaged) is not read again and
    again with everything after it."""
    import nasforge.experiment as experiment_module

    db = tmp_path / "d.db"
    settings = {"benchmark": "nas-bench-graph:cora", "strategy": "random", "seed": 0, "db": db}
    api.search(budget="50trials", **settings)  # type: ignore[arg-type]
    conn = sqlite3.connect(db)
    conn.execute("UPDATE nasforge_trials SET arch = 'not json' WHERE number = 3")
    conn.commit()
    conn.close()

    read: list[int] = []
    trials = SqlStore.trials

    def counting(self: SqlStore, experiment_id: int, **kwargs: Any) -> list[Any]:
        out = trials(self, experiment_id, **kwargs)
        if kwargs.get("after") is not None or kwargs.get("numbers") is not None:
            read.append(len(out))
        return out

    monkeypatch.setattr(SqlStore, "trials", counting)
    monkeypatch.setattr(experiment_module, "POLL_INTERVAL_S", 0.0)  # look after every trial
    with pytest.warns(DamagedRowWarning, match="trial 3 of"):
        result = api.search(budget="1050trials", **settings)  # type: ignore[arg-type]
    assert result.summary.new_trials == 1000  # the store counts the damaged row as stored
    assert len(read) >= 1000
    assert max(read) <= 2  # the trial just stored (and one more at most), never the history


def test_the_log_is_checkpointed_beside_the_loop_and_stays_small(tmp_path: Path) -> None:
    """The loop's connection leaves checkpoints of the write-ahead log to a thread of its own
    (so that no commit of the loop waits for one); the log is still restarted, so it stays
    bounded instead of growing with every trial (~80 MB for these 3,000 without)."""
    db = tmp_path / "w.db"
    wal = Path(f"{db}-wal")
    sizes: list[int] = []

    def watch(progress: Progress) -> None:
        if progress.trials % 100 == 0:
            sizes.append(wal.stat().st_size)

    api.search(
        benchmark="nas-bench-graph:cora",
        strategy="random",
        budget="3000trials",
        seed=0,
        db=db,
        callback=watch,
    )
    assert len(sizes) == 30
    assert max(sizes) < 32 * 2**20, sizes  # restarted at every checkpoint: ~4-8 MB
    assert not wal.exists() or wal.stat().st_size == 0  # the store's close merged it
    with SqlStore(db) as store:
        assert store.integrity_check() == "ok"
        assert (
            store.count_trials(store.get_experiment("nas-bench-graph:cora-random-seed0").id) == 3000
        )

"""kill -9 during a search: every trial reported done survives, and the search resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasforge.store.sql import SqlStore

CHILD = """
import os, sys
from nasforge import api
log = open(sys.argv[2], "a")
def done(p):
    log.write(f"{p.last.number}\\n"); log.flush(); os.fsync(log.fileno())
api.search(benchmark="nas-bench-graph:cora", strategy="evolution", budget="20000trials",
           seed=0, name="crash", db=sys.argv[1], callback=done)
"""


def _lines(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


@pytest.mark.slow
def test_kill_9_loses_no_reported_trial(tmp_path: Path) -> None:
    db, log = tmp_path / "crash.db", tmp_path / "done.log"
    rounds = 4
    for round_ in range(rounds):
        before = _lines(log)
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(log)])
        # the kill lands mid-search: once this round has reported a trial (start-up takes
        # seconds on a busy machine), a little later each round
        deadline = time.monotonic() + 120
        while _lines(log) == before and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3 + 0.4 * round_)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reported = [int(x) for x in log.read_text().split()]
        with SqlStore(db, create=False) as store:
            assert store.integrity_check() == "ok"
            numbers = [t.number for t in store.trials(store.get_experiment("crash").id)]
            keys = [t.key for t in store.trials(store.get_experiment("crash").id)]
        assert numbers == list(range(len(numbers)))  # no gaps, no duplicates
        assert set(reported) <= set(numbers)  # everything reported done is stored
        assert len(set(keys)) == len(keys)  # no architecture evaluated twice across resumes
        assert len(numbers) >= len(reported)
    assert len(numbers) > rounds * 10

"""Chaos tests: SIGKILL the search and its workers, share one experiment between processes,
hang trials. Each runs ``benchmarks/chaos.py`` (the script behind the committed chaos report)
at the sizes below, then checks the store it left with its own eyes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nasforge.result import Status
from nasforge.store.sql import SqlStore

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "chaos.py"


def chaos(tmp_path: Path, scenario: str, *args: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--scenarios",
            scenario,
            "--workdir",
            str(tmp_path),
            "--out",
            str(tmp_path / "chaos.md"),
            "--json",
            str(out),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=SCRIPT.parents[1],
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(out.read_text())[scenario])


def check_store(db: str, trials: int) -> None:
    """Exactly ``trials`` trials, numbered without gaps, all COMPLETE, no architecture twice."""
    with SqlStore(db, create=False) as store:
        assert store.integrity_check() == "ok"
        stored = store.trials(store.get_experiment("chaos").id)
    assert [t.number for t in stored] == list(range(trials))
    assert all(t.status is Status.COMPLETE for t in stored), [
        (t.number, t.status, t.error) for t in stored if t.status is not Status.COMPLETE
    ]
    assert len({t.key for t in stored}) == trials


def check_kill_loop(result: dict[str, Any], trials: int, rounds: int) -> None:
    """After every kill nothing is lost or charged; the last run meets the budget exactly."""
    assert len(result["rounds"]) == rounds
    for r in result["rounds"]:
        assert r["lost_or_changed"] == 0 and r["charged"] == 0, r
        assert r["integrity"] == "ok" and r["gapless"] and r["distinct"], r
        assert r["workers_gone"], r  # the dead driver's workers do not linger
    final = result["final"]
    assert result["final_exit"] == 0, result["final_stderr"]
    assert final["rows"] == final["complete"] == trials and final["running"] == 0, final
    assert final["lost_or_changed"] == 0 and final["charged"] == 0, final
    assert final["stale"] == 0 and not final["failed"], final
    check_store(result["db"], trials)


@pytest.mark.slow
def test_driver_killed_20_times_loses_nothing(tmp_path: Path) -> None:
    result = chaos(tmp_path, "driver", "--rounds", "20", "--trials", "64", "--workers", "2")
    check_kill_loop(result, 64, 20)
    rounds = result["rounds"]
    assert sum(not r["finished_before_kill"] for r in rounds) >= 15, rounds  # mid-search
    assert sum(r["running_left"] > 0 for r in rounds) >= 5, rounds  # ... and mid-trial


def test_driver_killed_a_few_times_loses_nothing(tmp_path: Path) -> None:
    result = chaos(tmp_path, "driver", "--rounds", "3", "--trials", "16", "--delay", "0.5")
    check_kill_loop(result, 16, 3)


@pytest.mark.slow
def test_training_search_killed_20_times_charges_no_attempt(tmp_path: Path) -> None:
    result = chaos(tmp_path, "training", "--training-rounds", "20", "--training-trials", "120")
    check_kill_loop(result, 120, 20)
    rounds = result["rounds"]
    assert sum(not r["finished_before_kill"] for r in rounds) >= 10, rounds
    assert sum(r["running_left"] > 0 for r in rounds) >= 10, rounds  # killed mid-training


def test_training_search_killed_a_few_times_charges_no_attempt(tmp_path: Path) -> None:
    result = chaos(
        tmp_path, "training", "--training-rounds", "3", "--training-trials", "8", "--epochs", "10"
    )
    check_kill_loop(result, 8, 3)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried(tmp_path: Path) -> None:
    result = chaos(tmp_path, "worker", "--trials", "32", "--worker-kills", "3", "--delay", "0.5")
    assert result["exit"] == 0, result["stderr"]
    assert result["kills"] >= 1
    assert result["retried"] >= 1 and result["running"] == 0 and result["stale_left"] == 0
    check_store(result["db"], 32)


@pytest.mark.slow
def test_four_processes_share_one_postgresql_experiment(tmp_path: Path, pg_url: str) -> None:
    # pg_url skips with the reason when no server answers; the script makes its own database
    result = chaos(
        tmp_path, "shared", "--processes", "4", "--shared-trials", "80", "--pg-url", pg_url
    )
    assert result["exits"] == [0, 0, 0, 0]
    assert result["rows"] == result["complete"] == 80
    assert result["distinct"] and result["gapless"] and result["running"] == 0
    assert sum(result["new_by_process"]) == 80
    assert all(n > 0 for n in result["new_by_process"])  # every process took part
    assert result["owners"] == 4


@pytest.mark.slow
def test_sqlite_under_contention_never_reports_locked(tmp_path: Path) -> None:
    result = chaos(tmp_path, "contention", "--processes", "4", "--contention-trials", "400")
    assert result["exits"] == [0, 0, 0, 0] and result["reader_exit"] == 0, result["errors"]
    assert result["locked_errors"] == 0, result["errors"]
    assert result["reads"] > 0
    assert result["rows"] == 400 and result["gapless"] and result["distinct"]
    assert result["integrity"] == "ok"


@pytest.mark.slow
def test_a_hanging_trial_is_killed_at_its_timeout(tmp_path: Path) -> None:
    result = chaos(tmp_path, "timeout", "--trial-timeout", "2")
    assert result["exit"] == 0, result["stderr"]
    assert result["timed_out"] >= 1 and result["hung_processes"] == result["timed_out"]
    assert result["left_alive"] == 0  # the hung worker and the child it started
    assert all("timed out after 2 s" in r for r in result["reasons"])
    assert result["rows"] == 16 and result["running"] == 0
    assert result["complete"] == 16 - result["timed_out"]

"""``search --executor/--workers/--ray-address``: one Experiment code path, checked up front."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nasforge import api
from nasforge.cli import main
from nasforge.result import Status


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code or 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BASE = ["search", "--benchmark", "nas-bench-graph:cora", "--budget", "6", "--no-progress"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "inline", "--workers", "2"], "inline executor runs one trial at a time"),
        (["--executor", "process", "--ray-address", "auto"], "applies to the ray executor only"),
        (["--executor", "dask"], "invalid choice: 'dask'"),
    ],
)
def test_bad_executor_settings_exit_2_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    db = tmp_path / "runs.db"
    assert _exit_code([*BASE, "--db", str(db), *args]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()


def test_process_executor_runs_the_same_search(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    argv = [*BASE, "--db", str(db), "--strategy", "random"]
    assert main([*argv, "--name", "inline"]) == 0
    assert main([*argv, "--name", "procs", "--executor", "process", "--workers", "2"]) == 0
    inline, procs = api.trials("inline", db=db), api.trials("procs", db=db)
    assert len(procs) == 6 and all(t.status is Status.COMPLETE for t in procs)
    assert {t.key for t in inline} == {t.key for t in procs}  # the same proposals, any order


def test_nothing_at_the_ray_address_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    db = tmp_path / "runs.db"
    address = f"127.0.0.1:{_free_port()}"
    code = _exit_code([*BASE, "--db", str(db), "--executor", "ray", "--ray-address", address])
    assert code == 2
    assert f"no Ray cluster answers at {address}" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.slow
def test_sigterm_stops_a_training_search_cleanly_and_it_resumes(tmp_path: Path) -> None:
    """kill, timeout, a container or batch system: the trials in flight go back to the store
    for a resume, and the workers stop with the search."""
    db = tmp_path / "runs.db"
    command = [sys.executable, "-m", "nasforge.cli", "search", "--task", "synthetic",
               "--budget", "4", "--epochs", "3000", "--patience", "3000", "--workers", "2",
               "--name", "term", "--db", str(db), "--no-progress"]  # fmt: skip
    search = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _running(db) and time.monotonic() < deadline:  # both trials training
        time.sleep(0.2)
    workers = psutil.Process(search.pid).children(recursive=True)
    search.send_signal(signal.SIGTERM)
    _, stderr = search.communicate(timeout=60)
    assert search.returncode == 143, stderr
    assert "terminated: every finished trial is stored; run the same command" in stderr
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    trials = api.trials("term", db=db)  # lost, not failed: a resume runs them again
    assert len(trials) == 2 and all(t.status is Status.FAILED and t.lost for t in trials)


def _running(db: Path) -> bool:
    try:
        trials = api.trials("term", db=db)
    except Exception:  # not created yet
        return False
    return sum(t.status is Status.RUNNING for t in trials) == 2

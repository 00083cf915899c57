"""``search --executor/--workers/--ray-address``: one Experiment code path, checked up front."""

from __future__ import annotations

import socket
from pathlib import Path

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

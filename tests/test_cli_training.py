"""Training searches from the command line: real data, resume, and bad graphs refused early."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge import api
from nasforge.tasks.node import planted_partition

from .test_cli import run

ARGS = ["--strategy", "random", "--epochs", "5", "--hidden", "16", "--no-progress"]


def test_train_on_cora_from_local_raw_files_and_resume(
    tmp_path: Path, planetoid_root: Path
) -> None:
    db = str(tmp_path / "cora.db")
    cmd = [
        "search",
        "--task",
        "planetoid:Cora",
        "--data-root",
        str(planetoid_root),
        "--budget",
        "2",
        "--name",
        "cora",
        "--db",
        db,
        *ARGS,
    ]
    first = run(*cmd)
    assert first.returncode == 0, first.stderr
    again = run(*[c if c != "2" else "3" for c in cmd])
    assert again.returncode == 0, again.stderr
    assert "resumed cora: 2 stored trials kept" in again.stdout and "1 new trials" in again.stdout
    rows = [
        json.loads(x)
        for x in run("trials", "--name", "cora", "--db", db, "--json").stdout.splitlines()
    ]
    assert [r["number"] for r in rows] == [0, 1, 2]
    assert all(r["status"] == "COMPLETE" and 0 < r["metrics"]["val_acc"] <= 1 for r in rows)
    assert all({"params", "flops", "latency_ms"} <= set(r["costs"]) for r in rows)
    changed = run(
        *cmd[: -len(ARGS)],
        "--strategy",
        "random",
        "--epochs",
        "6",
        "--hidden",
        "16",
        "--no-progress",
    )
    assert changed.returncode == 2 and "exists with other settings" in changed.stderr


def test_synthetic_search_through_the_python_api(tmp_path: Path) -> None:
    result = api.search(
        task="synthetic",
        strategy="evolution",
        budget=3,
        epochs=10,
        db=tmp_path / "s.db",
        training={"hidden": 16},
        name="s",
    )
    assert result.summary.new_trials == 3 and result.best is not None
    assert result.best.fidelity == 10 and len(result.best.curve) == 10


def test_exact_training_is_a_stored_setting(tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")
    cmd = ["search", "--task", "synthetic", "--budget", "1", "--name", "e", "--db", db, *ARGS]
    first = run(*cmd, "--exact")
    assert first.returncode == 0, first.stderr
    assert run(*cmd, "--exact").returncode == 0  # the same search: resumed
    other = run(*cmd)  # the fast ops draw other dropout masks: another search
    assert other.returncode == 2 and "exists with other settings" in other.stderr


def _save(path: Path, **overrides: object) -> Path:
    data = planted_partition(nodes=50, classes=3, features=4, seed=0)
    arrays = {
        k: data[k].numpy() for k in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask")
    }
    arrays.update(overrides)  # type: ignore[arg-type]
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"y": np.zeros(40, dtype=np.int64)}, "y must hold one label per node: x has 50 nodes"),
        ({"x": np.full((50, 4), np.nan, dtype=np.float32)}, "NaN or infinite features in 50 nodes"),
        ({"y": np.full(50, -3, dtype=np.int64)}, "labels must be in 0..C-1, found -3"),
        ({"x": np.zeros((0, 4), dtype=np.float32), "y": np.zeros(0, dtype=np.int64)}, "non-empty"),
        ({"val_mask": np.zeros(50, dtype=bool)}, "val_mask selects no node"),
    ],
)
def test_bad_graph_files_fail_before_training(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    path = _save(tmp_path / "g.npz", **overrides)
    proc = run("search", "--task", f"file:{path}", "--db", str(tmp_path / "x.db"), *ARGS)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in " ".join(proc.stderr.split())
    assert not (tmp_path / "x.db").exists()  # refused before the store was even opened


def test_missing_masks_in_a_pt_file(tmp_path: Path) -> None:
    import torch

    data = planted_partition(nodes=50, classes=3, features=4, seed=0)
    torch.save(
        {"x": data.x, "y": data.y, "edge_index": data.edge_index, "train_mask": data.train_mask},
        tmp_path / "g.pt",
    )
    proc = run(
        "search", "--task", f"file:{tmp_path / 'g.pt'}", "--db", str(tmp_path / "x.db"), *ARGS
    )
    assert proc.returncode == 2 and "val_mask is missing" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", "planetoid:Cora", "--data-root", "/nonexistent"],
            "lacks the Planetoid raw files",
        ),
        (["--task", "mnist"], "unknown task 'mnist'; valid forms: planetoid:Cora"),
        (["--task", "synthetic", "--workers", "0"], "must be an integer >= 1, got '0'"),
        (["--task", "synthetic", "--optimizer", "rmsprop"], "optimizer must be one of adam, sgd"),
        (
            ["--benchmark", "nas-bench-graph:cora", "--task", "synthetic"],
            "not allowed with argument",
        ),
        (
            ["--benchmark", "nas-bench-graph:cora", "--epochs", "5"],
            "--epochs applies to --task searches and to nas-bench-201",
        ),
    ],
)
def test_training_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run("search", "--db", str(tmp_path / "x.db"), "--no-progress", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr

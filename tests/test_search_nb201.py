"""The nb201 space end to end: trained on digits, and looked up in a NAS-Bench-201 table."""

from __future__ import annotations

import bz2
import itertools
import pickle
from pathlib import Path
from typing import Any

import pytest

import nasforge
from nasforge import api
from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.result import Status
from nasforge.spaces.nb201 import NB201_OPS, Nb201Space


def test_digits_search_trains_cells_and_resumes(db_path: Path) -> None:
    kwargs: dict[str, Any] = {
        "task": "image:digits",
        "strategy": "random",
        "seed": 0,
        "name": "digits",
        "db": db_path,
        "epochs": 2,
        "training": {"channels": 4, "cells_per_stage": 1},
    }
    first = nasforge.search(budget=3, **kwargs)
    trials = api.trials("digits", db=db_path)
    assert len(trials) == 3 and all(t.status is Status.COMPLETE for t in trials)
    for t in trials:
        assert t.arch.space == "nb201"
        assert 0.1 < t.metrics["val_acc"] <= 1 and "test_acc" in t.test_metrics
        assert t.costs["params"] > 0 and t.fidelity == 2
    assert first.best is not None
    again = nasforge.search(budget=4, **kwargs)
    assert again.summary.resumed_trials == 3 and again.summary.new_trials == 1


def _cell(ops: tuple[str, ...]) -> str:
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def _accuracy(ops: tuple[str, ...]) -> float:
    """A made-up landscape with one best cell class: conv3 on every edge that matters."""
    return 50.0 + 6 * ops.count("nor_conv_3x3") + 2 * ops.count("skip_connect")


@pytest.fixture(scope="module")
def nats_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A NATS-Bench topology single-file table over all 15,625 cells (200 epochs only)."""
    cells = list(itertools.product(NB201_OPS, repeat=6))
    infos = {}
    for index, ops in enumerate(cells):
        acc = _accuracy(ops)
        run = {
            "name": "cifar10-valid",
            "seed": 777,
            "epochs": 200,
            "params": 0.1 + ops.count("nor_conv_3x3") / 10,
            "flop": 10.0,
            "latency": [0.002],
            "train_times": {199: 1.0},
            "eval_names": ["x-valid", "ori-test"],
            "eval_acc1es": {"x-valid@199": acc, "ori-test@199": acc - 1.0},
        }
        infos[index] = {
            "200": {
                "arch_index": index,
                "arch_str": _cell(ops),
                "all_results": {("cifar10-valid", 777): run},
                "dataset_seed": {"cifar10-valid": [777]},
            }
        }
    path = tmp_path_factory.mktemp("nats") / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
    table = {
        "meta_archs": [_cell(c) for c in cells],
        "arch2infos": infos,
        "evaluated_indexes": set(infos),
    }
    with bz2.open(path, "wb") as stream:
        pickle.dump(table, stream, protocol=4)
    return path


def test_benchmark_search_from_the_cli(
    nats_file: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["search", "--benchmark", "nas-bench-201:cifar10-valid", "--table", str(nats_file)]
    args += ["--strategy", "evolution", "--budget", "60", "--db", str(db_path), "--no-progress"]
    assert main([*args, "--name", "nb"]) == 0
    out = capsys.readouterr().out
    assert "val_acc=" in out
    trials = api.trials("nb", db=db_path)
    assert len({t.key for t in trials}) == 60
    space = Nb201Space()
    for t in trials:  # each trial holds the table's numbers of its own cell
        ops = tuple(space.to_string(t.arch).replace("|+|", "|").strip("|").split("|"))
        ops = tuple(o.split("~")[0] for o in ops)
        assert t.metrics["val_acc"] == pytest.approx(_accuracy(ops) / 100)
    best = api.best("nb", db=db_path)
    assert best is not None and best.metrics["val_acc"] >= 0.74  # 4+ conv3 edges found


def test_table_errors(nats_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; expected the directory NATS-tss"):
        api.plan(benchmark="nas-bench-201:cifar100", budget=2, table=tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="applies to nas-bench-201 benchmarks"):
        api.plan(benchmark="nas-bench-graph:cora", budget=2, table=nats_file)
    with pytest.raises(ConfigError, match="has no results for cifar100"):
        plan = api.plan(benchmark="nas-bench-201:cifar100", budget=2, table=nats_file)
        plan.evaluator.evaluate(Nb201Space().sample(__import__("numpy").random.default_rng(0)))

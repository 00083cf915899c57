"""Values that used to slip through are refused in one line that names them and says what is
accepted; an evaluator's bad answer fails its trial, not the search; a search whose trials
all failed exits 1 and says why."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.api import make_strategy
from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.cli import main
from nasforge.errors import ConfigError, InvalidResultError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.result import Result, Status
from nasforge.store.sql import SqlStore
from nasforge.tasks.node import load_graph_file

BENCH = ["--benchmark", "nas-bench-graph:cora"]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert "Traceback" not in captured.out + captured.err
    return line


@pytest.mark.parametrize("seed", [str(2**70), str(2**32), "-1", "1.5", "seven"])
def test_a_seed_out_of_range_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: str
) -> None:
    db = tmp_path / "runs.db"
    with pytest.raises(SystemExit) as stop:
        main(["search", *BENCH, "--budget", "2", "--seed", seed, "--db", str(db)])
    assert stop.value.code == 2
    line = _one_error_line(capsys)
    assert "a seed is an integer from 0 to 4294967295" in line and repr(seed) in line
    assert not db.exists()


def test_the_largest_seed_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    assert main(["search", *BENCH, "--budget", "2", "--seed", str(2**32 - 1), "--db", str(db)]) == 0


@pytest.mark.parametrize("name", ["", " ", "two\nlines", "tab\there", " padded", "x" * 256])
def test_blank_or_unprintable_experiment_names_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    db = tmp_path / "runs.db"
    assert main(["search", *BENCH, "--budget", "2", "--name", name, "--db", str(db)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("error: an experiment name is 1 to 255 characters")
    assert not db.exists()


def test_a_search_whose_trials_all_failed_exits_1_with_the_commonest_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    args = ["search", *BENCH, "--budget", "3", "--name", "run", "--db", str(db), "--no-progress"]
    assert main(args) == 0
    with sqlite3.connect(db) as conn:
        reasons = ["CUDA out of memory\nat line 3", "CUDA out of memory\nat line 9", "other"]
        for number, reason in enumerate(reasons):
            conn.execute(
                "UPDATE nasforge_trials SET status = 'FAILED', metrics = '{}', error = ? "
                "WHERE number = ?",
                (reason, number),
            )
    capsys.readouterr()
    assert main(args) == 1  # resumed: the budget is spent, every trial failed
    line = _one_error_line(capsys)
    assert line == (
        "error: all 3 trials of 'run' failed; the commonest reason (2 of 3): CUDA out of memory"
    )


OBJ = Objective.parse("val_acc:max")


class _Answering(NasBenchGraphEvaluator):
    """The table's answer, except for the trials told to answer ``bad`` instead."""

    def __init__(self, bad: Any, every: int) -> None:
        super().__init__(dataset="cora")
        self.bad, self.every, self.calls = bad, every, 0

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        self.calls += 1
        result = super().evaluate(arch, budget)
        if self.calls % self.every:
            return result
        if self.bad == "not a result":
            return {"val_acc": 0.5}  # type: ignore[return-value]
        return Result(metrics={"val_acc": self.bad}, costs=result.costs)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (None, "metrics['val_acc'] must be a number"),
        ("0.9", "got str '0.9'"),
        (True, "got bool True"),
        ([0.9], "got list"),
        ("not a result", "evaluate() returned dict; it must return a Result"),
    ],
)
def test_an_evaluators_bad_answer_fails_that_trial_only(db_path: Path, bad: Any, said: str) -> None:
    ev = _Answering(bad, every=3)
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="e",
            space=ev.space,
            evaluator=ev,
            strategy=make_strategy("random", ev.space, objective=OBJ, seed=0),
            store=store,
        )
        exp.run(Budget(9, BudgetUnit.TRIALS))
        stored = store.trials(exp.record.id)
    assert len(stored) == 9
    failed = [t for t in stored if t.status is Status.FAILED]
    assert len(failed) == 3 and all(t.status is Status.COMPLETE for t in stored if t not in failed)
    assert all(
        t.error and t.error.startswith("invalid result: ") and said in t.error for t in failed
    )


@pytest.mark.parametrize(
    "value", [np.float32(0.5), np.int64(3), torch.tensor(0.25), np.array(0.75), 1, 0.5]
)
def test_numpy_and_torch_scalars_are_numbers(value: Any) -> None:
    assert math.isclose(Result(metrics={"m": value}).metrics["m"], float(value))


def test_text_is_not_a_number() -> None:
    with pytest.raises(InvalidResultError, match=r"metrics\['m'\] must be a number"):
        Result(metrics={"m": "0.9"})
    with pytest.raises(InvalidResultError, match="must be a mapping"):
        Result(costs=[1.0])  # type: ignore[arg-type]
    with pytest.raises(InvalidResultError):
        Result(metrics={"m": torch.tensor([0.1, 0.2])})


def test_a_float_edge_index_is_refused_unless_it_holds_whole_numbers(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((6, 3)).astype(np.float32)
    y = np.arange(6) % 2
    np.savez(tmp_path / "bad.npz", x=x, y=y, edge_index=np.array([[0, 1.0], [3.5, 2]]))
    with pytest.raises(ConfigError, match=r"edge_index must hold whole node numbers, found 3\.5"):
        load_graph_file(tmp_path / "bad.npz")
    np.savez(tmp_path / "ok.npz", x=x, y=y, edge_index=np.array([[0, 1.0], [3.0, 2]]))
    assert load_graph_file(tmp_path / "ok.npz").edge_index.tolist() == [[0, 1], [3, 2]]


def test_trials_json_is_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    assert main(["search", *BENCH, "--budget", "3", "--name", "run", "--db", str(db)]) == 0
    with sqlite3.connect(db) as conn:  # how a NaN metric is stored
        conn.execute("UPDATE nasforge_trials SET metrics = '{\"val_acc\": null}' WHERE number = 1")
    capsys.readouterr()
    assert main(["trials", "--name", "run", "--json", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line, parse_constant=pytest.fail) for line in lines]
    assert rows[1]["metrics"] == {"val_acc": None}


def test_the_nb201_missing_file_message_speaks_of_the_cli_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NASFORGE_NB201_PATH", raising=False)
    args = ["search", "--benchmark", "nas-bench-201:cifar10-valid", "--budget", "2"]
    assert main([*args, "--db", str(tmp_path / "runs.db")]) == 2
    line = _one_error_line(capsys)
    assert "pass --table FILE" in line and "path=" not in line

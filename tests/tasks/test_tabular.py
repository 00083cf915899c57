"""Tabular tasks: scikit-learn built-ins, CSV and NPZ files, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError
from nasforge.tasks.tabular import BUILTINS, load_builtin, load_csv, load_tabular_file


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_load_with_their_kind(name: str) -> None:
    task = load_builtin(name, seed=0)
    assert task.kind == BUILTINS[name]
    assert task.modality == "tabular" and len(task.input_shape) == 1
    if task.kind == "classification":
        assert task.num_outputs == task.num_classes >= 2
        assert task.y_train.dtype == torch.int64
    else:
        assert task.num_outputs == 1 and task.metric == "rmse"
        assert task.y_train.dtype == torch.float32


def test_unknown_builtin_lists_valid() -> None:
    with pytest.raises(ConfigError, match="valid: breast_cancer, wine, digits, diabetes"):
        load_builtin("iris")


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_classification_with_text_labels(tmp_path: Path) -> None:
    rows = ["a,b,species"] + [f"{i},{i % 3},{'xyz'[i % 3]}" for i in range(30)]
    task = load_csv(_csv(tmp_path / "d.csv", rows))
    assert task.kind == "classification" and task.classes == ("x", "y", "z")
    assert task.input_shape == (2,)
    assert task.describe()["kind_from"] == "guessed"


def test_csv_regression_and_label_choice(tmp_path: Path) -> None:
    rows = ["target,a,b"] + [f"{i * 0.37:.2f},{i},{i * 2}" for i in range(40)]
    path = _csv(tmp_path / "r.csv", rows)
    task = load_csv(path, label="target")
    assert task.kind == "regression" and task.input_shape == (2,)
    forced = load_csv(path, label="a", kind="regression")
    assert forced.kind == "regression" and forced.describe()["label"] == "a"


def test_csv_errors_name_the_problem(tmp_path: Path) -> None:
    good = ["a,b,label"] + [f"{i},{i},{i % 2}" for i in range(20)]
    path = _csv(tmp_path / "d.csv", good)
    with pytest.raises(ConfigError, match="no label column 'y'; columns: a, b, label"):
        load_csv(path, label="y")
    bad = [*good[:5], "1,hello,0", *good[5:]]
    with pytest.raises(ConfigError, match=r"line 6, column 'b'.*got 'hello'"):
        load_csv(_csv(tmp_path / "t.csv", bad), label="label")
    empty_cell = [*good[:3], "1,,0"]
    with pytest.raises(ConfigError, match=r"line 4, column 'b'"):
        load_csv(_csv(tmp_path / "e.csv", empty_cell))
    nan_target = ["a,y"] + [f"{i},{'nan' if i == 4 else i * 0.5}" for i in range(20)]
    with pytest.raises(ConfigError, match="NaN or infinite values in 1 examples"):
        load_csv(_csv(tmp_path / "n.csv", nan_target), kind="regression")
    ragged = [*good[:3], "1,2"]
    with pytest.raises(ConfigError, match="2 cells, but the header has 3"):
        load_csv(_csv(tmp_path / "g.csv", ragged))
    with pytest.raises(ConfigError, match="does not exist"):
        load_csv(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="kind must be one of"):
        load_csv(path, kind="ranking")


def test_npz_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(40, 5)), y=rng.normal(size=40))
    task = load_tabular_file(tmp_path / "t.npz")
    assert task.kind == "regression" and task.input_shape == (5,)
    np.savez(tmp_path / "bad.npz", x=rng.normal(size=(40, 5)), y=np.full(40, np.nan))
    with pytest.raises(ConfigError, match="NaN"):
        load_tabular_file(tmp_path / "bad.npz")

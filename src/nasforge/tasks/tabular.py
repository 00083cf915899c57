"""Tabular classification and regression: the task kind, and loaders for arrays, CSV, NPZ and
scikit-learn's built-ins.

Specs (:class:`TabularKind`): ``tabular:breast_cancer|wine|digits|diabetes``,
``tabular:file:PATH.npz`` and ``csv:PATH``; the default space is ``mlp``, trained with Adam.
torch is imported where it is used: the kind is registered when nasforge is imported.

Loaders:
    * :func:`tabular_task` — a feature matrix (N, F) and targets.
    * :func:`load_builtin` — scikit-learn's ``breast_cancer``, ``wine``, ``digits``
      (classification) and ``diabetes`` (regression); all ship with scikit-learn (offline).
    * :func:`load_csv` — a CSV file with a header row; one column is the label.
    * :func:`load_tabular_file` — an ``.npz`` with arrays ``x`` and ``y``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.tasks.base import TaskKind, TaskSetup
from nasforge.tasks.files import numeric, read_npz
from nasforge.tasks.supervised import KINDS, SupervisedTask, check_split_seed, split_arrays

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUILTINS",
    "TabularKind",
    "load_builtin",
    "load_csv",
    "load_tabular_file",
    "tabular_task",
]

BUILTINS = {
    "breast_cancer": "classification",
    "wine": "classification",
    "digits": "classification",
    "diabetes": "regression",
}

# a numeric label column with at most this many distinct integer values is read as classes
_MAX_AUTO_CLASSES = 50


def tabular_task(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | Sequence[Any],
    *,
    kind: str = "classification",
    name: str = "tabular",
    split: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    classes: Sequence[str] | None = None,
    info: dict[str, Any] | None = None,
) -> SupervisedTask:
    """A tabular task from a feature matrix (N, F) and targets.

    Raises:
        ConfigError: For a non-2-D matrix, NaN values, mismatched lengths, too few examples or
            classes.
    """
    return split_arrays(
        x,
        y,
        name=name,
        modality="tabular",
        kind=kind,
        split=split,
        seed=seed,
        classes=classes,
        info=info,
    )


def load_builtin(
    dataset: str, *, seed: int = 0, split: Sequence[float] = (0.6, 0.2, 0.2)
) -> SupervisedTask:
    """One of scikit-learn's bundled data sets as a tabular task (see :data:`BUILTINS`).

    Raises:
        ConfigError: For an unknown name; the message lists the valid ones.
    """
    import sklearn.datasets as skd

    if dataset not in BUILTINS:
        raise ConfigError(
            f"unknown built-in tabular data set {dataset!r}; valid: {', '.join(BUILTINS)}"
        )
    bunch = getattr(skd, f"load_{dataset}")()
    kind = BUILTINS[dataset]
    classes = None
    if kind == "classification":
        classes = [str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target))]
    return tabular_task(
        bunch.data,
        bunch.target,
        kind=kind,
        name=f"tabular:{dataset}",
        split=split,
        seed=seed,
        classes=classes,
        info={"source": f"sklearn.datasets.load_{dataset}"},
    )


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value


def _guess_kind(values: list[str]) -> str:
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return "classification"  # text labels are classes
    distinct = {n for n in numbers if n is not None}
    integral = all(math.isfinite(n) and float(n).is_integer() for n in distinct)
    return "classification" if integral and len(distinct) <= _MAX_AUTO_CLASSES else "regression"


def load_csv(
    path: str | os.PathLike[str],
    *,
    label: str | None = None,
    kind: str | None = None,
    seed: int = 0,
    split: Sequence[float] = (0.6, 0.2, 0.2),
) -> SupervisedTask:
    """A CSV file with a header row: every column but ``label`` is a numeric feature.

    Args:
        path: The file.
        label: The target column (default: the last column).
        kind: ``classification`` or ``regression``; by default a column of text, or of at most
            50 distinct integers, is read as classes and any other numeric column as a
            regression target (the choice is stored with the task).
        seed: Fixes the train/validation/test split.
        split: Fractions of the three splits.

    Raises:
        ConfigError: For a missing file, a missing label column, a non-numeric or empty
            feature cell (naming row and column), a missing target, or a bad ``kind``.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"CSV file {file} does not exist")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {file} as CSV: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ConfigError(f"{file}: expected a header row and data rows, found {len(rows)} rows")
    header = [h.strip() for h in rows[0]]
    label = label if label is not None else header[-1]
    if label not in header:
        raise ConfigError(f"{file}: no label column {label!r}; columns: {', '.join(header)}")
    col = header.index(label)
    features: list[list[float]] = []
    targets: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ConfigError(
                f"{file}, line {line}: {len(row)} cells, but the header has {len(header)}"
            )
        values: list[float] = []
        for j, cell in enumerate(row):
            text = cell.strip()
            if j == col:
                if not text:
                    raise ConfigError(f"{file}, line {line}: the label {label!r} is empty")
                targets.append(text)
                continue
            number = _number(text)
            if number is None or not math.isfinite(number):
                raise ConfigError(
                    f"{file}, line {line}, column {header[j]!r}: features must be finite "
                    f"numbers, got {text!r} (encode categories as numbers or drop the column)"
                )
            values.append(number)
        features.append(values)
    if len(header) < 2:
        raise ConfigError(f"{file}: needs at least one feature column besides {label!r}")
    chosen = kind or _guess_kind(targets)
    y: np.ndarray
    if chosen == "regression":
        parsed = [_number(t) for t in targets]
        bad = next((t for t, p in zip(targets, parsed, strict=True) if p is None), None)
        if bad is not None:
            raise ConfigError(f"{file}: regression targets must be numbers, got {bad!r}")
        y = np.asarray(parsed, dtype=np.float64)
    else:
        y = np.asarray(targets)
        numeric = [_number(t) for t in targets]
        if all(n is not None for n in numeric):
            y = np.asarray(numeric, dtype=np.float64)
            if np.isfinite(y).all() and all(float(v).is_integer() for v in y):
                y = y.astype(np.int64)
    return tabular_task(
        np.asarray(features, dtype=np.float64),
        y,
        kind=chosen,
        name=f"csv:{file}",
        split=split,
        seed=seed,
        info={
            "source": str(file),
            "label": label,
            "kind_from": "given" if kind else "guessed",
            "features": [h for h in header if h != label],
        },
    )


def load_tabular_file(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    seed: int = 0,
    split: Sequence[float] = (0.6, 0.2, 0.2),
) -> SupervisedTask:
    """An ``.npz`` with arrays ``x`` (N, F) and ``y``; the kind is guessed as for CSV files.

    Raises:
        ConfigError: For a missing or unreadable file, missing keys, or bad arrays.
    """
    file = Path(path).expanduser()
    if not file.is_file() or file.suffix != ".npz":
        raise ConfigError(f"tabular file {file} must be an existing .npz (arrays x and y)")
    arrays = read_npz(file)
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ConfigError(f"{file} lacks array(s) {missing}; found {sorted(arrays)}")
    y = arrays["y"]
    if y.ndim == 0:
        raise ConfigError(f"{file}: 'y' must hold one target per row, got a single value")
    if kind is None:
        kind = _guess_kind([str(v) for v in y.ravel()]) if y.ndim == 1 else "regression"
    x = numeric(file, "x", arrays["x"])
    return tabular_task(x, y, kind=kind, name=f"npz:{file}", split=split, seed=seed)


class TabularKind(TaskKind):
    """Tables: ``tabular:<builtin>``, ``tabular:file:PATH.npz`` and ``csv:PATH``.

    Defaults: the ``mlp`` space, Adam (lr 1e-3, weight decay 1e-4), batches of 64, 100 epochs
    with patience 20. The 60/20/20 split is fixed by the ``split_seed`` option (default 0).
    """

    name = "tabular"
    prefixes = ("tabular", "csv")
    forms = (
        "tabular:breast_cancer",
        "tabular:wine",
        "tabular:digits",
        "tabular:diabetes",
        "tabular:file:PATH.npz",
        "csv:PATH",
    )
    options = ("label", "kind", "split_seed")
    example = "tabular:wine"
    summary = (
        "tables: tabular:breast_cancer|wine|digits|diabetes, tabular:file:PATH.npz, csv:PATH "
        "(default space mlp)"
    )

    def load(
        self,
        spec: str,
        *,
        data_root: str | os.PathLike[str] | None,
        download: bool,
        seed: int,
        options: Mapping[str, Any],
    ) -> TaskSetup:
        from nasforge.train.trainer import TrainConfig

        split_seed = check_split_seed(options)
        kind, _, arg = spec.partition(":")
        sub, _, path = arg.partition(":")
        if "label" in options and kind != "csv":
            raise ConfigError(f"a label column applies to csv tasks, not {spec!r}")
        if "kind" in options and not (kind == "csv" or arg.startswith("file:")):
            raise ConfigError(f"a task kind applies to csv and tabular:file tasks, not {spec!r}")
        if kind == "csv" and arg:
            task = load_csv(
                arg, label=options.get("label"), kind=options.get("kind"), seed=split_seed
            )
        elif kind == "tabular" and sub == "file" and path:
            task = load_tabular_file(path, kind=options.get("kind"), seed=split_seed)
        elif kind == "tabular" and sub in BUILTINS and not path:
            task = load_builtin(sub, seed=split_seed)
        else:
            raise self.unknown(spec)
        recipe = TrainConfig(
            epochs=100,
            lr=1e-3,
            weight_decay=1e-4,
            optimizer="adam",
            batch_size=64,
            patience=20,
            seed=seed,
        )
        return TaskSetup(task, "mlp", None, recipe, "MLP with Adam")

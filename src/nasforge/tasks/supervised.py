"""Supervised learning on arrays: the task type shared by image and tabular data.

A :class:`SupervisedTask` holds three fixed splits (train, validation, test) as tensors, its
kind (classification or regression) and where it came from. Searches train on ``train``,
select on ``validation`` and only store ``test``, in shuffled mini-batches
(:func:`~nasforge.train.supervised.train_supervised`). Loaders build one with
:func:`split_arrays`, which checks the data before any training starts and fixes the split by
a seed. torch is imported where it is used (the task kinds that use this module are
registered when nasforge is imported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.config import check_seed
from nasforge.errors import ConfigError
from nasforge.tasks.base import ProxyBatch, Task

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nasforge.train.trainer import Distill, FitOutcome, StopRule, TrainConfig

__all__ = ["KINDS", "SupervisedTask", "check_split_seed", "split_arrays"]

KINDS = ("classification", "regression")


@dataclass(frozen=True, eq=False)
class SupervisedTask(Task):
    """Predict ``y`` from ``x``; three splits held as tensors.

    Attributes:
        name: Where the data came from (e.g. ``image:digits``), stored with experiments.
        modality: ``image`` (``x`` is (N, C, H, W)) or ``tabular`` (``x`` is (N, F)).
        kind: ``classification`` (``y`` int64 in ``0..C-1``) or ``regression`` (``y`` float
            (N,) or (N, T)).
        x_train, y_train, x_val, y_val, x_test, y_test: The splits (features standardised with
            the training split's statistics by the loaders).
        classes: Class names for classification (index = label), empty for regression.
        info: JSON-able facts about the source (file, label column, normalisation).
        input_mean, input_std: The training split's statistics the inputs were standardised
            with, shaped to broadcast over one example ((C, 1, 1) or (F,)); ``None`` for raw
            inputs. An exported model applies them, so that users feed raw inputs. Not part
            of :meth:`describe`.
    """

    name: str
    modality: str
    kind: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    input_mean: torch.Tensor | None = None
    input_std: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"{self.name}: kind must be one of {', '.join(KINDS)}")
        if self.modality not in ("image", "tabular"):
            raise ConfigError(f"{self.name}: modality must be 'image' or 'tabular'")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) for images, (F,) for tabular data."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_outputs(self) -> int:
        """Output units a model needs: classes, or regression targets."""
        if self.kind == "classification":
            return self.num_classes
        return 1 if self.y_train.dim() == 1 else int(self.y_train.shape[1])

    def describe(self) -> dict[str, Any]:
        """JSON identity of the task (stored with experiments)."""
        out: dict[str, Any] = {
            "kind": f"{self.modality}-{self.kind}",
            "name": self.name,
            "input_shape": list(self.input_shape),
            "outputs": self.num_outputs,
            "split": [len(self.y_train), len(self.y_val), len(self.y_test)],
        }
        if self.classes:
            out["classes"] = list(self.classes)
        out.update(self.info)
        return out

    @property
    def default_space(self) -> str:  # type: ignore[override]
        """``nb201`` for images, ``mlp`` for tables."""
        return "nb201" if self.modality == "image" else "mlp"

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """One validation example, ``(1, C, H, W)`` or ``(1, F)``."""
        return (self.x_val[:1],)

    def fit(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        keep_state: bool = False,
        stop: StopRule | None = None,
        distill: Distill | None = None,
    ) -> FitOutcome:
        """Mini-batch training (:func:`~nasforge.train.supervised.train_supervised`)."""
        from nasforge.train.supervised import train_supervised

        return train_supervised(
            model, self, config, keep_state=keep_state, stop=stop, distill=distill
        )

    def score(self, model: nn.Module) -> dict[str, float]:
        from nasforge.train.supervised import predict, score

        scale = self.target_scale()
        pair = (0.0, 1.0) if scale is None else (float(scale[0]), float(scale[1]))
        val, test = predict(model, self.x_val).cpu(), predict(model, self.x_test).cpu()
        return {
            f"val_{self.metric}": score(val, self.y_val, self.kind, pair),
            f"test_{self.metric}": score(test, self.y_test, self.kind, pair),
        }

    def proxy_batch(self, *, seed: int, batch_size: int, max_rows: int) -> ProxyBatch:
        """``batch_size`` training examples drawn by ``seed``."""
        import torch

        n = len(self.x_train)
        if n < 2:
            raise ConfigError(f"{self.name}: proxies need at least 2 training examples")
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.permutation(n)[: min(n, batch_size)])
        pick = torch.from_numpy(picked.astype(np.int64))
        return ProxyBatch(
            inputs=(self.x_train[pick],),
            target=self.y_train[pick],
            rows=None,
            probe=torch.arange(len(pick)),
            regression=self.kind == "regression",
            graph=False,
        )

    def model_io(self) -> dict[str, Any]:
        names = "(B, C, H, W) float32 images" if self.modality == "image" else "(B, F) float32 rows"
        output = (
            "(B, C) logits"
            if self.kind == "classification"
            else "(B, T) predictions, targets' units"
        )
        return {
            "graph": False,
            "inputs": {"x": f"{names}, raw (unstandardised) as the data source holds them"},
            "output": output,
            "input_shape": list(self.input_shape),
            "outputs": self.num_outputs,
        }

    def raw_inputs(self) -> tuple[torch.Tensor, ...]:
        """Up to 32 validation examples, back in the data source's units."""
        x = self.x_val[:32]
        if self.input_mean is not None and self.input_std is not None:
            x = x * self.input_std + self.input_mean  # back to raw inputs
        return (x,)

    @property
    def input_statistics(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.input_mean is None or self.input_std is None:
            return None
        return self.input_mean, self.input_std

    def target_scale(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The scaling of regression targets the trainer uses (mean and deviation of the
        training split); ``None`` for classification."""
        import torch

        if self.kind != "regression":
            return None
        y = self.y_train
        mean, std = float(y.mean()), float(y.std()) or 1.0  # as train_supervised computes them
        return torch.tensor(mean), torch.tensor(std)


def check_split_seed(options: Mapping[str, Any]) -> int:
    """The ``split_seed`` task option (default 0) of image and tabular tasks.

    Raises:
        ConfigError: Unless it is an integer >= 0.
    """
    return check_seed(options.get("split_seed", 0), "split_seed")


def _fractions(split: Sequence[float]) -> tuple[float, float, float]:
    if len(split) != 3 or any(not 0 < f < 1 for f in split) or abs(sum(split) - 1) > 1e-6:
        raise ConfigError(
            f"split must be three fractions in (0, 1) for train, validation and test that sum "
            f"to 1, got {tuple(split)}"
        )
    return float(split[0]), float(split[1]), float(split[2])


def _check_arrays(name: str, x: np.ndarray, y: np.ndarray, modality: str, kind: str) -> None:
    where = f"{name}: "
    if x.ndim != (4 if modality == "image" else 2):
        shape = "(N, C, H, W)" if modality == "image" else "(N, features)"
        raise ConfigError(f"{where}{modality} inputs must have shape {shape}, got {x.shape}")
    if x.shape[0] == 0 or any(s == 0 for s in x.shape[1:]):
        raise ConfigError(f"{where}the data set is empty (inputs of shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ConfigError(f"{where}inputs must be real numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        rows = int((~np.isfinite(x.reshape(len(x), -1))).any(axis=1).sum())
        raise ConfigError(f"{where}inputs hold NaN or infinite values in {rows} examples")
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        targets = y.shape[0] if y.ndim else "a single value as"
        raise ConfigError(
            f"{where}inputs and targets differ in length: {x.shape[0]} inputs, {targets} targets"
        )
    if kind == "regression":
        if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.number):
            raise ConfigError(
                f"{where}regression targets must be numbers of shape (N,) or (N, T), got "
                f"{y.dtype} {y.shape}"
            )
        if not np.isfinite(y).all():
            bad = int((~np.isfinite(y.reshape(len(y), -1))).any(axis=1).sum())
            raise ConfigError(f"{where}targets hold NaN or infinite values in {bad} examples")
    else:
        if y.ndim != 1:
            raise ConfigError(f"{where}class labels must have shape (N,), got {y.shape}")
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            bad = int((~np.isfinite(y)).sum())
            raise ConfigError(f"{where}class labels hold NaN or infinite values in {bad} examples")


def split_arrays(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | Sequence[Any],
    *,
    name: str,
    modality: str,
    kind: str = "classification",
    split: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    classes: Sequence[str] | None = None,
    standardize: bool = True,
    info: dict[str, Any] | None = None,
) -> SupervisedTask:
    """Check ``x``/``y``, split them by ``seed`` and build the task.

    Classification splits are stratified when every class has enough examples. Labels may be
    any values (strings, ints): they are mapped to ``0..C-1`` in sorted order unless
    ``classes`` names them. Inputs are standardised with the training split's mean and
    standard deviation (per channel for images, per feature for tabular data).

    Raises:
        ConfigError: Saying what is wrong with the data (shape, NaN, empty, too few examples or
            classes) and what is accepted.
    """
    import torch
    from sklearn.model_selection import train_test_split

    if kind not in KINDS:
        raise ConfigError(f"{name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    x_np = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    _check_arrays(name, x_np, y_np, modality, kind)
    f_train, f_val, f_test = _fractions(split)

    if kind == "classification":
        if classes is None:
            values = np.unique(y_np)
            labels = np.searchsorted(values, y_np)
            names = tuple(str(v) for v in values)
        else:
            names = tuple(str(c) for c in classes)
            if not np.issubdtype(y_np.dtype, np.integer):
                raise ConfigError(f"{name}: with named classes, labels must be integers")
            if y_np.min() < 0 or y_np.max() >= len(names):
                raise ConfigError(
                    f"{name}: labels must be in 0..{len(names) - 1} for {len(names)} classes, "
                    f"found {int(y_np.min())}..{int(y_np.max())}"
                )
            labels = y_np.astype(np.int64)
        if len(np.unique(labels)) < 2:
            raise ConfigError(f"{name}: classification needs at least 2 classes")
        counts = np.bincount(labels, minlength=len(names))
        stratify = labels if counts[counts > 0].min() >= 5 else None
        y_all: np.ndarray = labels.astype(np.int64)
    else:
        names = ()
        stratify = None
        y_all = y_np.astype(np.float32)

    n = len(x_np)
    n_test, n_val = round(n * f_test), round(n * f_val)
    if n - n_test - n_val < 1 or n_test < 1 or n_val < 1:
        raise ConfigError(
            f"{name}: {n} examples are too few for a train/validation/test split of "
            f"{(f_train, f_val, f_test)}"
        )
    index = np.arange(n)
    rest, test = train_test_split(index, test_size=n_test, random_state=seed, stratify=stratify)
    train, val = train_test_split(
        rest,
        test_size=n_val,
        random_state=seed,
        stratify=None if stratify is None else stratify[rest],
    )
    x_f = x_np.astype(np.float32)
    extra = dict(info or {})
    mean = std = None
    if standardize:
        axes = (0, 2, 3) if modality == "image" else (0,)
        mean = x_f[train].mean(axis=axes, keepdims=True)
        std = x_f[train].std(axis=axes, keepdims=True)
        std[std < 1e-8] = 1.0  # constant features stay zero instead of dividing by 0
        x_f = (x_f - mean) / std
        extra["standardized"] = "per channel" if modality == "image" else "per feature"

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    return SupervisedTask(
        name=name,
        modality=modality,
        kind=kind,
        x_train=t(x_f[train]),
        y_train=t(y_all[train]),
        x_val=t(x_f[val]),
        y_val=t(y_all[val]),
        x_test=t(x_f[test]),
        y_test=t(y_all[test]),
        classes=names,
        info={**extra, "split_seed": seed},
        input_mean=None if mean is None else t(mean[0]),  # (C, 1, 1) or (F,)
        input_std=None if std is None else t(std[0]),
    )

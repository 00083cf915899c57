"""Turn a task spec such as ``planetoid:Cora`` into a task and its default training setup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.errors import ConfigError
from nasforge.spaces.gnn_model import GnnHyper
from nasforge.tasks.graph import (
    PLANETOID,
    NodeClassificationTask,
    load_graph_file,
    load_planetoid,
    planted_partition,
)
from nasforge.tasks.supervised import SupervisedTask
from nasforge.train.trainer import TrainConfig

__all__ = ["TASK_FORMS", "TaskSetup", "resolve_task"]

TASK_FORMS = (
    "planetoid:Cora",
    "planetoid:CiteSeer",
    "planetoid:PubMed",
    "synthetic",
    "file:PATH.npz",
    "file:PATH.pt",
    "image:digits",
    "image:folder:PATH",
    "image:file:PATH.npz",
    "tabular:breast_cancer",
    "tabular:wine",
    "tabular:digits",
    "tabular:diabetes",
    "tabular:file:PATH.npz",
    "csv:PATH",
)

GENERIC_HYPER = GnnHyper(hidden=64, dropout=0.5, pre=0, post=1)
GENERIC_TRAIN = TrainConfig(epochs=200, lr=0.01, weight_decay=5e-4, optimizer="adam", patience=50)
# NAS-Bench-201's recipe (SGD, Nesterov momentum 0.9, weight decay 5e-4, cosine schedule) with
# a small network and fewer epochs so that a candidate trains in seconds on a CPU
IMAGE_TRAIN = TrainConfig(
    epochs=20,
    lr=0.1,
    weight_decay=5e-4,
    optimizer="sgd",
    momentum=0.9,
    schedule="cosine",
    batch_size=64,
    patience=None,
)
TABULAR_TRAIN = TrainConfig(
    epochs=100, lr=1e-3, weight_decay=1e-4, optimizer="adam", batch_size=64, patience=20
)
TASK_OPTIONS = ("label", "kind", "image_size", "grayscale", "split_seed")


@dataclass(frozen=True, slots=True)
class TaskSetup:
    """A task with the space, model and training settings it defaults to."""

    task: NodeClassificationTask | SupervisedTask
    space: str
    hyper: Any
    train: TrainConfig
    protocol: str


def _data_root(data_root: str | os.PathLike[str] | None) -> Path:
    if data_root is not None:
        return Path(data_root).expanduser()
    env = os.environ.get("NASFORGE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "nasforge" / "data"


def _image_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            height, width = (int(p) for p in parts) if len(parts) == 2 else (-1, -1)
        except ValueError:
            height, width = -1, -1
    elif isinstance(value, tuple | list) and len(value) == 2:
        height, width = int(value[0]), int(value[1])
    else:
        height, width = -1, -1
    if height < 1 or width < 1:
        raise ConfigError(
            f"image size must be HxW with positive integers (e.g. 32x32), got {value!r}"
        )
    return height, width


def resolve_task(
    spec: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> TaskSetup:
    """Load the task ``spec`` names and choose its default space and training setup.

    Planetoid datasets default to NAS-Bench-Graph's protocol for them (so that searches
    reproduce the benchmark); other graphs to widely used GCN settings (hidden 64, dropout 0.5,
    Adam lr 0.01, weight decay 5e-4, 200 epochs, patience 50). Images default to the ``nb201``
    space with NAS-Bench-201's optimiser recipe on a small network; tabular data to the ``mlp``
    space with Adam. The train/validation/test split (60/20/20) of image and tabular data is
    fixed by the ``split_seed`` option (default 0), the same for every search seed.

    Args:
        spec: One of :data:`TASK_FORMS`.
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        download: Allow downloading missing Planetoid files.
        seed: Seed of the search (fixes weight initialisation, batch order, dropout).
        options: ``label`` (CSV column) and ``kind`` (``classification``/``regression``) for
            CSV and NPZ tables; ``image_size`` (``HxW``) and ``grayscale`` for image folders;
            ``split_seed`` for image and tabular data.

    Raises:
        ConfigError: For an unknown form, an option the form does not take, or unreadable
            data; the message lists the forms.
    """
    from nasforge.tasks import image, tabular

    opts = dict(options or {})
    unknown = sorted(set(opts) - set(TASK_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown task option(s) {unknown}; valid: {', '.join(TASK_OPTIONS)}")
    kind, _, arg = spec.partition(":")
    split_seed = opts.pop("split_seed", 0)
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise ConfigError(f"split_seed must be an integer >= 0, got {split_seed!r}")
    if kind not in ("image", "tabular", "csv") and "split_seed" in (options or {}):
        raise ConfigError(f"split_seed applies to image and tabular tasks, not {spec!r}")
    image_opts = {k: opts.pop(k) for k in ("image_size", "grayscale") if k in opts}
    table_opts = {k: opts.pop(k) for k in ("label", "kind") if k in opts}
    form = kind if kind != "image" else f"image:{arg.partition(':')[0]}"
    if image_opts and form != "image:folder":
        raise ConfigError(f"image_size and grayscale apply to image:folder tasks, not {spec!r}")
    if "label" in table_opts and kind != "csv":
        raise ConfigError(f"a label column applies to csv tasks, not {spec!r}")
    if "kind" in table_opts and not (kind == "csv" or arg.startswith("file:")):
        raise ConfigError(f"a task kind applies to csv and tabular:file tasks, not {spec!r}")

    if kind == "image":
        from nasforge.spaces.nb201 import Nb201Hyper

        sub, _, path = arg.partition(":")
        if sub == "digits" and not path:
            task: NodeClassificationTask | SupervisedTask = image.load_digits(seed=split_seed)
        elif sub == "folder" and path:
            task = image.load_image_folder(
                path,
                size=_image_size(image_opts.get("image_size")),
                grayscale=bool(image_opts.get("grayscale", False)),
                seed=split_seed,
            )
        elif sub == "file" and path:
            task = image.load_image_file(path, seed=split_seed)
        else:
            raise ConfigError(f"unknown task {spec!r}; valid forms: {', '.join(TASK_FORMS)}")
        return TaskSetup(
            task,
            "nb201",
            Nb201Hyper(channels=8, cells_per_stage=1),
            replace(IMAGE_TRAIN, seed=seed),
            "NAS-Bench-201 recipe, small network",
        )
    if kind == "tabular" or kind == "csv":
        sub, _, path = arg.partition(":")
        if kind == "csv" and arg:
            task = tabular.load_csv(
                arg, label=table_opts.get("label"), kind=table_opts.get("kind"), seed=split_seed
            )
        elif kind == "tabular" and sub == "file" and path:
            task = tabular.load_tabular_file(path, kind=table_opts.get("kind"), seed=split_seed)
        elif kind == "tabular" and sub in tabular.BUILTINS and not path:
            task = tabular.load_builtin(sub, seed=split_seed)
        else:
            raise ConfigError(f"unknown task {spec!r}; valid forms: {', '.join(TASK_FORMS)}")
        return TaskSetup(task, "mlp", None, replace(TABULAR_TRAIN, seed=seed), "MLP with Adam")
    if kind == "planetoid":
        if arg.lower() not in {n.lower() for n in PLANETOID}:
            raise ConfigError(f"unknown Planetoid dataset {arg!r}; valid: {', '.join(PLANETOID)}")
        data = load_planetoid(arg, _data_root(data_root), download=download)
        name = next(n for n in PLANETOID if n.lower() == arg.lower())
        proto = PROTOCOLS[name.lower()]
        return TaskSetup(
            NodeClassificationTask(f"planetoid:{name}", data),
            "gnn",
            proto.hyper(),
            proto.train_config(seed=seed),
            f"NAS-Bench-Graph {name.lower()} protocol",
        )
    if kind == "synthetic" and not arg:
        task = NodeClassificationTask("synthetic", planted_partition(seed=0))
    elif kind == "file" and arg:
        task = NodeClassificationTask(f"file:{arg}", load_graph_file(arg, split_seed=0))
    else:
        raise ConfigError(f"unknown task {spec!r}; valid forms: {', '.join(TASK_FORMS)}")
    return TaskSetup(task, "gnn", GENERIC_HYPER, replace(GENERIC_TRAIN, seed=seed), "generic GCN")

"""Turn a task spec such as ``planetoid:Cora`` into a task and its default training setup."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

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
from nasforge.train.trainer import TrainConfig

__all__ = ["TASK_FORMS", "TaskSetup", "resolve_task"]

TASK_FORMS = (
    "planetoid:Cora",
    "planetoid:CiteSeer",
    "planetoid:PubMed",
    "synthetic",
    "file:PATH.npz",
    "file:PATH.pt",
)

GENERIC_HYPER = GnnHyper(hidden=64, dropout=0.5, pre=0, post=1)
GENERIC_TRAIN = TrainConfig(epochs=200, lr=0.01, weight_decay=5e-4, optimizer="adam", patience=50)


@dataclass(frozen=True, slots=True)
class TaskSetup:
    """A task with the model and training settings it defaults to."""

    task: NodeClassificationTask
    hyper: GnnHyper
    train: TrainConfig
    protocol: str


def _data_root(data_root: str | os.PathLike[str] | None) -> Path:
    if data_root is not None:
        return Path(data_root).expanduser()
    env = os.environ.get("NASFORGE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "nasforge" / "data"


def resolve_task(
    spec: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
) -> TaskSetup:
    """Load the task ``spec`` names and choose its default training setup.

    Planetoid datasets default to NAS-Bench-Graph's protocol for them (so that searches
    reproduce the benchmark); other graphs to widely used GCN settings (hidden 64, dropout 0.5,
    Adam lr 0.01, weight decay 5e-4, 200 epochs, patience 50).

    Raises:
        ConfigError: For an unknown form or unreadable data; the message lists the forms.
    """
    kind, _, arg = spec.partition(":")
    if kind == "planetoid":
        if arg.lower() not in {n.lower() for n in PLANETOID}:
            raise ConfigError(f"unknown Planetoid dataset {arg!r}; valid: {', '.join(PLANETOID)}")
        data = load_planetoid(arg, _data_root(data_root), download=download)
        name = next(n for n in PLANETOID if n.lower() == arg.lower())
        proto = PROTOCOLS[name.lower()]
        return TaskSetup(
            NodeClassificationTask(f"planetoid:{name}", data),
            GnnHyper(hidden=proto.hidden, dropout=proto.dropout, pre=proto.pre, post=proto.post),
            TrainConfig(
                epochs=proto.epochs,
                lr=proto.lr,
                weight_decay=proto.weight_decay,
                optimizer=proto.optimizer,
                patience=None,
                seed=seed,
            ),
            f"NAS-Bench-Graph {name.lower()} protocol",
        )
    if kind == "synthetic" and not arg:
        task = NodeClassificationTask("synthetic", planted_partition(seed=0))
    elif kind == "file" and arg:
        task = NodeClassificationTask(f"file:{arg}", load_graph_file(arg, split_seed=0))
    else:
        raise ConfigError(f"unknown task {spec!r}; valid forms: {', '.join(TASK_FORMS)}")
    return TaskSetup(task, GENERIC_HYPER, replace(GENERIC_TRAIN, seed=seed), "generic GCN")

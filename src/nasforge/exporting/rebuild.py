"""Rebuild what an experiment trained with (its data, space and settings) from its config.

Training searches store their data source (``config["source"]``) and their evaluator's model
and training settings (``config["evaluator"]``); export loads the same data and trains with
the same settings. Table-look-up searches have no training of their own:

* ``nas-bench-graph:<dataset>``: the architecture is trained on the real dataset with
  NAS-Bench-Graph's protocol (the settings a ``planetoid:<Name>`` search uses), when the data
  is available (``data_root``, or ``download``);
* ``nas-bench-201:*``: the CIFAR / ImageNet16-120 images are not loadable by nasforge, so the
  user names other image data (``task``), on which the searched cell is trained in the small
  network and with the recipe of an image search (see :func:`nasforge.tasks.resolve_task`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from nasforge.benchmarks.nas_bench_graph import DATASETS as NBG_DATASETS
from nasforge.errors import ConfigError
from nasforge.spaces.base import SPACES, SearchSpace
from nasforge.store.base import ExperimentRecord
from nasforge.tasks.base import Task, TaskSetup, resolve_task
from nasforge.tasks.node import PLANETOID
from nasforge.train.trainer import TrainConfig

__all__ = ["Rebuilt", "rebuild"]


@dataclass(frozen=True, eq=False)
class Rebuilt:
    """An experiment's training setup, ready to train one of its architectures.

    Attributes:
        space: The experiment's space.
        task: The data, loaded again.
        hyper: Model hyperparameters (``None`` for spaces whose genes fix them all).
        train: Training settings (full fidelity, the search's seed).
        protocol: Where the settings come from, in words.
        data: How the data was chosen (stored in the export's metadata).
        input_mean, input_std: The training split's statistics the inputs were standardised
            with (image and tabular tasks), shaped to broadcast over a batch.
    """

    space: SearchSpace
    task: Task
    hyper: Any
    train: TrainConfig
    protocol: str
    data: dict[str, Any]
    input_mean: torch.Tensor | None = None
    input_std: torch.Tensor | None = None


def rebuild(
    record: ExperimentRecord,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    task: str | None = None,
    task_options: Mapping[str, Any] | None = None,
    use: str = "export",
) -> Rebuilt:
    """Load the data and settings experiment ``record`` trained with (see the module docstring).

    Args:
        record: The stored experiment.
        data_root: Folder holding ``<Name>/raw/`` for Planetoid data (overrides the stored one).
        download: Allow downloading missing Planetoid files (needs internet).
        task: Other data to train on, for table-look-up experiments only (a task spec as for
            ``search --task``).
        task_options: Options of ``task`` (as for ``search``).
        use: The command that trains (``export``, ``compress``), named in the messages.

    Raises:
        ConfigError: If the data is not available (saying which option to pass), differs from
            what the search saw, or ``task`` does not fit the experiment.
    """
    stored = record.search
    kind = stored.evaluator_kind
    space = SPACES.create(stored.space)
    seed = int(stored.seed or 0)
    if kind == "training":
        if task is not None:
            raise ConfigError(
                f"experiment {record.name!r} trained on its own data; {use} trains on it, "
                "so --task applies only to table-look-up (benchmark) experiments"
            )
        return _training(record, space, data_root=data_root, download=download, use=use)
    if task is not None:
        return _from_task(
            record,
            space,
            task,
            task_options or {},
            seed=seed,
            data_root=data_root,
            download=download,
        )
    if kind == "nas-bench-graph":
        return _nas_bench_graph(
            record, space, str(stored.evaluator.get("dataset")), seed, data_root, download, use
        )
    if kind == "nas-bench-201":
        raise ConfigError(
            f"experiment {record.name!r} looked cells up in the NAS-Bench-201 table "
            f"({stored.evaluator.get('dataset')}), whose CIFAR / ImageNet16-120 images nasforge "
            "cannot load; pass --task image:folder:DIR or image:file:PATH.npz (or "
            "image:digits) to train the chosen cell on other images"
        )
    raise ConfigError(
        f"experiment {record.name!r} was evaluated by {kind!r}: it kept no weights and names no "
        f"data for {use} to train on; {use} takes training searches, nas-bench-graph and "
        "nas-bench-201 experiments"
    )


def _training(
    record: ExperimentRecord,
    space: SearchSpace,
    *,
    data_root: str | os.PathLike[str] | None,
    download: bool,
    use: str,
) -> Rebuilt:
    stored = record.search
    evaluator = stored.evaluator
    source = stored.source
    if source is None or not source.get("task"):
        raise ConfigError(
            f"experiment {record.name!r} does not record its data source (it was stored by an "
            f"older nasforge); run the search again to {use} its models"
        )
    root = data_root if data_root is not None else source.get("data_root")
    spec = str(source["task"])
    options = dict(source.get("task_options") or {})
    setup = _load(spec, options, seed=0, data_root=root, download=download, record=record)
    stored_task = evaluator.get("task") or {}
    described = setup.task.describe()
    differ = sorted(
        k for k in set(stored_task) | set(described) if stored_task.get(k) != described.get(k)
    )
    if differ:
        raise ConfigError(
            f"the data at {spec!r} is not what experiment {record.name!r} searched on (it differs "
            f"in {', '.join(differ)}); {use} needs the same data"
        )
    hyper = space.settings_from_dict(evaluator.get("hyper"))
    train = _train_config(evaluator.get("train") or {})
    mean, std = _statistics(setup.task)
    return Rebuilt(
        space,
        setup.task,
        hyper,
        train,
        "the search's own settings",
        {"source": dict(source), "data_root": None if root is None else os.fspath(root)},
        mean,
        std,
    )


def _nas_bench_graph(
    record: ExperimentRecord,
    space: SearchSpace,
    dataset: str,
    seed: int,
    data_root: str | os.PathLike[str] | None,
    download: bool,
    use: str,
) -> Rebuilt:
    names = {n.lower(): n for n in PLANETOID}
    if dataset not in names:
        loadable = ", ".join(d for d in NBG_DATASETS if d in names)
        raise ConfigError(
            f"experiment {record.name!r} looked architectures up in the NAS-Bench-Graph table of "
            f"{dataset!r}, whose data nasforge cannot load (it loads {loadable}); pass --task "
            "file:GRAPH.npz (or another graph) to train the chosen architecture on your graph"
        )
    spec = f"planetoid:{names[dataset]}"
    try:
        setup = resolve_task(spec, data_root=data_root, download=download, seed=seed)
    except ConfigError as exc:
        if download:
            raise
        raise ConfigError(
            f"experiment {record.name!r} looked architectures up in the NAS-Bench-Graph table; "
            f"{use} trains the chosen one on the real {names[dataset]} data with the benchmark's "
            f"protocol, and that data is not available offline ({exc}); pass --data-root DIR "
            f"(a folder holding {names[dataset]}/raw/) or --download (needs internet)"
        ) from None
    _check_space(space, setup.task, spec)
    return Rebuilt(
        space,
        setup.task,
        setup.hyper,
        setup.train,
        setup.protocol,
        {
            "benchmark": f"nas-bench-graph:{dataset}",
            "trained_on": spec,
            "data_root": None if data_root is None else os.fspath(data_root),
        },
    )


def _from_task(
    record: ExperimentRecord,
    space: SearchSpace,
    spec: str,
    options: Mapping[str, Any],
    *,
    seed: int,
    data_root: str | os.PathLike[str] | None,
    download: bool,
) -> Rebuilt:
    setup = _load(spec, options, seed=seed, data_root=data_root, download=download, record=record)
    _check_space(space, setup.task, spec)
    hyper = space.settings_for(setup.hyper)
    mean, std = _statistics(setup.task)
    benchmark = (record.search.source or {}).get("benchmark")
    return Rebuilt(
        space,
        setup.task,
        hyper,
        setup.train,
        f"{setup.protocol} (the defaults of a search on {spec})",
        {
            "benchmark": benchmark,
            "trained_on": spec,
            "task_options": dict(options),
            "data_root": None if data_root is None else os.fspath(data_root),
        },
        mean,
        std,
    )


def _check_space(space: SearchSpace, task: Task, spec: str) -> None:
    modality, builds = task.modality, space.modality
    if builds != modality:
        raise ConfigError(
            f"space {space.name!r} builds {builds} models, but {spec!r} holds {modality} data; "
            f"pass a {builds} task"
        )


def _load(
    spec: str,
    options: Mapping[str, Any],
    *,
    seed: int,
    data_root: str | os.PathLike[str] | None,
    download: bool,
    record: ExperimentRecord,
) -> TaskSetup:
    try:
        return resolve_task(
            spec, data_root=data_root, download=download, seed=seed, options=options
        )
    except ConfigError as exc:
        raise ConfigError(f"cannot load the data of experiment {record.name!r}: {exc}") from None


def _train_config(stored: Mapping[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in stored.items() if k in known})


# -- the input statistics ---------------------------------------------------------------------
def _statistics(task: Task) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The mean and standard deviation ``task``'s inputs were standardised with."""
    statistics = task.input_statistics
    return (None, None) if statistics is None else statistics

"""Node classification on one graph: the task kind, the task, its checks, and loaders.

Specs (:class:`NodeKind`): ``planetoid:Cora|CiteSeer|PubMed`` (NAS-Bench-Graph's protocol for
them, so that searches reproduce the benchmark), ``synthetic`` and ``file:PATH.npz|.pt``
(widely used GCN settings: hidden 64, dropout 0.5, Adam lr 0.01, weight decay 5e-4, 200
epochs, patience 50); the default space is ``gnn``, trained full-batch
(:func:`~nasforge.train.trainer.train_node_classifier`).

Loaders:
    * :func:`load_planetoid` — Cora, CiteSeer, PubMed from their raw files (parsed by
      :mod:`nasforge.tasks.planetoid_raw`, which runs no code from them): from a local root
      holding ``<Name>/raw/`` (offline), or downloaded when ``download=True``.
    * :func:`load_graph_file` — a graph the user saved: a ``.pt`` file of a PyG ``Data`` (read
      with ``torch.load(weights_only=True)``) or an ``.npz`` of arrays.
    * :func:`planted_partition` — a synthetic graph with planted communities and informative
      features, for tests and the offline demo.

torch and PyG are imported where they are used: the kind is registered when nasforge is
imported, which must not import them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.paths import data_root as default_data_root
from nasforge.tasks.base import ProxyBatch, Task, TaskKind, TaskSetup
from nasforge.tasks.files import numeric, read_npz, read_tensors

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch_geometric.data import Data

    from nasforge.train.trainer import Distill, FitOutcome, StopRule, TrainConfig

__all__ = [
    "PLANETOID",
    "NodeClassificationTask",
    "NodeKind",
    "check_graph",
    "load_graph_file",
    "load_planetoid",
    "planted_partition",
]

PLANETOID = ("Cora", "CiteSeer", "PubMed")
_RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@dataclass(frozen=True)
class NodeClassificationTask(Task):
    """Classify the nodes of one graph; train, validation and test nodes given by masks.

    Attributes:
        name: Where the data came from (e.g. ``planetoid:Cora``), stored with experiments.
        data: A PyG ``Data`` with ``x`` (N, F) float, ``y`` (N,) int64 in ``0..C-1``,
            ``edge_index`` (2, E) int64 and boolean ``train_mask``/``val_mask``/``test_mask``.
    """

    name: str
    data: Data
    modality = "graph"
    kind = "classification"
    default_space = "gnn"

    def __post_init__(self) -> None:
        check_graph(self.data, self.name)

    @property
    def num_features(self) -> int:
        return int(self.data.x.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.data.y.max()) + 1

    @property
    def num_nodes(self) -> int:
        return int(self.data.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One node's features ``(F,)``."""
        return (self.num_features,)

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def describe(self) -> dict[str, Any]:
        """JSON identity of the task (stored with experiments)."""
        d = self.data
        return {
            "kind": "node-classification",
            "name": self.name,
            "nodes": self.num_nodes,
            "edges": int(d.edge_index.shape[1]),
            "features": self.num_features,
            "classes": self.num_classes,
            "split": [int(d.train_mask.sum()), int(d.val_mask.sum()), int(d.test_mask.sum())],
        }

    def example_inputs(self) -> tuple[Tensor, ...]:
        """The whole graph: ``(x, edge_index)``."""
        return self.data.x, self.data.edge_index

    def fit(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        keep_state: bool = False,
        stop: StopRule | None = None,
        distill: Distill | None = None,
    ) -> FitOutcome:
        """Full-batch training (:func:`~nasforge.train.trainer.train_node_classifier`)."""
        from nasforge.train.trainer import FitOutcome, train_node_classifier

        run = train_node_classifier(
            model, self.data, config, keep_state=keep_state, stop=stop, distill=distill
        )
        return FitOutcome(
            metric="acc",
            val=run.val_acc,
            test=run.test_acc,
            best_epoch=run.best_epoch,
            epochs_run=run.epochs_run,
            wall_time=run.wall_time,
            curve=run.curve,
            state=run.state,
            diverged_at=run.diverged_at,
            stopped=run.stopped,
        )

    def score(self, model: nn.Module) -> dict[str, float]:
        import torch

        from nasforge.train.device import model_device

        data, device = self.data, model_device(model)
        with torch.no_grad():
            out = model(data.x.to(device), data.edge_index.to(device)).cpu()
            correct = out.argmax(dim=-1) == data.y  # (N,)
        return {
            "val_acc": int(correct[data.val_mask].sum()) / int(data.val_mask.sum()),
            "test_acc": int(correct[data.test_mask].sum()) / int(data.test_mask.sum()),
        }

    def proxy_batch(self, *, seed: int, batch_size: int, max_rows: int) -> ProxyBatch:
        """The whole graph; the loss on the training nodes, ``jacov`` on up to ``max_rows``."""
        import torch

        data = self.data
        train = torch.nonzero(data.train_mask).flatten()  # (T,) node ids
        if len(train) < 2:
            raise ConfigError(f"{self.name}: proxies need at least 2 training nodes")
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.permutation(len(train))[: min(len(train), max_rows)])
        return ProxyBatch(
            inputs=(data.x, data.edge_index),
            target=data.y[train],
            rows=train,
            probe=train[torch.from_numpy(picked.astype(np.int64))],
            regression=False,
            graph=True,
        )

    def model_io(self) -> dict[str, Any]:
        return {
            "graph": True,
            "inputs": {
                "x": "(N, F) float32 node features, raw as the data source holds them",
                "edge_index": "(2, E) int64 edges (source row, target row)",
            },
            "output": "(N, C) logits, one row per node",
            "input_shape": [self.num_features],
            "outputs": self.num_classes,
        }


class NodeKind(TaskKind):
    """Node classification on one graph: ``planetoid:<Name>``, ``synthetic``, ``file:PATH``."""

    name = "node"
    prefixes = ("planetoid", "synthetic", "file")
    forms = (
        "planetoid:Cora",
        "planetoid:CiteSeer",
        "planetoid:PubMed",
        "synthetic",
        "file:PATH.npz",
        "file:PATH.pt",
    )
    example = "synthetic"
    summary = (
        "node classification on one graph: planetoid:Cora|CiteSeer|PubMed, synthetic, "
        "file:PATH.npz|.pt (default space gnn)"
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
        from nasforge.benchmarks.nbg_protocol import PROTOCOLS
        from nasforge.spaces.gnn import GnnHyper
        from nasforge.train.trainer import TrainConfig

        kind, _, arg = spec.partition(":")
        if kind == "planetoid":
            if arg.lower() not in {n.lower() for n in PLANETOID}:
                raise ConfigError(
                    f"unknown Planetoid dataset {arg!r}; valid: {', '.join(PLANETOID)}"
                )
            data = load_planetoid(arg, default_data_root(data_root), download=download)
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
            raise self.unknown(spec)
        generic = TrainConfig(epochs=200, lr=0.01, weight_decay=5e-4, optimizer="adam", patience=50)
        return TaskSetup(
            task,
            "gnn",
            GnnHyper(hidden=64, dropout=0.5, pre=0, post=1),
            replace(generic, seed=seed),
            "generic GCN",
        )


def check_graph(data: Data, name: str = "graph") -> None:
    """Check a node-classification graph before any training starts.

    Raises:
        ConfigError: Naming the first broken rule, its values and what is accepted.
    """
    import torch

    where = f"{name}: "
    x, y, edge_index = getattr(data, "x", None), getattr(data, "y", None), data.edge_index
    if x is None or y is None or edge_index is None:
        missing = [k for k, v in (("x", x), ("y", y), ("edge_index", edge_index)) if v is None]
        raise ConfigError(f"{where}the graph needs x, y and edge_index; missing {missing}")
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ConfigError(
            f"{where}x must be a non-empty (nodes, features) matrix, got shape {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x):
        raise ConfigError(f"{where}x must hold floating-point features, got {x.dtype}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ConfigError(f"{where}x has NaN or infinite features in {bad} nodes")
    n = x.shape[0]
    if y.dim() != 1 or y.shape[0] != n:
        raise ConfigError(
            f"{where}y must hold one label per node: x has {n} nodes, y has shape {tuple(y.shape)}"
        )
    if torch.is_floating_point(y) or y.dtype == torch.bool:
        raise ConfigError(f"{where}y must hold integer class labels, got {y.dtype}")
    if int(y.min()) < 0:
        raise ConfigError(f"{where}labels must be in 0..C-1, found {int(y.min())}")
    if int(y.max()) + 1 < 2:
        raise ConfigError(f"{where}node classification needs at least 2 classes")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ConfigError(
            f"{where}edge_index must have shape (2, E), got {tuple(edge_index.shape)}"
        )
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ConfigError(
            f"{where}edge_index refers to nodes outside 0..{n - 1} "
            f"(min {int(edge_index.min())}, max {int(edge_index.max())})"
        )
    for split in ("train_mask", "val_mask", "test_mask"):
        mask = getattr(data, split, None)
        if mask is None:
            raise ConfigError(
                f"{where}{split} is missing; give boolean train_mask, val_mask and test_mask "
                "(or use split='random' to draw them)"
            )
        if mask.dtype != torch.bool or mask.shape != (n,):
            raise ConfigError(
                f"{where}{split} must be a boolean vector of {n} nodes, got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
        if not bool(mask.any()):
            raise ConfigError(f"{where}{split} selects no node")
    overlap = data.train_mask & (data.val_mask | data.test_mask)
    if bool(overlap.any()) or bool((data.val_mask & data.test_mask).any()):
        raise ConfigError(f"{where}train, validation and test masks must not overlap")


def random_split(n: int, *, train: float, val: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Boolean train/val/test masks drawn with ``seed`` (test is the rest)."""
    import torch

    if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
        raise ConfigError(
            f"split fractions must be in (0, 1) with train + val < 1, got train={train}, val={val}"
        )
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_train, n_val = max(1, round(train * n)), max(1, round(val * n))
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][order[:n_train]] = True
    masks[1][order[n_train : n_train + n_val]] = True
    masks[2][order[n_train + n_val :]] = True
    return masks[0], masks[1], masks[2]


def load_planetoid(name: str, root: str | os.PathLike[str], *, download: bool = False) -> Data:
    """Cora, CiteSeer or PubMed with the public Planetoid split.

    The raw files are parsed by :func:`nasforge.tasks.planetoid_raw.read_planetoid_raw`, whose
    unpickler resolves only the few numpy/scipy/builtin names the format needs, so a data
    folder from elsewhere cannot run code; nothing is written into ``root`` and no processed
    cache is read.

    Args:
        name: ``Cora``, ``CiteSeer`` or ``PubMed`` (any case).
        root: Folder holding ``<Name>/raw/ind.<name>.*`` (as PyG lays it out).
        download: Fetch the raw files when they are missing (needs internet).

    Raises:
        ConfigError: For an unknown name, missing raw files without ``download``, or raw files
            that are truncated, malformed or name a class outside the allowed list.
    """
    from nasforge.tasks.planetoid_raw import download_planetoid_raw, read_planetoid_raw

    canonical = {n.lower(): n for n in PLANETOID}.get(name.lower())
    if canonical is None:
        raise ConfigError(f"unknown Planetoid dataset {name!r}; valid: {', '.join(PLANETOID)}")
    raw = Path(root).expanduser() / canonical / "raw"
    missing = [s for s in _RAW_SUFFIXES if not (raw / f"ind.{canonical.lower()}.{s}").exists()]
    if missing and not download:
        raise ConfigError(
            f"{raw} lacks the Planetoid raw files ind.{canonical.lower()}.{{{','.join(missing)}}}; "
            "point --data-root at a folder holding <Name>/raw/, or pass --download (API: "
            "download=True) to fetch them"
        )
    if missing:  # download into the root the user gave
        download_planetoid_raw(raw, canonical, missing)
    return read_planetoid_raw(raw, canonical)


def load_graph_file(
    path: str | os.PathLike[str], *, split_seed: int = 0, train: float = 0.6, val: float = 0.2
) -> Data:
    """A graph saved by the user.

    ``.pt``: a PyG ``Data`` or a dict of tensors saved with ``torch.save``, read with
    ``torch.load(weights_only=True)`` (no code runs on load). ``.npz``: arrays ``x`` (N, F),
    ``y`` (N,), ``edge_index`` (2, E) and optionally ``train_mask``/``val_mask``/``test_mask``.
    Missing masks are drawn at random with ``split_seed`` (``train``/``val`` fractions).

    Raises:
        ConfigError: For a missing file, another format, or missing arrays.
    """
    import torch
    from torch_geometric.data import Data

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"graph file {file} does not exist")
    fields: dict[str, Any]
    if file.suffix == ".npz":
        fields = dict(read_npz(file))
    elif file.suffix == ".pt":
        loaded = read_tensors(file)
        if isinstance(loaded, Data):
            fields = {k: v for k, v in loaded.to_dict().items()}
        elif isinstance(loaded, dict):
            fields = dict(loaded)
        else:
            raise ConfigError(f"{file} holds a {type(loaded).__name__}; expected a dict or Data")
    else:
        raise ConfigError(f"graph file {file} must end in .npz or .pt")
    missing = [k for k in ("x", "y", "edge_index") if k not in fields]
    if missing:
        raise ConfigError(f"{file} lacks {missing}; it needs x, y and edge_index")
    x, y, edge_index = (
        torch.from_numpy(numeric(file, k, fields[k])) for k in ("x", "y", "edge_index")
    )
    if x.dim() != 2:
        raise ConfigError(
            f"{file}: x must be a (nodes, features) matrix, got shape {tuple(x.shape)}"
        )
    if torch.is_floating_point(edge_index):
        whole = torch.isfinite(edge_index) & (edge_index == edge_index.round())
        if not bool(whole.all()):
            odd = edge_index[~whole].flatten()[0].item()
            raise ConfigError(
                f"{file}: edge_index must hold whole node numbers, found {odd}; save it as integers"
            )
    data = Data(
        x=x.float() if not torch.is_floating_point(x) else x,
        y=y.long() if not torch.is_floating_point(y) and y.dtype != torch.bool else y,
        edge_index=edge_index.long(),
    )
    names = ("train_mask", "val_mask", "test_mask")
    masks = [fields.get(k) for k in names]
    if all(m is None for m in masks):
        masks = list(random_split(data.num_nodes or 0, train=train, val=val, seed=split_seed))
    for key, mask in zip(names, masks, strict=True):
        if mask is None:
            continue
        mask = torch.from_numpy(numeric(file, key, mask))
        if mask.dtype != torch.bool:
            if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
                raise ConfigError(f"{file}: {key} must hold booleans (or 0 and 1)")
            mask = mask.bool()
        data[key] = mask
    return data


def planted_partition(
    *,
    nodes: int = 600,
    classes: int = 4,
    features: int = 32,
    p_in: float = 0.025,
    p_out: float = 0.003,
    signal: float = 0.25,
    seed: int = 0,
) -> Data:
    """A stochastic-block-model graph whose communities are the labels.

    Each node links to nodes of its own class with probability ``p_in`` and to others with
    ``p_out``; its features are a class centroid (scaled by ``signal``) plus unit Gaussian
    noise, so both structure and features carry the label. Split 60/20/20 at random. With
    the defaults the features alone are weak (an MLP reaches about 60% test accuracy) while
    message passing reaches 80-90%, so the architecture matters.
    """
    import torch
    from torch_geometric.data import Data

    if nodes < classes * 3 or classes < 2 or features < 1:
        raise ConfigError(
            f"need classes >= 2, features >= 1 and nodes >= 3 * classes; got nodes={nodes}, "
            f"classes={classes}, features={features}"
        )
    if not (0 <= p_out <= p_in <= 1):
        raise ConfigError(f"need 0 <= p_out <= p_in <= 1, got p_in={p_in}, p_out={p_out}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, nodes)
    same = y[:, None] == y[None, :]
    prob = np.where(same, p_in, p_out)
    upper = np.triu(rng.random((nodes, nodes)) < prob, k=1)
    src, dst = np.nonzero(upper)
    edge_index = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], axis=1)
    centroids = rng.normal(0.0, 1.0, (classes, features))
    x = signal * centroids[y] + rng.normal(0.0, 1.0, (nodes, features))
    train, val, test = random_split(nodes, train=0.6, val=0.2, seed=seed)
    return Data(
        x=torch.tensor(x, dtype=torch.float32),
        y=torch.tensor(y, dtype=torch.long),
        edge_index=torch.tensor(edge_index, dtype=torch.long),
        train_mask=train,
        val_mask=val,
        test_mask=test,
    )

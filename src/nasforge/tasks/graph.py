"""Node classification on one graph: the task, its checks, and loaders for real sources.

Loaders:
    * :func:`load_planetoid` — Cora, CiteSeer, PubMed from their raw files (parsed by
      :mod:`nasforge.tasks.planetoid_raw`, which runs no code from them): from a local root
      holding ``<Name>/raw/`` (offline), or downloaded when ``download=True``.
    * :func:`load_graph_file` — a graph the user saved: a ``.pt`` file of a PyG ``Data`` (read
      with ``torch.load(weights_only=True)``) or an ``.npz`` of arrays.
    * :func:`planted_partition` — a synthetic graph with planted communities and informative
      features, for tests and the offline demo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from nasforge.errors import ConfigError
from nasforge.tasks.planetoid_raw import download_planetoid_raw, read_planetoid_raw

__all__ = [
    "PLANETOID",
    "NodeClassificationTask",
    "load_graph_file",
    "load_planetoid",
    "planted_partition",
]

PLANETOID = ("Cora", "CiteSeer", "PubMed")
_RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


@dataclass(frozen=True)
class NodeClassificationTask:
    """Classify the nodes of one graph; train, validation and test nodes given by masks.

    Attributes:
        name: Where the data came from (e.g. ``planetoid:Cora``), stored with experiments.
        data: A PyG ``Data`` with ``x`` (N, F) float, ``y`` (N,) int64 in ``0..C-1``,
            ``edge_index`` (2, E) int64 and boolean ``train_mask``/``val_mask``/``test_mask``.
    """

    name: str
    data: Data

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


def check_graph(data: Data, name: str = "graph") -> None:
    """Check a node-classification graph before any training starts.

    Raises:
        ConfigError: Naming the first broken rule, its values and what is accepted.
    """
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


def random_split(
    n: int, *, train: float, val: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean train/val/test masks drawn with ``seed`` (test is the rest)."""
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


def cache_dir() -> Path:
    """nasforge's cache folder (``$NASFORGE_CACHE`` or ``~/.cache/nasforge``)."""
    return Path(os.environ.get("NASFORGE_CACHE", Path.home() / ".cache" / "nasforge"))


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
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"graph file {file} does not exist")
    fields: dict[str, Any]
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as arrays:
                fields = {k: torch.from_numpy(arrays[k]) for k in arrays.files}
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{file} is not a readable .npz archive: {exc}") from None
    elif file.suffix == ".pt":
        try:
            loaded = torch.load(file, weights_only=True, map_location="cpu")
        except Exception as exc:
            raise ConfigError(
                f"{file} cannot be read safely: {str(exc).splitlines()[0]}; save a dict of "
                "tensors {'x', 'y', 'edge_index', ...} or an .npz archive"
            ) from None
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
    x = fields["x"]
    data = Data(
        x=x.float() if not torch.is_floating_point(x) else x,
        y=fields["y"].long() if not torch.is_floating_point(fields["y"]) else fields["y"],
        edge_index=fields["edge_index"].long(),
    )
    masks = [fields.get(k) for k in ("train_mask", "val_mask", "test_mask")]
    if all(m is None for m in masks):
        masks = list(random_split(data.num_nodes or 0, train=train, val=val, seed=split_seed))
    for key, mask in zip(("train_mask", "val_mask", "test_mask"), masks, strict=True):
        if mask is not None:
            data[key] = mask.bool() if mask.dtype != torch.bool else mask
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

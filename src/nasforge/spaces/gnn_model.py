"""PyTorch Geometric models for architectures of the ``gnn`` space.

The macro-DAG follows NAS-Bench-Graph's model (Qin et al., 2022), reconstructed from its
training code and checked against its tables (the parameter counts of sampled architectures
equal the table's ``para`` exactly):

* dropout on the input features, then ``pre`` linear layers (ELU between them);
* each computing node applies its op to its input node; an op whose input is a hidden
  representation gets ``BatchNorm -> ReLU -> dropout`` first; ops on the raw input do not;
* the leaves are concatenated, passed through ReLU and a linear layer, then ``post`` linear
  layers (ELU between them) produce the class logits. A ``skip`` leaf that only forwards the
  input is not part of the output, as in the canonical key, so that equivalent
  architectures build the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn import (
    ARMAConv,
    ChebConv,
    GATConv,
    GCNConv,
    GINConv,
    GraphConv,
    SAGEConv,
)

from nasforge.errors import ConfigError
from nasforge.spaces.base import LatencyEntry
from nasforge.spaces.gnn_sparse import sparse_forward
from nasforge.train.fastops import dropout, feature_dropout

__all__ = ["GnnModel", "GnnSizes", "latency_entries", "make_op", "postprocess", "preprocess"]


class GnnSizes(Protocol):
    """The model settings a :class:`GnnModel` reads (:class:`~nasforge.spaces.gnn.GnnHyper`)."""

    @property
    def hidden(self) -> int: ...

    @property
    def dropout(self) -> float: ...

    @property
    def pre(self) -> int: ...

    @property
    def post(self) -> int: ...

    @property
    def gat_heads(self) -> int: ...


class _Linear(nn.Module):
    """The ``fc`` op: a linear layer that ignores the graph."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.lin(x)  # type: ignore[no-any-return]


def make_op(op: str, in_dim: int, out_dim: int, *, gat_heads: int = 2) -> nn.Module:
    """The PyG layer of one ``gnn`` op (``skip`` has none)."""
    layers: dict[str, Callable[[], nn.Module]] = {
        "gat": lambda: GATConv(in_dim, out_dim // gat_heads, heads=gat_heads, concat=True),
        "gcn": lambda: GCNConv(in_dim, out_dim),
        "gin": lambda: GINConv(nn.Linear(in_dim, out_dim)),
        "cheb": lambda: ChebConv(in_dim, out_dim, K=2),
        "sage": lambda: SAGEConv(in_dim, out_dim),
        "arma": lambda: ARMAConv(in_dim, out_dim),
        "graph": lambda: GraphConv(in_dim, out_dim),
        "fc": lambda: _Linear(in_dim, out_dim),
    }
    if op in layers:
        return layers[op]()
    raise ConfigError(f"no layer for op {op!r}")


def preprocess(x: Tensor, pre: nn.ModuleList, p: float, training: bool) -> Tensor:
    """The input side of a ``gnn`` model: dropout on the features, then the pre-processing
    layers (ELU between them). Without pre-processing layers the result may be a sparse
    tensor (see :func:`~nasforge.train.fastops.feature_dropout`): give it to an op through
    :func:`~nasforge.spaces.gnn_sparse.sparse_forward`."""
    x = feature_dropout(x, p, training)
    for i, layer in enumerate(pre):
        x = layer(x)
        if i < len(pre) - 1:
            x = F.elu(x)
    return x


def postprocess(out: Tensor, post: nn.ModuleList) -> Tensor:
    """The post-processing layers after a ``gnn`` model's output layer (ELU between them)."""
    for i, layer in enumerate(post):
        out = layer(out)
        if i < len(post) - 1:
            out = F.elu(out)
    return out


class GnnModel(nn.Module):
    """A node classifier built from ``links`` and ``ops`` (see the module docstring).

    Args:
        links: Input node of each computing node (0 = the (pre-processed) input).
        ops: Op of each computing node.
        in_dim: Number of input features.
        out_dim: Number of classes.
        hyper: Widths, dropout and pre/post layers.
    """

    def __init__(
        self, links: Sequence[int], ops: Sequence[str], in_dim: int, out_dim: int, hyper: GnnSizes
    ) -> None:
        super().__init__()
        self.links, self.ops, self.dropout = tuple(links), tuple(ops), hyper.dropout
        dim = hyper.hidden
        self.pre = nn.ModuleList(
            nn.Linear(in_dim if i == 0 else dim, dim) for i in range(hyper.pre)
        )
        # is_input[v]: node v only forwards the input (itself or a chain of skips from it);
        # is_raw[v]: its width is the raw feature count (no pre-processing layer)
        is_input, is_raw = [True], [hyper.pre == 0]
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        for link, op in zip(self.links, self.ops, strict=True):
            source_raw = is_raw[link]
            if op == "skip":
                self.layers.append(nn.Identity())
                self.norms.append(nn.Identity())
                is_raw.append(source_raw)
                is_input.append(is_input[link])
                continue
            self.layers.append(
                make_op(op, in_dim if source_raw else dim, dim, gat_heads=hyper.gat_heads)
            )
            self.norms.append(nn.Identity() if source_raw else nn.BatchNorm1d(dim))
            is_raw.append(False)
            is_input.append(False)
        self._hidden_input = [not is_raw[link] for link in self.links]
        used = set(self.links)
        self.leaves = [
            v for v in range(1, len(self.ops) + 1) if v not in used and not is_input[v]
        ]  # a leaf that only forwards the input carries nothing to the output
        if not self.leaves:
            raise ConfigError(f"architecture {list(ops)} on {list(links)} has no output node")
        self.out = nn.Linear(len(self.leaves) * dim, dim if hyper.post else out_dim)
        self.post = nn.ModuleList(
            nn.Linear(dim, out_dim if i == hyper.post - 1 else dim) for i in range(hyper.post)
        )

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = preprocess(x, self.pre, self.dropout, self.training)
        values = [x]  # values[v]: output of node v, (N, D_v)
        for link, op, layer, norm, hidden in zip(
            self.links, self.ops, self.layers, self.norms, self._hidden_input, strict=True
        ):
            h = values[link]
            if op == "skip":
                values.append(h)
                continue
            if hidden:  # else the input features (forwarded by skips), which may be sparse
                h = dropout(F.relu(norm(h)), self.dropout, self.training)
            values.append(sparse_forward(op, layer, h, edge_index))
        out = self.out(F.relu(torch.cat([values[v] for v in self.leaves], dim=1)))
        return postprocess(out, self.post)  # (N, C) logits


# -- the parts a per-operation latency table times (see GnnSpace.latency_terms) -------------
class _Pre(nn.Module):
    """``GnnModel``'s input dropout and pre-processing layers."""

    def __init__(self, model: GnnModel) -> None:
        super().__init__()
        self.pre, self.dropout = model.pre, model.dropout

    def forward(self, x: Tensor) -> Tensor:
        return preprocess(x, self.pre, self.dropout, self.training)


class _RawOp(nn.Module):
    """A ``gnn`` op on the raw features, which it takes as the models hand them over."""

    def __init__(self, op: str, layer: nn.Module, dropout: float) -> None:
        super().__init__()
        self.op, self.layer, self.dropout = op, layer, dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = feature_dropout(x, self.dropout, self.training)
        return sparse_forward(self.op, self.layer, x, edge_index)


class _HiddenOp(nn.Module):
    """A ``gnn`` op on a hidden representation: ``BatchNorm -> ReLU -> dropout -> op``."""

    def __init__(self, op: nn.Module, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm, self.op, self.dropout = nn.BatchNorm1d(dim), op, dropout

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        h = dropout(F.relu(self.norm(h)), self.dropout, self.training)
        out: Tensor = self.op(h, edge_index)
        return out


class _Out(nn.Module):
    """``GnnModel``'s output: concatenated leaves, ReLU, output and post-processing layers."""

    def __init__(self, model: GnnModel) -> None:
        super().__init__()
        self.out, self.post = model.out, model.post

    def forward(self, *leaves: Tensor) -> Tensor:
        return postprocess(self.out(F.relu(torch.cat(leaves, dim=1))), self.post)


def latency_entries(
    ops: Sequence[str], n_nodes: int, task: Any, hyper: GnnSizes
) -> Iterator[LatencyEntry]:
    """The parts of the models of a space of ``ops`` with ``n_nodes`` computing nodes, at
    the sizes of ``task``'s whole graph: ``pre``, ``<op>/raw`` (an op on the raw features,
    without pre-processing layers), ``<op>/hidden`` and ``out/<k>`` for k leaves."""
    x, edge_index = task.example_inputs()  # (N, F), (2, E)
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(task.num_nodes, hyper.hidden, generator=gen)  # (N, D)
    dim, heads = hyper.hidden, hyper.gat_heads

    def reference(leaves: int) -> GnnModel:
        # every node on the input: `leaves` fc leaves, the rest skips that forward the input
        kinds = ["fc"] * leaves + ["skip"] * (n_nodes - leaves)
        return GnnModel([0] * n_nodes, kinds, task.num_features, task.num_classes, hyper)

    yield LatencyEntry("pre", _Pre(reference(1)), (x,))
    for op in ops:
        if op == "skip":
            continue
        if hyper.pre == 0:  # ops on the raw features exist only without pre-processing
            layer = make_op(op, task.num_features, dim, gat_heads=heads)
            yield LatencyEntry(f"{op}/raw", _RawOp(op, layer, hyper.dropout), (x, edge_index))
        layer = _HiddenOp(make_op(op, dim, dim, gat_heads=heads), dim, hyper.dropout)
        yield LatencyEntry(f"{op}/hidden", layer, (hidden, edge_index))
    for k in range(1, n_nodes + 1):
        yield LatencyEntry(f"out/{k}", _Out(reference(k)), (hidden,) * k)

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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

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

__all__ = ["GnnHyper", "GnnModel", "make_op"]


@dataclass(frozen=True, slots=True)
class GnnHyper:
    """Model hyperparameters NAS-Bench-Graph varies per dataset.

    Attributes:
        hidden: Width of every hidden representation.
        dropout: Dropout probability (input features and before each op on hidden input).
        pre: Linear pre-processing layers before the DAG.
        post: Linear post-processing layers after the output layer.
        gat_heads: Attention heads of ``gat`` (concatenated; ``hidden`` must divide by it).
    """

    hidden: int = 64
    dropout: float = 0.5
    pre: int = 0
    post: int = 1
    gat_heads: int = 2

    def __post_init__(self) -> None:
        if self.hidden < 1:
            raise ConfigError(f"hidden must be >= 1, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pre < 0 or self.post < 0:
            raise ConfigError(f"pre and post must be >= 0, got pre={self.pre}, post={self.post}")
        if self.gat_heads < 1 or self.hidden % self.gat_heads:
            raise ConfigError(
                f"hidden ({self.hidden}) must be a multiple of gat_heads ({self.gat_heads})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self, links: Sequence[int], ops: Sequence[str], in_dim: int, out_dim: int, hyper: GnnHyper
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
        x = F.dropout(x, p=self.dropout, training=self.training)
        for i, layer in enumerate(self.pre):
            x = layer(x)
            if i < len(self.pre) - 1:
                x = F.elu(x)
        values = [x]  # values[v]: output of node v, (N, D_v)
        for link, op, layer, norm, hidden in zip(
            self.links, self.ops, self.layers, self.norms, self._hidden_input, strict=True
        ):
            h = values[link]
            if op == "skip":
                values.append(h)
                continue
            if hidden:
                h = F.dropout(F.relu(norm(h)), p=self.dropout, training=self.training)
            values.append(layer(h, edge_index))
        out: Tensor = self.out(F.relu(torch.cat([values[v] for v in self.leaves], dim=1)))
        for i, layer in enumerate(self.post):
            out = layer(out)
            if i < len(self.post) - 1:
                out = F.elu(out)
        return out  # (N, C) logits

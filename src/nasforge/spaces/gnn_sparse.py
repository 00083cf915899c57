"""``gnn`` ops on sparse input features, projecting before they aggregate.

Every op of the ``gnn`` space is linear in its input up to its first projection: ``gcn``,
``gat`` and ``fc`` project first and take a sparse tensor as it is; ``sage``, ``graph``,
``gin``, ``cheb`` and ``arma`` aggregate neighbours' raw features first (``A x``, then ``W``).
As ``(A x) W = A (x W)``, they are computed here in the other order with the layer's own
weights and its own ``propagate``: the projection costs the features' non-zeros, and the
aggregation moves ``D`` values per edge instead of the raw feature count (Cora: 256 instead
of 1,433). The results equal the layer's forward pass up to floating-point rounding
(``tests/spaces/test_gnn_model.py`` checks each op against PyTorch's reference path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn import ARMAConv, ChebConv, GCNConv, GINConv, GraphConv, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from nasforge.train.fastops import TensorMemo, dense, is_exact

__all__ = ["SPARSE_INPUT_OPS", "sparse_forward"]

SPARSE_INPUT_OPS = frozenset({"gat", "gcn", "fc"})
"""Ops whose layer projects its input before anything else, so it takes a sparse tensor."""


def _project(x: Tensor, linear: Any) -> Tensor:
    """``x W^T`` without the bias: (N, F) sparse times (F, D) -> (N, D) dense."""
    return F.linear(x, linear.weight)


def _add_bias(out: Tensor, linear: Any) -> Tensor:
    return out if linear.bias is None else out + linear.bias


def _linear(x: Tensor, linear: Any) -> Tensor:
    """``linear(x)`` for a sparse ``x``."""
    return _add_bias(_project(x, linear), linear)


def _sage(layer: SAGEConv, x: Tensor, edge_index: Tensor) -> Tensor | None:
    if layer.project or layer.normalize:
        return None
    h = _project(x, layer.lin_l)
    out: Tensor = _add_bias(layer.propagate(edge_index, x=(h, h), size=None), layer.lin_l)
    if layer.root_weight:
        out = out + _linear(x, layer.lin_r)
    return out


def _graph(layer: GraphConv, x: Tensor, edge_index: Tensor) -> Tensor | None:
    h = _project(x, layer.lin_rel)
    aggregated = layer.propagate(edge_index, x=(h, h), edge_weight=None, size=None)
    return _add_bias(aggregated, layer.lin_rel) + _linear(x, layer.lin_root)


def _gin(layer: GINConv, x: Tensor, edge_index: Tensor) -> Tensor | None:
    if not isinstance(layer.nn, nn.Linear):
        return None
    h = _project(x, layer.nn)
    out = layer.propagate(edge_index, x=(h, h), size=None) + (1 + layer.eps) * h
    return _add_bias(out, layer.nn)


def _cheb(layer: ChebConv, x: Tensor, edge_index: Tensor) -> Tensor | None:
    if len(layer.lins) != 2:  # higher orders weight each polynomial differently
        return None
    edge_index, norm = layer.__norm__(
        edge_index, x.size(0), None, layer.normalization, None, dtype=x.dtype, batch=None
    )
    out: Tensor = layer.lins[0](x) + layer.propagate(edge_index, x=layer.lins[1](x), norm=norm)
    return out if layer.bias is None else out + layer.bias


def _arma(layer: ARMAConv, x: Tensor, edge_index: Tensor) -> Tensor | None:
    if layer.num_layers != 1 or (layer.dropout and layer.training):
        return None
    edge_index, weight = gcn_norm(
        edge_index, None, x.size(0), add_self_loops=False, flow=layer.flow, dtype=x.dtype
    )
    stacks = range(layer.num_stacks)
    h = torch.stack([x @ layer.init_weight[k] for k in stacks])  # (K, N, D)
    out: Tensor = layer.propagate(edge_index, x=h, edge_weight=weight)
    out = out + torch.stack([x @ layer.root_weight[0][k] for k in stacks])
    if layer.bias is not None:
        out = out + layer.bias[0]
    if layer.act is not None:
        out = layer.act(out)
    return out.mean(dim=-3)  # (N, D)


# a transductive graph is normalised the same way at every call: once is enough
_NORMS: TensorMemo[tuple[Tensor, Tensor]] = TensorMemo()


def _gcn(layer: GCNConv, x: Tensor, edge_index: Tensor) -> Tensor | None:
    if not layer.normalize or layer.cached or not isinstance(edge_index, Tensor):
        return None
    nodes, settings = x.size(0), (layer.improved, layer.add_self_loops, layer.flow)
    edges, weight = _NORMS.get(  # the tensors GCNConv computes at every call
        edge_index,
        (nodes, x.dtype, settings),
        lambda: gcn_norm(edge_index, None, nodes, *settings, x.dtype),
    )
    out: Tensor = layer.propagate(edges, x=layer.lin(x), edge_weight=weight)
    return out if layer.bias is None else out + layer.bias


_PROJECT_FIRST: dict[type, Callable[..., Tensor | None]] = {
    SAGEConv: _sage,
    GraphConv: _graph,
    GINConv: _gin,
    ChebConv: _cheb,
    ARMAConv: _arma,
}


def sparse_forward(op: str, layer: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    """``layer(x, edge_index)`` for op ``op`` on features ``x`` that may be sparse (and, out
    of :func:`~nasforge.train.fastops.exact_ops`, ``gcn``'s normalisation computed once per
    graph)."""
    if isinstance(layer, GCNConv) and not is_exact():
        found = _gcn(layer, x, edge_index)
        if found is not None:
            return found
    if x.layout == torch.strided or op in SPARSE_INPUT_OPS:
        out: Tensor = layer(x, edge_index)
        return out
    rule = _PROJECT_FIRST.get(type(layer))
    found = None if rule is None else rule(layer, x, edge_index)
    if found is None:  # a configuration the rules do not cover: the layer's own path
        found = layer(dense(x), edge_index)
    return found

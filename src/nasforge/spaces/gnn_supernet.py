"""The supernet of the ``gnn`` space: NAS-Bench-Graph's macro DAG with every op and every
input at once.

Decisions, per computing node ``i``: ``input_i`` (which of nodes ``0..i`` feeds it) and
``op_i`` (one of the space's ops). Every node holds each op's layer twice when the model has
no pre-processing layers: one for the raw features (``F -> D``, no normalisation) and one for
a hidden representation (``BatchNorm -> ReLU -> dropout -> D -> D``), as
:class:`~nasforge.spaces.gnn_model.GnnModel` does; and the output layer has one ``D``-wide
slot of input columns per node, of which an architecture uses its leaves' slots.

With one option routed per decision the forward pass is ``GnnModel``'s, step for step. With
mixtures (DARTS), a node's value is a mixture of "the input, passed through skips" (weight
``r``) and a hidden representation ``h``: a skip keeps the mixture, a layer turns it into
``r * op_raw(x) + (1 - r) * op_hidden(h)``; node ``v`` reaches the output with the
probability that no later node takes it as input, times ``1 - r_v`` (the model leaves a value
that only forwards the input out).

With ``partial=k`` (PC-DARTS) the hidden layers are built ``1/k`` as wide and compute one
group of the hidden channels (node ``i`` takes group ``i mod k``; see
:class:`~nasforge.spaces.supernet.PartialOp`), the rest passing by; layers on the raw
features change width and stay whole. Each node has one input, so its input decision's
weights are already PC-DARTS's edge normalisation. Such a supernet searches, and gives no
weights to models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.spaces.gnn_model import GnnModel, make_op, postprocess, preprocess
from nasforge.spaces.gnn_sparse import sparse_forward
from nasforge.spaces.supernet import Decision, PartialOp, Supernet, check_partial, scaled
from nasforge.train.fastops import dense, dropout

__all__ = ["GnnSupernet"]

_EPS = 1e-6


class GnnSupernet(Supernet):
    """The weight-sharing supernet of a :class:`~nasforge.spaces.gnn.GnnSpace`.

    Args:
        space: The ``gnn`` space.
        task: A node-classification task (``num_features``, ``num_classes``).
        settings: The space's :class:`~nasforge.spaces.gnn.GnnHyper`.
        partial: PC-DARTS's ``k`` (1: every channel through every layer); it must divide the
            hidden width (and leave a width that ``gat``'s heads divide).
    """

    def __init__(self, space: Any, task: Any, settings: Any, partial: int = 1) -> None:
        hyper = settings
        n, dim, heads = space.n_nodes, hyper.hidden, hyper.gat_heads
        check_partial(partial, [dim], "hidden width")
        if "gat" in space.ops and (dim // partial) % heads:
            raise ConfigError(
                f"partial={partial} leaves hidden layers {dim // partial} wide, which gat's "
                f"{heads} heads do not divide; choose a partial that keeps it a multiple"
            )
        super().__init__(space, task, settings, partial)
        self.ops: tuple[str, ...] = space.ops
        self.skip = self.ops.index("skip")
        self.dropout, self.raw_input = hyper.dropout, hyper.pre == 0
        in_dim = task.num_features
        decisions = []
        for i in range(n):
            decisions.append(Decision(f"input_{i}", tuple(range(i + 1))))
            decisions.append(Decision(f"op_{i}", self.ops, frozenset({self.skip})))
        self.decisions = tuple(decisions)
        self.pre = nn.ModuleList(
            nn.Linear(in_dim if i == 0 else dim, dim) for i in range(hyper.pre)
        )
        layers = [op for op in self.ops if op != "skip"]
        # raw[i][op]: op on the raw features; hidden[i][op]: op on a hidden representation.
        # Node 0 always reads the input, so it has no hidden layers unless the input is hidden.
        self.raw = nn.ModuleList(
            nn.ModuleDict(
                {op: make_op(op, in_dim, dim, gat_heads=heads) for op in layers}
                if self.raw_input
                else {}
            )
            for _ in range(n)
        )

        def hidden_op(op: str, i: int) -> nn.Module:
            if partial == 1:
                return make_op(op, dim, dim, gat_heads=heads)
            width = dim // partial
            return PartialOp(make_op(op, width, width, gat_heads=heads), partial, i)

        self.hidden = nn.ModuleList(
            nn.ModuleDict(
                {op: hidden_op(op, i) for op in layers} if i > 0 or not self.raw_input else {}
            )
            for i in range(n)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(n))
        self.dim = dim
        self.out = nn.Linear(n * dim, dim if hyper.post else task.num_classes)
        self.post = nn.ModuleList(
            nn.Linear(dim, task.num_classes if i == hyper.post - 1 else dim)
            for i in range(hyper.post)
        )

    # -- decisions <-> architectures ----------------------------------------------------------
    def indices(self, arch: Architecture) -> list[int]:
        links, ops = self.space.genes(self.space.canonicalize(arch))
        out: list[int] = []
        for link, op in zip(links, ops, strict=True):
            out += [link, self.ops.index(op)]
        return out

    def arch_of(self, indices: Sequence[int]) -> Architecture | None:
        links = [int(indices[2 * i]) for i in range(self.space.n_nodes)]
        ops = [self.ops[int(indices[2 * i + 1])] for i in range(self.space.n_nodes)]
        if all(op == "skip" for op in ops):
            return None
        arch: Architecture = self.space.make(links, ops)
        return arch

    # -- forward ---------------------------------------------------------------------------
    def _prepared(self, i: int, h: Tensor) -> Tensor:
        return dropout(F.relu(self.norms[i](h)), self.dropout, self.training)

    def _columns(self, leaves: Sequence[int]) -> Tensor:
        """The output layer's input columns of ``leaves`` (node indices), in their order."""
        return torch.cat([torch.arange((v - 1) * self.dim, v * self.dim) for v in leaves])

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if not self.routes:
            raise RuntimeError("route the supernet (route, route_indices or fix) before use")
        if all(r.single for r in self.routes):
            return self._forward_path(x, edge_index)
        return self._forward_mixture(x, edge_index)

    def _forward_path(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """One input and one op per node: GnnModel's computation, each chosen value scaled
        by its (straight-through) weight."""
        x = preprocess(x, self.pre, self.dropout, self.training)

        def scale(value: Tensor, weight: Tensor) -> Tensor:
            if value is x and (weight.requires_grad or float(weight) != 1.0):
                value = dense(x)  # sparse features are scaled (and differentiated) dense
            return scaled(value, weight)

        values = [x]
        is_input, is_raw = [True], [self.raw_input]
        n = self.space.n_nodes
        links: list[int] = []
        for i in range(n):
            link_route, op_route = self.routes[2 * i], self.routes[2 * i + 1]
            link, k = link_route.active[0], op_route.active[0]
            links.append(link)
            h = scale(values[link], link_route.weights[link])
            if k == self.skip:
                values.append(scale(h, op_route.weights[k]))
                is_input.append(is_input[link])
                is_raw.append(is_raw[link])
                continue
            op = self.ops[k]
            if is_raw[link]:
                y = sparse_forward(op, _op(self.raw, i, op), h, edge_index)
            else:
                y = _op(self.hidden, i, op)(self._prepared(i, h), edge_index)
            values.append(scaled(y, op_route.weights[k]))
            is_input.append(False)
            is_raw.append(False)
        used = set(links)
        leaves = [v for v in range(1, n + 1) if v not in used and not is_input[v]]
        if not leaves:
            raise RuntimeError("the routed architecture has no output node")
        columns = self._columns(leaves)
        hidden = F.relu(torch.cat([values[v] for v in leaves], dim=1))  # (N, leaves * D)
        out = F.linear(hidden, self.out.weight[:, columns], self.out.bias)
        return postprocess(out, self.post)

    def _forward_mixture(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = preprocess(x, self.pre, self.dropout, self.training)
        n = self.space.n_nodes
        one = torch.ones((), dtype=x.dtype, device=x.device)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        forwards: list[Tensor] = [one]  # forwards[v]: weight of "v's value is the input"
        hiddens: list[Tensor | None] = [None]  # hiddens[v]: the hidden part, normalised
        for i in range(n):
            link_route, op_route = self.routes[2 * i], self.routes[2 * i + 1]
            r_in = sum((link_route.weights[u] * forwards[u] for u in link_route.active), zero)
            mass: Tensor | None = None
            for u in link_route.active:
                h = hiddens[u]
                if h is not None:
                    part = link_route.weights[u] * (1 - forwards[u]) * h
                    mass = part if mass is None else mass + part
            h_in = None if mass is None else mass / (1 - r_in).clamp_min(_EPS)
            q = op_route.weights
            total: Tensor | None = None
            for k in op_route.active:
                if k == self.skip:
                    y = None if h_in is None else (1 - r_in) * h_in
                else:
                    y = self._op_mixture(i, self.ops[k], x, h_in, r_in, edge_index)
                if y is not None:
                    total = q[k] * y if total is None else total + q[k] * y
            r_out = q[self.skip] * r_in if self.skip in op_route.active else zero
            forwards.append(r_out)
            hiddens.append(None if total is None else total / (1 - r_out).clamp_min(_EPS))
        slots = []
        for v in range(1, n + 1):
            leaf = one
            for j in range(v, n):  # node j (0-based) is node j + 1; it may take v as input
                route = self.routes[2 * j]
                if v in route.active:
                    leaf = leaf * (1 - route.weights[v])
            h = hiddens[v]
            slot = (
                torch.zeros(x.shape[0], self.dim, dtype=x.dtype, device=x.device)
                if h is None
                else leaf * (1 - forwards[v]) * h
            )
            slots.append(slot)
        return postprocess(self.out(F.relu(torch.cat(slots, dim=1))), self.post)

    def _op_mixture(
        self, i: int, op: str, x: Tensor, h_in: Tensor | None, r_in: Tensor, edge_index: Tensor
    ) -> Tensor:
        """Op ``op`` of node ``i`` on its mixed input (the input with weight ``r_in``; the
        raw features may be sparse)."""
        if not self.raw_input:  # the input is a hidden representation too: mix first
            mixed = r_in * x if h_in is None else r_in * x + (1 - r_in) * h_in
            y: Tensor = _op(self.hidden, i, op)(self._prepared(i, mixed), edge_index)
            return y
        y = r_in * sparse_forward(op, _op(self.raw, i, op), x, edge_index)
        if h_in is not None:
            y = y + (1 - r_in) * _op(self.hidden, i, op)(self._prepared(i, h_in), edge_index)
        return y

    # -- latency ---------------------------------------------------------------------------------
    def expected_terms(self, probs: Sequence[Tensor]) -> dict[str, Tensor]:
        """Expected counts of the latency-table entries (``GnnSpace.latency_terms``): node
        ``i`` reads the raw features with the probability ``r`` that its input is the input
        forwarded by skips (the mixture's recursion), so op ``o`` counts ``q_o r`` times as
        ``o/raw`` and ``q_o (1 - r)`` as ``o/hidden``; node ``v`` is a leaf with probability
        ``(1 - r_v)`` times that no later node reads it. The decisions are independent, so
        these are exact; the output layer's entry is interpolated at the expected number of
        leaves (its time is close to linear in it)."""
        one = torch.ones(())
        terms: dict[str, Tensor] = {"pre": one}
        n = self.space.n_nodes
        forwards = [one]  # forwards[v]: probability that v's value is the input
        for i in range(n):
            links, ops = probs[2 * i], probs[2 * i + 1]
            r = sum((links[u] * forwards[u] for u in range(i + 1)), torch.zeros(()))
            raw = r if self.raw_input else torch.zeros(())
            for k, op in enumerate(self.ops):
                if k == self.skip:
                    continue
                if self.raw_input:
                    terms[f"{op}/raw"] = terms.get(f"{op}/raw", 0) + ops[k] * raw
                terms[f"{op}/hidden"] = terms.get(f"{op}/hidden", 0) + ops[k] * (1 - raw)
            forwards.append(ops[self.skip] * r)
        leaves = torch.zeros(())
        for v in range(1, n + 1):
            unread = one
            for j in range(v, n):  # node j (0-based) may read node v
                unread = unread * (1 - probs[2 * j][v])
            leaves = leaves + unread * (1 - forwards[v])
        leaves = leaves.clamp(1, n)
        low = int(leaves.detach().floor())
        high = min(low + 1, n)
        frac = leaves - low
        terms[f"out/{low}"] = terms.get(f"out/{low}", 0) + (1 - frac)
        if high != low:
            terms[f"out/{high}"] = terms.get(f"out/{high}", 0) + frac
        return terms

    # -- weights for space.build ---------------------------------------------------------------
    def weights_for(self, arch: Architecture, model: nn.Module) -> dict[str, Tensor]:
        assert isinstance(model, GnnModel)
        links, ops = self.space.genes(self.space.canonicalize(arch))
        rename: dict[str, str] = {}
        is_raw = [self.raw_input]
        for i, (link, op) in enumerate(zip(links, ops, strict=True)):
            if op == "skip":
                is_raw.append(is_raw[link])
                continue
            kind = "raw" if is_raw[link] else "hidden"
            for key in model.layers[i].state_dict():
                rename[f"layers.{i}.{key}"] = f"{kind}.{i}.{op}.{key}"
            is_raw.append(False)
        state = self.copy_matching(
            {k: v for k, v in model.state_dict().items() if k != "out.weight"}, rename
        )
        columns = self._columns(model.leaves)
        state["out.weight"] = self.out.weight.detach()[:, columns].clone()
        return state


def _op(layers: nn.ModuleList, node: int, op: str) -> nn.Module:
    """Layer ``op`` of node ``node`` in a list of per-node module dicts."""
    per_node = layers[node]
    assert isinstance(per_node, nn.ModuleDict)
    return per_node[op]

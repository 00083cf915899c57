"""The supernet of the ``nb201`` space: NAS-Bench-201's macro network with a mixed operation
on each of the cell's six edges (the network DARTS, GDAS and SPOS search on the benchmark).

Every cell of the network shares the six decisions, and holds its own weights for every op
of every edge; ``none`` has no layer and contributes nothing. Routed to one architecture (its
canonical cell, whose dead edges are ``none``) it computes what
:class:`~nasforge.spaces.nb201_model.Nb201Model` computes, sum for sum.

With ``partial=k`` (PC-DARTS) every op is built ``1/k`` as wide and computes one group of
its edge's channels (:class:`~nasforge.spaces.supernet.PartialOp`; the ``i``-th cell takes
group ``i mod k``), the rest passing by; such a supernet searches, and gives no weights to
models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.spaces.nb201_cell import NB201_EDGES, NB201_OPS
from nasforge.spaces.nb201_model import ResNetBasicBlock, make_op
from nasforge.spaces.supernet import Decision, PartialOp, Supernet, check_partial

__all__ = ["Nb201Supernet"]

_NONE = NB201_OPS.index("none")
_FREE = frozenset({_NONE, NB201_OPS.index("skip_connect")})


class _SearchCell(nn.Module):
    """One cell with every op on every edge; reads its routes from the supernet."""

    def __init__(self, channels: int, owner: Nb201Supernet, index: int) -> None:
        super().__init__()
        k = owner.partial

        def op(name: str) -> nn.Module:
            if k == 1 or name == "skip_connect":
                return make_op(name, channels)
            return PartialOp(make_op(name, channels // k), k, index)

        self.edges = nn.ModuleDict(
            {
                f"edge_{t}_{s}": nn.ModuleDict(
                    {name: op(name) for name in NB201_OPS if name != "none"}
                )
                for t, s in NB201_EDGES
            }
        )
        self._owner = [owner]  # a list: not registered as a submodule

    def forward(self, x: Tensor) -> Tensor:
        routes = self._owner[0].routes
        nodes: list[Tensor | None] = [x]
        for target in (1, 2, 3):
            total: Tensor | None = None
            for e, (t, source) in enumerate(NB201_EDGES):
                if t != target or nodes[source] is None:
                    continue
                route = routes[e]
                ops = self.edges[f"edge_{t}_{source}"]
                assert isinstance(ops, nn.ModuleDict)
                for k in route.active:
                    if k == _NONE:
                        continue
                    value: Tensor = ops[NB201_OPS[k]](nodes[source])
                    w = route.weights[k]
                    if w.requires_grad or float(w) != 1.0:
                        value = value * w
                    total = value if total is None else total + value
            nodes.append(total)
        out = nodes[3]
        return x.mul(0.0) if out is None else out


class Nb201Supernet(Supernet):
    """The weight-sharing supernet of an :class:`~nasforge.spaces.nb201.Nb201Space`.

    Args:
        space: The ``nb201`` space.
        task: An image-classification task (``input_shape`` (C, H, W), ``num_outputs``).
        settings: The space's :class:`~nasforge.spaces.nb201.Nb201Hyper`.
        partial: PC-DARTS's ``k`` (1: every channel through every op); it must divide the
            channels.
    """

    def __init__(self, space: Any, task: Any, settings: Any, partial: int = 1) -> None:
        c, n = settings.channels, settings.cells_per_stage
        check_partial(partial, [c, 2 * c, 4 * c], "cells' channels")
        super().__init__(space, task, settings, partial)
        self.decisions = tuple(Decision(f"edge_{t}_{s}", NB201_OPS, _FREE) for t, s in NB201_EDGES)
        self.summed = tuple(
            tuple(e for e, (t, _) in enumerate(NB201_EDGES) if t == node) for node in (1, 2, 3)
        )
        in_channels = task.input_shape[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        layers: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                layers.append(ResNetBasicBlock(width // 2, width))
            layers.extend(_SearchCell(width, self, stage * n + i) for i in range(n))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, task.num_outputs)

    def indices(self, arch: Architecture) -> list[int]:
        ops = self.space.canonicalize(arch)["ops"]
        return [NB201_OPS.index(op) for op in ops]

    def arch_of(self, indices: Sequence[int]) -> Architecture | None:
        return Architecture.create(self.space.name, ops=[NB201_OPS[int(i)] for i in indices])

    def forward(self, x: Tensor) -> Tensor:
        if not self.routes:
            raise RuntimeError("route the supernet (route, route_indices or fix) before use")
        h = self.cells(self.stem(x))
        logits: Tensor = self.classifier(self.global_pooling(self.lastact(h)).flatten(1))
        return logits

    def weights_for(self, arch: Architecture, model: nn.Module) -> dict[str, Tensor]:
        ops = self.space.canonicalize(arch)["ops"]
        rename: dict[str, str] = {}
        for key in model.state_dict():
            parts = key.split(".")
            # cells.<k>.edges.<edge_t_s>.<param...> -> cells.<k>.edges.<edge_t_s>.<op>.<param...>
            if len(parts) > 4 and parts[0] == "cells" and parts[2] == "edges":
                e = [f"edge_{t}_{s}" for t, s in NB201_EDGES].index(parts[3])
                rename[key] = ".".join([*parts[:4], ops[e], *parts[4:]])
        return self.copy_matching(model.state_dict(), rename)

"""PyTorch models for architectures of the ``nb201`` space.

The macro network is NAS-Bench-201's (Dong & Yang, 2020; its ``TinyNetwork`` with
``InferCell``), so that C=16, N=5 gives the benchmark's parameter counts:

* stem: ``Conv3x3(in_channels -> C, bias=False) -> BatchNorm``;
* three stages of N cells with C, 2C and 4C channels, joined by two ResNet basic blocks
  (stride 2, channels doubled; the shortcut is ``AvgPool2x2 -> Conv1x1``);
* ``BatchNorm -> ReLU -> global average pool -> Linear`` to the class logits.

Cell ops (stride 1, channels kept): ``nor_conv_kxk`` is ``ReLU -> Conv(k, padding k//2,
bias=False) -> BatchNorm``, ``avg_pool_3x3`` is ``AvgPool2d(3, 1, 1,
count_include_pad=False)``, ``skip_connect`` the identity and ``none`` zero. Node ``j`` of a
cell sums its inputs' ops and node 3 is the output. A cell builds only its live edges (see
:func:`~nasforge.spaces.nb201.prune_dead_edges`), so dead edges cost nothing; the zero cell
outputs ``x * 0``.

One departure, for images whose side is odd: the shortcut's pooling uses ``ceil_mode=True``
so that it keeps the stride-2 conv's output size; for even sides (NAS-Bench-201's 32 and 16)
it is the benchmark's pooling. Any image of at least 1x1 works (8x8 digits included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from nasforge.errors import ConfigError
from nasforge.spaces.base import LatencyEntry
from nasforge.spaces.nb201_cell import NB201_EDGES, NB201_OPS, prune_dead_edges

__all__ = [
    "Nb201Cell",
    "Nb201Model",
    "Nb201Sizes",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "latency_entries",
    "make_op",
]


class Nb201Sizes(Protocol):
    """The settings an :class:`Nb201Model` reads (:class:`~nasforge.spaces.nb201.Nb201Hyper`)."""

    @property
    def channels(self) -> int: ...

    @property
    def cells_per_stage(self) -> int: ...


class ReLUConvBN(nn.Sequential):
    """``ReLU -> Conv2d(kernel, stride, padding kernel//2, bias=False) -> BatchNorm2d``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(op: str, channels: int) -> nn.Module:
    """The layer of one cell op (``none`` has none: its edge is left out)."""
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ConfigError(f"no layer for op {op!r}; accepted: {', '.join(NB201_OPS[1:])}")


class Nb201Cell(nn.Module):
    """One cell: node ``j`` = sum of ``op_ij(node_i)`` over its live edges; returns node 3.

    Args:
        ops: The 6 edge ops (edge order of :data:`~nasforge.spaces.nb201.NB201_EDGES`);
            dead edges are not built.
        channels: Channels of the cell's input and output.
    """

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.ops = prune_dead_edges(tuple(ops))
        self.edges = nn.ModuleDict()
        # inputs[j - 1]: (source node, edge name) of the live edges into node j
        self.inputs: list[list[tuple[int, str]]] = [[], [], []]
        for op, (target, source) in zip(self.ops, NB201_EDGES, strict=True):
            if op != "none":
                edge = f"edge_{target}_{source}"
                self.edges[edge] = make_op(op, channels)
                self.inputs[target - 1].append((source, edge))

    def forward(self, x: Tensor) -> Tensor:
        nodes: list[Tensor | None] = [x]  # nodes[j]: node j, (B, C, H, W); None if unused
        for incoming in self.inputs:
            total: Tensor | None = None
            for source, edge in incoming:  # live edges read only nodes that have inputs
                value: Tensor = self.edges[edge](nodes[source])
                total = value if total is None else total + value
            nodes.append(total)
        out = nodes[3]
        # the zero cell outputs x * 0 as NAS-Bench-201's ``Zero`` does: the autograd graph
        # stays connected, so the layers before it get (zero) gradients, not none
        return x.mul(0.0) if out is None else out


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: two ``ReLUConvBN`` 3x3 (the first with stride 2)
    plus an ``AvgPool2x2 -> Conv1x1`` shortcut; halves the size, changes the channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv_b(self.conv_a(x)) + self.downsample(x)
        return out  # (B, c_out, ceil(H/2), ceil(W/2))


class Nb201Model(nn.Module):
    """The NAS-Bench-201 network of one cell (see the module docstring).

    Args:
        ops: The cell's 6 edge ops (the space passes the canonical cell).
        in_channels: Channels of the input images.
        num_classes: Number of classes (logits).
        hyper: Channels C of the first stage and cells N per stage.
    """

    def __init__(
        self, ops: Sequence[str], in_channels: int, num_classes: int, hyper: Nb201Sizes
    ) -> None:
        super().__init__()
        self.ops = tuple(ops)
        c, n = hyper.channels, hyper.cells_per_stage
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        layers: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                layers.append(ResNetBasicBlock(width // 2, width))
            layers.extend(Nb201Cell(self.ops, width) for _ in range(n))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.cells(self.stem(x))  # (B, 4C, H/4, W/4)
        h = self.global_pooling(self.lastact(h)).flatten(1)  # (B, 4C)
        logits: Tensor = self.classifier(h)
        return logits  # (B, classes)


# -- the parts a per-operation latency table times (see Nb201Space.latency_terms) -----------
class _Head(nn.Module):
    """``Nb201Model``'s head: BatchNorm, ReLU, global average pooling, classifier."""

    def __init__(self, model: Nb201Model) -> None:
        super().__init__()
        self.lastact, self.pool, self.classifier = (
            model.lastact,
            model.global_pooling,
            model.classifier,
        )

    def forward(self, h: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.pool(self.lastact(h)).flatten(1))
        return logits


class _Add(nn.Module):
    """One sum of two node inputs in a cell."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


_ONLY_SKIP = ("none", "none", "none", "skip_connect", "none", "none")  # out = x


def latency_entries(
    task: Any, hyper: Nb201Sizes, cell_ops: Sequence[str]
) -> Iterator[LatencyEntry]:
    """The parts of the networks for ``task`` (one example): ``stem``, the two reductions,
    ``head``, and per stage each of ``cell_ops``, a sum, the zero cell and a cell's own
    overhead (timed as the one-skip cell, stored net of its skip)."""
    (image,) = task.example_inputs()  # (1, C, H, W)
    c, n = hyper.channels, hyper.cells_per_stage
    model = Nb201Model(("none",) * 6, image.shape[1], task.num_outputs, hyper).eval()
    reduce_1, reduce_2 = model.cells[n], model.cells[2 * n + 1]
    with torch.no_grad():  # the input of each stage: after the stem, after each reduction
        h0 = model.stem(image)  # (1, C, H, W)
        h1 = reduce_1(h0)  # (1, 2C, H/2, W/2)
        h2 = reduce_2(h1)  # (1, 4C, H/4, W/4)
    yield LatencyEntry("stem", model.stem, (image,))
    yield LatencyEntry("reduce/1", reduce_1, (h0,))
    yield LatencyEntry("reduce/2", reduce_2, (h1,))
    yield LatencyEntry("head", _Head(model), (h2,))
    gen = torch.Generator().manual_seed(0)
    for stage, (given, width) in enumerate(zip((h0, h1, h2), (c, 2 * c, 4 * c), strict=True)):
        h = torch.randn(given.shape, generator=gen)  # (1, C_s, H_s, W_s)
        for op in cell_ops:
            yield LatencyEntry(f"{op}/{stage}", make_op(op, width), (h,))
        yield LatencyEntry(f"add/{stage}", _Add(), (h, h.clone()))
        yield LatencyEntry(f"zero_cell/{stage}", Nb201Cell(("none",) * 6, width), (h,))
        yield LatencyEntry(
            f"cell/{stage}", Nb201Cell(_ONLY_SKIP, width), (h,), minus=f"skip_connect/{stage}"
        )

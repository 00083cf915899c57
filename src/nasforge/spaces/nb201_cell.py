"""The NAS-Bench-201 cell as data: its operations, its edges, and which edges are dead.

Shared by the space (:mod:`nasforge.spaces.nb201`: keys, moves, encodings) and its models
(:mod:`nasforge.spaces.nb201_model`); imports nothing else, so neither imports the other.
"""

from __future__ import annotations

__all__ = ["NB201_EDGES", "NB201_OPS", "prune_dead_edges"]

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
"""The five operations of NAS-Bench-201, in the benchmark's order."""

NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""The six edges as ``(target, source)``, in the order of the gene ``ops``."""

Ops = tuple[str, ...]


def prune_dead_edges(ops: Ops) -> Ops:
    """``ops`` with every edge on no input-to-output path (through non-``none`` edges) set to
    ``none``; the zero cell becomes all ``none``."""
    reached = [True, False, False, False]  # from node 0
    for op, (target, source) in zip(ops, NB201_EDGES, strict=True):
        if op != "none" and reached[source]:
            reached[target] = True
    reaches = [False, False, False, True]  # node 3
    for op, (target, source) in reversed(tuple(zip(ops, NB201_EDGES, strict=True))):
        if op != "none" and reaches[target]:
            reaches[source] = True
    return tuple(
        op if reached[source] and reaches[target] else "none"
        for op, (target, source) in zip(ops, NB201_EDGES, strict=True)
    )

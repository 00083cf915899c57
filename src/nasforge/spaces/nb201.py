"""The NAS-Bench-201 cell space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG on 4 nodes: node 0 is the cell input, node 3 its output, and every node ``j``
is the sum of ``op_ij(node_i)`` over ``i < j``. Each of the 6 edges carries one of the 5 ops
of :data:`NB201_OPS`, so there are 5^6 = 15,625 cells, all members of the space (the cell whose
output is unreachable outputs zeros). The one gene ``ops`` lists the edge ops in the
benchmark's edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, the order of the benchmark's string
form ``|a~0|+|b~0|c~1|+|d~0|e~1|f~2|`` (:meth:`Nb201Space.from_string`,
:meth:`Nb201Space.to_string`).

Equivalence (the canonical key) merges cells that compute the same function of the cell
input for all weights, each conv of one cell matched to a conv of the other:

* an edge on no path from node 0 to node 3 through non-``none`` edges is dead and counts as
  ``none``; a cell whose output is unreachable is the zero cell (one class);
* ``skip_connect`` is the identity and node sums are commutative and associative, so a cell is
  written as a formal sum of terms; the intermediate nodes 1 and 2 are interchangeable when no
  edge joins them (a graph isomorphism), which this form covers;
* ``avg_pool_3x3`` is linear and parameter-free, so ``avg(a + b) = avg(a) + avg(b)``;
* a conv used twice (its node feeds two paths) differs from two convs with their own weights,
  and ``x + x`` differs from ``x``: multiplicities and sharing are kept.

The key reads like the function: convs named ``a``, ``b``, ... with their inputs, then the
output, e.g. ``a=conv3(x);b=conv1(a+avg(x));out=b+x``; the zero cell is ``out=0``.

The one merge that is exact only for the networks this space builds is the dead edge whose
*source* is unreachable: the node it reads is zero, and ``ReLU-Conv-BN`` of zeros is
BatchNorm's learnable shift, not zero. NAS-Bench-201's own networks keep such convs; this
space, like the benchmark's unique string, counts them as ``none`` and :meth:`Nb201Space.build`
builds the canonical cell, which has no dead edges.

Over all 15,625 cells this gives 5,044 classes. The benchmark reports 6,466 unique cells,
which is the number of distinct ``CellStructure.to_unique_str(consider_zero=True)`` strings of
its code. The two partitions differ, and neither refines the other:

1. Its string keeps one ``#`` term per zero input of a node and detects a zero node only for
   node 1 (node 2 with two zero inputs is ``#+#``), so cells that compute the same function
   get different strings: ``|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|``
   and ``|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|`` are both ``conv3(x)``.
   Its rule with zeros removed exactly gives 4,930 classes, each a union of its 6,466.
2. It writes out a node's expression wherever the node is used, so one conv reached through
   two skip paths (``2*a``) and two convs with their own weights (``a+b``) get the same
   string, although they differ in function and parameters:
   ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|skip_connect~2|`` and
   ``|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|``.
   Keeping shared and separate convs apart gives 5,260 classes.
3. It does not use the linearity of average pooling, which merges 5,260 into 5,044.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.spaces.base import (
    ArchGraph,
    GraphEdge,
    GraphNode,
    LatencyEntry,
    SearchSpace,
    TaskShape,
    WidthSite,
    checked_widths,
    width_grid,
)
from nasforge.spaces.nb201_cell import NB201_EDGES, NB201_OPS, prune_dead_edges

if TYPE_CHECKING:
    from torch import nn

    from nasforge.spaces.nb201_supernet import Nb201Supernet

__all__ = [
    "NB201_EDGES",
    "NB201_OPS",
    "PATH_ENCODING_LENGTH",
    "PATH_OPS",
    "STRING_FORM",
    "Nb201Hyper",
    "Nb201Space",
    "prune_dead_edges",
]

PATH_OPS: tuple[str, ...] = NB201_OPS[1:]
"""The ops a path can run through (a ``none`` edge breaks the path)."""

PATH_ENCODING_LENGTH = sum(len(PATH_OPS) ** n for n in (1, 2, 3))
"""Length of :meth:`Nb201Space.path_encoding`: 4 + 16 + 64 = 84 op sequences."""

STRING_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
"""The shape of the benchmark's string form of a cell."""

Ops = tuple[str, ...]
Term = tuple[int, int]
"""``(p, atom)``: ``p`` average poolings applied to an atom, the input (-1) or a conv (edge)."""

_CELL_OPS = NB201_OPS[1:]  # the ops a live edge carries, each an entry of a latency table
_INPUT = -1
_SHORT = {"nor_conv_1x1": "conv1", "nor_conv_3x3": "conv3"}
_INDEX = {op: i for i, op in enumerate(NB201_OPS)}
# the paths from node 0 to node 3, as edge indices
_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_PATH_OFFSETS = (0, len(PATH_OPS), len(PATH_OPS) + len(PATH_OPS) ** 2)


def _edge_name(e: int) -> str:
    target, source = NB201_EDGES[e]
    return f"{target}<-{source}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Expansion:
    """What a pruned cell computes, as formal sums of terms (see :data:`Term`).

    ``conv_input[e]`` is the input of the conv on edge ``e``, ``output`` the cell output.
    """

    def __init__(self, ops: Ops) -> None:
        self.conv_input: dict[int, Counter[Term]] = {}
        values: list[Counter[Term]] = [Counter({(0, _INPUT): 1})]
        for node in (1, 2, 3):
            value: Counter[Term] = Counter()
            for e, (target, source) in enumerate(NB201_EDGES):
                op = ops[e]
                if target != node or op == "none":
                    continue
                if op == "skip_connect":
                    value.update(values[source])
                elif op == "avg_pool_3x3":  # linear: pool every term
                    value.update({(p + 1, atom): n for (p, atom), n in values[source].items()})
                else:
                    self.conv_input[e] = values[source]
                    value[(0, e)] += 1
            values.append(value)
        self.output = values[3]


def _sum_text(value: Counter[Term], names: Mapping[int, str]) -> str:
    """``value`` as sorted text, e.g. ``2*x+avg(a)``, atoms named by ``names``; ``0`` if empty."""
    terms = []
    for (pools, atom), count in value.items():
        text = names[atom]
        for _ in range(pools):
            text = f"avg({text})"
        terms.append(f"{count}*{text}" if count > 1 else text)
    return "+".join(sorted(terms)) or "0"


@lru_cache(maxsize=16_384)
def _key_of_pruned(ops: Ops) -> str:
    """The canonical key of a cell without dead edges (see the module docstring)."""
    cell = _Expansion(ops)
    # a conv's "tree" is its function written out without sharing; convs with equal trees are
    # interchangeable locally, so the key is the smallest text over the namings that order
    # convs by (depth, tree) and permute those with equal trees
    tree: dict[int, str] = {_INPUT: "x"}
    depth: dict[int, int] = {_INPUT: 0}
    for e, inner in cell.conv_input.items():  # edge order: a conv reads convs of earlier edges
        tree[e] = f"{_SHORT[ops[e]]}({_sum_text(inner, tree)})"
        depth[e] = 1 + max(depth[atom] for _, atom in inner)
    convs = sorted(cell.conv_input, key=lambda e: (depth[e], tree[e]))
    groups = [list(g) for _, g in itertools.groupby(convs, key=lambda e: tree[e])]
    best = ""
    for order in itertools.product(*(itertools.permutations(g) for g in groups)):
        flat = [e for group in order for e in group]
        names = {_INPUT: "x"} | {e: "abcdef"[k] for k, e in enumerate(flat)}
        parts = [
            f"{names[e]}={_SHORT[ops[e]]}({_sum_text(cell.conv_input[e], names)})" for e in flat
        ]
        text = ";".join([*parts, f"out={_sum_text(cell.output, names)}"])
        if not best or text < best:
            best = text
    return best


def _key(ops: Ops) -> str:
    return _key_of_pruned(prune_dead_edges(ops))


@cache
def _representatives() -> dict[str, Ops]:
    """Key -> the class member with the fewest non-``none`` edges, then the smallest op
    indices; in order of first appearance over all cells."""
    best: dict[str, tuple[tuple[int, tuple[int, ...]], Ops]] = {}
    for index in itertools.product(range(len(NB201_OPS)), repeat=len(NB201_EDGES)):
        ops = tuple(NB201_OPS[i] for i in index)
        key = _key(ops)
        rank = (sum(i != 0 for i in index), index)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, ops)
    return {key: ops for key, (_, ops) in best.items()}


@dataclass(frozen=True, slots=True)
class Nb201Hyper:
    """Size of the NAS-Bench-201 macro network.

    ``channels=16, cells_per_stage=5`` is the benchmark's network (0.073-1.53 M parameters on
    CIFAR-10, exactly the benchmark's figures). Small values such as ``channels=8,
    cells_per_stage=1`` (at most 92 k parameters) train on a CPU: an epoch of the 1,078
    training digits (8x8) takes well under a second on one core.

    Attributes:
        channels: Channels C of the first stage (the stages have C, 2C and 4C).
        cells_per_stage: Cells N in each of the three stages.
    """

    channels: int = field(default=16, metadata={"help": "channels of stage 1"})
    cells_per_stage: int = field(default=5, metadata={"help": "cells in each of the 3 stages"})

    def __post_init__(self) -> None:
        for name, value in (
            ("channels", self.channels),
            ("cells_per_stage", self.cells_per_stage),
        ):
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Nb201Space(SearchSpace):
    """The NAS-Bench-201 cell space (one gene ``ops``: 6 edge ops, see the module docstring).

    ``sample`` draws the 6 ops uniformly, as random search on the benchmark does, so classes
    with many members come up more often (``out=x`` has 400 cells, the zero cell 341, and
    3,843 of the 5,044 classes have a single cell).

    Args:
        name: Registry name stored in each architecture.
    """

    modality = "image"
    predicts_latency = True

    def __init__(self, *, name: str = "nb201") -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name must be a non-empty string, got {name!r}")
        self.name = name

    # -- membership -------------------------------------------------------------------------
    def make(self, ops: Sequence[str]) -> Architecture:
        """Build and validate an architecture from its 6 edge ops (edge order of the module)."""
        arch = Architecture.create(self.name, ops=list(ops))
        self.validate(arch)
        return arch

    def validate(self, arch: Architecture) -> None:
        self.check_member(arch)
        if set(arch) != {"ops"}:
            raise InvalidArchitectureError(
                f"a {self.name} architecture has one gene 'ops'; got {sorted(arch)}"
            )
        ops = arch["ops"]
        if not isinstance(ops, tuple) or len(ops) != len(NB201_EDGES):
            raise InvalidArchitectureError(
                f"'ops' must list 6 operations, one per edge in the order "
                f"{', '.join(_edge_name(e) for e in range(6))}; got {ops!r}"
            )
        for e, op in enumerate(ops):
            if op not in _INDEX:
                raise InvalidArchitectureError(
                    f"ops[{e}] (edge {_edge_name(e)}) = {op!r} is not an operation of "
                    f"{self.name}; valid: {', '.join(NB201_OPS)}"
                )

    @staticmethod
    def genes(arch: Architecture) -> Ops:
        """The 6 edge ops of an ``nb201`` architecture (not validated)."""
        return arch["ops"]  # type: ignore[return-value]

    # -- the benchmark's string form ----------------------------------------------------------
    def from_string(self, text: str) -> Architecture:
        """Parse the benchmark's form ``|a~0|+|b~0|c~1|+|d~0|e~1|f~2|``.

        Each node lists its inputs once each, in any order.

        Raises:
            InvalidArchitectureError: Showing the expected form and what was wrong.
        """

        def fail(reason: str) -> InvalidArchitectureError:
            return InvalidArchitectureError(
                f"{text!r} is not a NAS-Bench-201 cell: {reason}; expected {STRING_FORM!r} "
                f"with each op one of {', '.join(NB201_OPS)}"
            )

        if not isinstance(text, str):
            raise fail(f"a cell string is a str, got {type(text).__name__}")
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise fail(f"it has {len(groups)} node group(s) separated by '+', a cell has 3")
        edge_ops: dict[tuple[int, int], str] = {}
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or group[0] != "|" or group[-1] != "|":
                raise fail(f"node {node}'s group {group!r} must start and end with '|'")
            edges = group[1:-1].split("|")
            if len(edges) != node:
                raise fail(
                    f"node {node} must list {node} edge(s), one per input 0..{node - 1}, "
                    f"got {len(edges)} in {group!r}"
                )
            for edge in edges:
                op, sep, source = edge.partition("~")
                if not sep:
                    raise fail(f"edge {edge!r} of node {node} is not of the form op~input")
                if op not in _INDEX:
                    raise fail(f"unknown op {op!r} in edge {edge!r} of node {node}")
                inputs = [str(i) for i in range(node)]
                if source not in inputs:
                    raise fail(
                        f"edge {edge!r} of node {node} has input {source!r}; node {node} takes "
                        f"inputs {', '.join(inputs)}"
                    )
                if (node, int(source)) in edge_ops:
                    raise fail(f"node {node} lists input {source} twice")
                edge_ops[(node, int(source))] = op
        return self.make([edge_ops[edge] for edge in NB201_EDGES])

    def to_string(self, arch: Architecture) -> str:
        """The benchmark's string form of ``arch`` (inverse of :meth:`from_string`)."""
        self.validate(arch)
        ops = self.genes(arch)
        nodes = [
            "|"
            + "|".join(f"{ops[e]}~{s}" for e, (t, s) in enumerate(NB201_EDGES) if t == node)
            + "|"
            for node in (1, 2, 3)
        ]
        return "+".join(nodes)

    # -- equivalence --------------------------------------------------------------------------
    def canonical_key(self, arch: Architecture) -> str:
        return _key(self.genes(arch))

    def canonicalize(self, arch: Architecture) -> Architecture:
        """The representative of ``arch``'s class that :meth:`enumerate` yields: the member
        with the fewest non-``none`` edges (so no dead edge), then the smallest op indices."""
        return Architecture.create(self.name, ops=_representatives()[self.canonical_key(arch)])

    # -- the model side ---------------------------------------------------------------------
    def default_settings(self) -> Nb201Hyper:
        return Nb201Hyper()

    def build(self, arch: Architecture, task: TaskShape, settings: Any = None) -> nn.Module:
        """The NAS-Bench-201 network of ``arch``'s canonical cell for ``task``.

        Args:
            arch: An architecture of this space.
            task: Supplies ``input_shape`` ``(C, H, W)`` and ``num_outputs`` (classes).
            settings: Channels and cells per stage (the benchmark's C=16, N=5 if ``None``).

        Returns:
            A :class:`~nasforge.spaces.nb201_model.Nb201Model` mapping (B, C, H, W) images
            to (B, classes) logits.

        Raises:
            InvalidArchitectureError: If ``arch`` is not in this space.
            ConfigError: If the task is not image classification or ``settings`` is not an
                :class:`Nb201Hyper`.
        """
        from nasforge.spaces.nb201_model import Nb201Model

        self.validate(arch)
        shape = tuple(task.input_shape)
        if len(shape) != 3 or not all(_is_int(s) and s >= 1 for s in shape):
            raise ConfigError(
                f"space {self.name!r} builds models for images: the task's input_shape must be "
                f"(channels, height, width), got {shape}"
            )
        classes = task.num_outputs
        if not _is_int(classes) or classes < 1:
            raise ConfigError(f"the task's num_outputs must be a positive integer, got {classes}")
        hyper = self._hyper(settings)
        return Nb201Model(self.genes(self.canonicalize(arch)), shape[0], classes, hyper)

    def supernet(self, task: Any, settings: Any = None, *, partial: int = 1) -> Nb201Supernet:
        """A mixed operation on each of the six edges, shared by every cell
        (:class:`~nasforge.spaces.nb201_supernet.Nb201Supernet`), for an image task."""
        from nasforge.spaces.nb201_supernet import Nb201Supernet

        self.check_task(task)
        return Nb201Supernet(self, task, self._hyper(settings), partial)

    def width_options(self, arch: Architecture, settings: Any) -> dict[str, tuple[int, ...]]:
        """``channels``: eighths of the first stage's channels C (the later stages have 2C
        and 4C)."""
        return {"channels": width_grid(self._hyper(settings).channels)}

    def with_widths(
        self, arch: Architecture, settings: Any, widths: Mapping[str, int]
    ) -> tuple[Architecture, Nb201Hyper]:
        hyper = self._hyper(settings)
        chosen = checked_widths(self, self.width_options(arch, hyper), widths)
        return arch, replace(hyper, channels=chosen["channels"])

    def width_sites(
        self, net: nn.Module, arch: Architecture, settings: Any
    ) -> dict[str, list[WidthSite]]:
        """The channels after the stem and after every cell and reduction block (C, 2C,
        4C)."""
        from nasforge.spaces.nb201_model import Nb201Model, ResNetBasicBlock

        if not isinstance(net, Nb201Model):
            raise ConfigError(f"space {self.name!r} finds widths in its own models only")
        sites, scale = [WidthSite(net.stem, axis=1)], 1
        for block in net.cells:
            if isinstance(block, ResNetBasicBlock):
                scale *= 2
            sites.append(WidthSite(block, axis=1, scale=scale))
        return {"channels": sites}

    def _hyper(self, settings: Any) -> Nb201Hyper:
        if settings is None:
            return Nb201Hyper()
        if not isinstance(settings, Nb201Hyper):
            raise ConfigError(
                f"space {self.name!r} takes an Nb201Hyper(channels=..., cells_per_stage=...) "
                f"as hyper, got {type(settings).__name__}"
            )
        return settings

    # -- latency: stem, reduce/1, reduce/2, head; per stage s: the cells' parts --------------
    def latency_names(self, settings: Any) -> set[str]:
        self._hyper(settings)
        per_stage = (*_CELL_OPS, "add", "zero_cell", "cell")
        stages = {f"{part}/{stage}" for part in per_stage for stage in range(3)}
        return {"stem", "reduce/1", "reduce/2", "head", *stages}

    def latency_shape(self, task: Any, settings: Any) -> dict[str, Any]:
        hyper = self._hyper(settings)
        shape = getattr(task, "input_shape", None)
        if shape is None or len(shape) != 3:
            raise ConfigError(
                f"a latency table of space {self.name!r} needs an image task with input_shape "
                f"(C, H, W), got {type(task).__name__} with input_shape {shape}"
            )
        return {
            "input_shape": [int(s) for s in shape],
            "outputs": int(task.num_outputs),
            "hyper": hyper.to_dict(),
        }

    def latency_entries(self, task: Any, settings: Any) -> Iterator[LatencyEntry]:
        from nasforge.spaces.nb201_model import latency_entries

        return latency_entries(task, self._hyper(settings), _CELL_OPS)

    def latency_terms(self, arch: Architecture, settings: Any) -> Counter[str]:
        """The entries the :class:`~nasforge.spaces.nb201_model.Nb201Model` of ``arch``'s
        cell runs: ``stem``, ``reduce/1``, ``reduce/2`` and ``head`` once; in each stage ``s``
        and for each of its N cells either ``zero_cell/s`` (no live edge) or ``cell/s`` (the
        cell's own overhead) plus ``<op>/s`` per live edge and ``add/s`` per extra input
        summed into a node. Dead edges cost nothing, as in the built cell."""
        self.validate(arch)
        hyper = self._hyper(settings)
        live = prune_dead_edges(self.genes(self.canonicalize(arch)))
        n = hyper.cells_per_stage
        terms: Counter[str] = Counter({"stem": 1, "reduce/1": 1, "reduce/2": 1, "head": 1})
        inputs = Counter(
            target for op, (target, _) in zip(live, NB201_EDGES, strict=True) if op != "none"
        )
        for stage in range(3):
            if not inputs:
                terms[f"zero_cell/{stage}"] += n
                continue
            terms[f"cell/{stage}"] += n
            for op in live:
                if op != "none":
                    terms[f"{op}/{stage}"] += n
            adds = sum(count - 1 for count in inputs.values())
            if adds:
                terms[f"add/{stage}"] += n * adds
        return terms

    def graph(self, arch: Architecture) -> ArchGraph:
        """The cell of ``arch`` as stored: nodes ``0`` (cell input) to ``3`` (cell output)
        and one edge per op other than ``none``, labelled with the op. An intermediate node
        on no input-to-output path (its edges are dead, see :func:`prune_dead_edges`) is of
        kind ``"unused"``.

        Raises:
            InvalidArchitectureError: If ``arch`` is not an architecture of this space.
        """
        self.validate(arch)
        ops = self.genes(arch)
        alive = {0, 3}
        for op, (target, source) in zip(prune_dead_edges(ops), NB201_EDGES, strict=True):
            if op != "none":
                alive |= {target, source}
        kinds = ("input", "op", "op", "output")
        labels = ("0: input", "1", "2", "3: output")
        nodes = tuple(
            GraphNode(str(i), labels[i], kinds[i] if i in alive else "unused") for i in range(4)
        )
        edges = tuple(
            GraphEdge(str(source), str(target), op)
            for op, (target, source) in zip(ops, NB201_EDGES, strict=True)
            if op != "none"
        )
        return ArchGraph(nodes, edges)

    # -- moves --------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        index = rng.integers(0, len(NB201_OPS), len(NB201_EDGES))
        return Architecture.create(self.name, ops=[NB201_OPS[int(i)] for i in index])

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A random neighbour (uniform over the canonical keys one edge edit away)."""
        candidates = self.neighbors(arch)
        return candidates[int(rng.integers(len(candidates)))]

    def neighbors(self, arch: Architecture) -> list[Architecture]:
        """Every one-edge-op edit, the first in edge then op order for each new key."""
        ops = self.genes(arch)
        seen = {_key(ops)}
        out: list[Architecture] = []
        for e in range(len(NB201_EDGES)):
            for op in NB201_OPS:
                if op == ops[e]:
                    continue
                edited = (*ops[:e], op, *ops[e + 1 :])
                key = _key(edited)
                if key not in seen:
                    seen.add(key)
                    out.append(Architecture.create(self.name, ops=edited))
        return out

    # -- enumeration and encodings -----------------------------------------------------------
    def enumerate(self) -> Iterator[Architecture]:
        for ops in _representatives().values():
            yield Architecture.create(self.name, ops=ops)

    @property
    def size(self) -> int:
        return len(_representatives())

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot op per edge (6 x 5, edge order of the module) of the canonical cell."""
        ops = self.genes(self.canonicalize(arch))
        vec = np.zeros((len(NB201_EDGES), len(NB201_OPS)), dtype=np.float32)
        for e, op in enumerate(ops):
            vec[e, _INDEX[op]] = 1.0
        return vec.reshape(-1)

    def path_encoding(self, arch: Architecture) -> np.ndarray:
        """The path encoding of BANANAS (White et al., "BANANAS: Bayesian Optimization with
        Neural Architectures for Neural Architecture Search", AAAI 2021) of the canonical cell.

        One bit per op sequence that some input-to-output path of the cell runs through:
        the 4 one-edge, 16 two-edge and 64 three-edge sequences over :data:`PATH_OPS`, in that
        order, each block in lexicographic order of op indices (84 entries). A ``none`` edge
        breaks a path, so sequences with ``none`` (which NASLib's 155-entry version also
        indexes) would never be set and are left out.
        """
        ops = self.genes(self.canonicalize(arch))
        vec = np.zeros(PATH_ENCODING_LENGTH, dtype=np.float32)
        k = len(PATH_OPS)
        for path in _PATHS:
            if any(ops[e] == "none" for e in path):
                continue
            index = 0
            for e in path:
                index = index * k + PATH_OPS.index(ops[e])
            vec[_PATH_OFFSETS[len(path) - 1] + index] = 1.0
        return vec

    def choices(self) -> Mapping[str, Sequence[Any]]:
        """One parameter per edge, ``edge_<target>_<source>``, each the 5 ops."""
        return {f"edge_{t}_{s}": list(NB201_OPS) for t, s in NB201_EDGES}

    def to_choices(self, arch: Architecture) -> dict[str, Any]:
        self.validate(arch)
        ops = arch["ops"]
        assert isinstance(ops, tuple)
        return {f"edge_{t}_{s}": op for (t, s), op in zip(NB201_EDGES, ops, strict=True)}

    def from_choices(self, params: Mapping[str, Any]) -> Architecture:
        names = list(self.choices())
        missing = [n for n in names if n not in params]
        if missing:
            raise InvalidArchitectureError(
                f"missing parameter {missing[0]!r}; expected {', '.join(names)}"
            )
        unknown = sorted(str(n) for n in params if n not in names)
        if unknown:
            raise InvalidArchitectureError(
                f"unknown parameter(s) {', '.join(unknown)}; expected {', '.join(names)}"
            )
        return self.make([params[n] for n in names])

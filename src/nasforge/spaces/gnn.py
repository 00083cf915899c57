"""The GNN macro search space of NAS-Bench-Graph (Qin et al., "NAS-Bench-Graph: Benchmarking
Graph Neural Architecture Search", NeurIPS 2022 Datasets and Benchmarks).

An architecture is a DAG of ``n_nodes`` computing nodes. Node ``i`` (0-based) takes its input
from node ``links[i]`` in ``0..i`` (0 is the raw input, ``j > 0`` is computing node ``j``) and
applies ``ops[i]``. Nodes without successors (leaves) feed the output. ``skip`` is the identity,
and the all-skip architecture is invalid.

Equivalence (the canonical key) follows what the architecture computes:

* a ``skip`` node that has successors only forwards its input, so it is contracted;
* a ``skip`` leaf adds its input's value to the output once more, so the output is a multiset
  of node values;
* a ``skip`` leaf whose value is the raw input contributes nothing (the benchmark's output
  combines hidden representations only);
* children of a node are unordered.

Over the whole space this yields exactly the 26,206 classes of the benchmark's own
``Arch.valid_hash()`` (tested exhaustively in ``tests/spaces/test_gnn_nbg_hash.py``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
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
    WidthSite,
    checked_widths,
    width_grid,
)

if TYPE_CHECKING:
    from torch import nn

    from nasforge.spaces.gnn_supernet import GnnSupernet

__all__ = ["GNN_OPS", "PROTEINS_OPS", "GnnHyper", "GnnSpace"]

GNN_OPS: tuple[str, ...] = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
"""The nine operations of NAS-Bench-Graph, in the benchmark's order."""

PROTEINS_OPS: tuple[str, ...] = ("gcn", "sage", "arma", "fc", "skip")
"""The five operations the NAS-Bench-Graph ogbn-proteins table covers."""

Links = tuple[int, ...]
Ops = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GnnHyper:
    """Model hyperparameters NAS-Bench-Graph varies per dataset (the space's settings).

    Attributes:
        hidden: Width of every hidden representation.
        dropout: Dropout probability (input features and before each op on hidden input).
        pre: Linear pre-processing layers before the DAG.
        post: Linear post-processing layers after the output layer.
        gat_heads: Attention heads of ``gat`` (concatenated; ``hidden`` must divide by it).
    """

    hidden: int = field(default=64, metadata={"help": "hidden width"})
    dropout: float = field(default=0.5, metadata={"help": "dropout probability"})
    pre: int = field(default=0, metadata={"help": "linear layers before the cell"})
    post: int = field(default=1, metadata={"help": "linear layers after the output layer"})
    gat_heads: int = field(default=2, metadata={"help": "attention heads of gat"})

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


def _children(links: Links) -> list[list[int]]:
    """children[v] = computing nodes (1-based) whose input is v (0 = raw input)."""
    kids: list[list[int]] = [[] for _ in range(len(links) + 1)]
    for i, parent in enumerate(links):
        kids[parent].append(i + 1)
    return kids


class _Tree:
    """What an architecture computes, with skips removed.

    ``real[v]`` are the non-skip nodes fed by node ``v`` (through any chain of skips),
    ``outputs[v]`` how many times ``v``'s value reaches the output, ``form[v]`` the canonical
    text of the subtree at ``v``: ``op`` then one ``*`` per output, then the sorted forms of
    its successors in parentheses, e.g. ``in(gcn*,sage(fc**))``.
    """

    def __init__(self, links: Links, ops: Ops) -> None:
        kids = _children(links)
        self.real: dict[int, list[int]] = {}
        self.outputs: dict[int, int] = {}
        self.form: dict[int, str] = {}

        def expand(node: int) -> tuple[list[int], int]:
            real: list[int] = []
            outputs = 0
            for child in kids[node]:
                if ops[child - 1] != "skip":
                    real.append(child)
                elif kids[child]:  # a skip with successors only forwards its input
                    more, out = expand(child)
                    real += more
                    outputs += out
                else:  # a skip leaf forwards its input to the output
                    outputs += 1
            return real, outputs

        def visit(node: int) -> str:
            real, outputs = expand(node)
            if node == 0:
                label, outputs = "in", 0  # the raw input never reaches the output
            else:
                label = ops[node - 1]
                outputs += not kids[node]
            inner = sorted(visit(child) for child in real)
            self.real[node] = sorted(real, key=lambda c: self.form[c])
            self.outputs[node] = outputs
            self.form[node] = label + "*" * outputs + (f"({','.join(inner)})" if inner else "")
            return self.form[node]

        visit(0)


@lru_cache(maxsize=200_000)
def _canonical_form(links: Links, ops: Ops) -> str:
    return _Tree(links, ops).form[0]


@lru_cache(maxsize=20_000)
def _neighbors(
    name: str, space_ops: Ops, n_nodes: int, links: Links, ops: Ops
) -> tuple[Architecture, ...]:
    """One architecture per canonical class one gene edit away (see :func:`_edits`)."""
    seen = {_canonical_form(links, ops)}
    out: list[Architecture] = []
    for new_links, new_ops in _edits(space_ops, n_nodes, links, ops):
        if all(op == "skip" for op in new_ops):
            continue
        key = _canonical_form(new_links, new_ops)
        if key not in seen:
            seen.add(key)
            # genes already frozen (tuples of ints and strings) and in create's order
            out.append(Architecture(name, (("links", new_links), ("ops", new_ops))))
    return tuple(out)


def _edits(space_ops: Ops, n_nodes: int, links: Links, ops: Ops) -> Iterator[tuple[Links, Ops]]:
    """Every single-gene change (valid or not), in a fixed order."""
    for i in range(1, n_nodes):
        for value in range(i + 1):
            if value != links[i]:
                yield (*links[:i], value, *links[i + 1 :]), ops
    for i in range(n_nodes):
        for op in space_ops:
            if op != ops[i]:
                yield links, (*ops[:i], op, *ops[i + 1 :])


class GnnSpace(SearchSpace):
    """The NAS-Bench-Graph macro space (genes ``links`` and ``ops``); its models are PyG node
    classifiers (:mod:`nasforge.spaces.gnn_model`) with :class:`GnnHyper` settings.

    Args:
        name: Registry name (``"gnn"`` or ``"gnn-proteins"``).
        ops: Candidate operations; ``"skip"`` must be among them.
        n_nodes: Number of computing nodes (4 in NAS-Bench-Graph).
    """

    modality = "graph"
    predicts_latency = True

    def __init__(
        self, *, name: str = "gnn", ops: Sequence[str] = GNN_OPS, n_nodes: int = 4
    ) -> None:
        if "skip" not in ops or len(set(ops)) != len(ops) or len(ops) < 2:
            raise InvalidArchitectureError(
                f"ops must be distinct, at least 2, and include 'skip'; got {list(ops)}"
            )
        if not 1 <= n_nodes <= 8:
            raise InvalidArchitectureError(f"n_nodes must be in 1..8, got {n_nodes}")
        self.name = name
        self.ops = tuple(ops)
        self.n_nodes = n_nodes
        self._op_index = {op: i for i, op in enumerate(self.ops)}
        self._size: int | None = None

    # -- membership -------------------------------------------------------------------------
    def make(self, links: Sequence[int], ops: Sequence[str]) -> Architecture:
        """Build and validate an architecture from its two genes."""
        arch = Architecture.create(self.name, links=list(links), ops=list(ops))
        self.validate(arch)
        return arch

    def validate(self, arch: Architecture) -> None:
        self.check_member(arch)
        if set(arch) != {"links", "ops"}:
            raise InvalidArchitectureError(
                f"a {self.name} architecture has genes 'links' and 'ops'; got {sorted(arch)}"
            )
        links, ops = arch["links"], arch["ops"]
        n = self.n_nodes
        if not isinstance(links, tuple) or len(links) != n:
            raise InvalidArchitectureError(f"'links' must list {n} input indices, got {links!r}")
        if not isinstance(ops, tuple) or len(ops) != n:
            raise InvalidArchitectureError(f"'ops' must list {n} operations, got {ops!r}")
        for i, link in enumerate(links):
            if type(link) is not int or not 0 <= link <= i:
                raise InvalidArchitectureError(
                    f"links[{i}] must be an input index in 0..{i} (0 = raw input, j = node j), "
                    f"got {link!r}"
                )
        for i, op in enumerate(ops):
            if op not in self._op_index:
                raise InvalidArchitectureError(
                    f"ops[{i}] = {op!r} is not an operation of {self.name}; valid: "
                    f"{', '.join(self.ops)}"
                )
        if all(op == "skip" for op in ops):
            raise InvalidArchitectureError("the all-skip architecture is not valid")

    @staticmethod
    def genes(arch: Architecture) -> tuple[Links, Ops]:
        """``(links, ops)`` of a gnn architecture."""
        return arch["links"], arch["ops"]  # type: ignore[return-value]

    # -- equivalence --------------------------------------------------------------------------
    def canonical_key(self, arch: Architecture) -> str:
        links, ops = self.genes(arch)
        return _canonical_form(links, ops)

    def canonicalize(self, arch: Architecture) -> Architecture:
        """The representative of ``arch``'s class that :meth:`enumerate` yields.

        Non-skip nodes in depth-first order of their sorted canonical forms, each followed by
        its skip leaves, then skip leaves on the raw input (no-ops) as padding.
        """
        links, ops = self.genes(arch)
        tree = _Tree(links, ops)
        new_links: list[int] = []
        new_ops: list[str] = []

        def emit(node: int, parent_pos: int) -> None:
            new_links.append(parent_pos)
            new_ops.append(ops[node - 1])
            pos = len(new_ops)
            for child in tree.real[node]:
                emit(child, pos)
            # a node reaching the output once without successors is a leaf; otherwise each of
            # its outputs is a skip leaf (a node with a skip child is no leaf itself)
            outputs = tree.outputs[node]
            extra = 0 if outputs == 1 and not tree.real[node] else outputs
            new_links.extend([pos] * extra)
            new_ops.extend(["skip"] * extra)

        for child in tree.real[0]:
            emit(child, 0)
        pad = self.n_nodes - len(new_ops)
        new_links.extend([0] * pad)
        new_ops.extend(["skip"] * pad)
        return Architecture.create(self.name, links=new_links, ops=new_ops)

    # -- the model side ---------------------------------------------------------------------
    def default_settings(self) -> GnnHyper:
        return GnnHyper()

    def build(self, arch: Architecture, task: Any, settings: Any = None) -> nn.Module:
        """The PyG model of ``arch`` for ``task`` (a node-classification task).

        Args:
            arch: An architecture of this space.
            task: Supplies ``num_features`` and ``num_classes``.
            settings: A :class:`GnnHyper` (defaults if ``None``).

        Returns:
            A ``torch.nn.Module`` mapping ``(x, edge_index)`` to (N, C) logits.
        """
        from nasforge.spaces.gnn_model import GnnModel

        self.validate(arch)
        links, ops = self.genes(self.canonicalize(arch))
        hyper = self._hyper(settings)
        return GnnModel(links, ops, task.num_features, task.num_classes, hyper)

    def width_options(self, arch: Architecture, settings: Any) -> dict[str, tuple[int, ...]]:
        """``hidden``: eighths of the hidden width, in multiples of ``gat_heads``."""
        hyper = self._hyper(settings)
        return {"hidden": width_grid(hyper.hidden, step=hyper.gat_heads)}

    def with_widths(
        self, arch: Architecture, settings: Any, widths: Mapping[str, int]
    ) -> tuple[Architecture, GnnHyper]:
        hyper = self._hyper(settings)
        chosen = checked_widths(self, self.width_options(arch, hyper), widths)
        return arch, replace(hyper, hidden=chosen["hidden"])

    def width_sites(
        self, net: nn.Module, arch: Architecture, settings: Any
    ) -> dict[str, list[WidthSite]]:
        """The hidden channels: after each pre-processing layer, after each op's input
        normalisation, in the output layer's input (one block per leaf) and after every
        hidden post-processing layer."""
        from torch import nn as tnn

        from nasforge.spaces.gnn_model import GnnModel

        if not isinstance(net, GnnModel):
            raise ConfigError(f"space {self.name!r} finds widths in its own models only")
        sites = [WidthSite(layer) for layer in net.pre]
        sites += [WidthSite(norm) for norm in net.norms if isinstance(norm, tnn.BatchNorm1d)]
        sites.append(WidthSite(net.out, blocks=len(net.leaves), inputs=True))
        if len(net.post):
            sites.append(WidthSite(net.out))
            sites += [WidthSite(layer) for layer in list(net.post)[:-1]]
        return {"hidden": sites}

    def supernet(self, task: Any, settings: Any = None, *, partial: int = 1) -> GnnSupernet:
        """Every op and every input of every node at once
        (:class:`~nasforge.spaces.gnn_supernet.GnnSupernet`), for a node-classification task."""
        from nasforge.spaces.gnn_supernet import GnnSupernet

        self.check_task(task)
        return GnnSupernet(self, task, self._hyper(settings), partial)

    def _hyper(self, settings: Any) -> GnnHyper:
        if settings is None:
            return GnnHyper()
        if not isinstance(settings, GnnHyper):
            raise ConfigError(
                f"space {self.name!r} takes a GnnHyper as hyper, got {type(settings).__name__}"
            )
        return settings

    # -- latency: pre, <op>/raw or <op>/hidden per non-skip node, out/<leaves> -----------------
    def latency_names(self, settings: Any) -> set[str]:
        hyper = self._hyper(settings)
        kinds = ("raw", "hidden") if hyper.pre == 0 else ("hidden",)
        ops = {f"{op}/{kind}" for op in self.ops if op != "skip" for kind in kinds}
        return {"pre", *ops, *(f"out/{k}" for k in range(1, self.n_nodes + 1))}

    def latency_shape(self, task: Any, settings: Any) -> dict[str, Any]:
        if getattr(task, "modality", None) != "graph":
            raise ConfigError(
                f"a latency table of space {self.name!r} needs a node-classification task "
                f"(the whole graph is timed), got {type(task).__name__}"
            )
        hyper = self._hyper(settings)
        _, edge_index = task.example_inputs()
        return {
            "ops": list(self.ops),
            "n_nodes": self.n_nodes,
            "nodes": task.num_nodes,
            "edges": int(edge_index.shape[1]),
            "features": task.num_features,
            "classes": task.num_classes,
            "hyper": {k: v for k, v in hyper.to_dict().items() if k != "dropout"},
            # raw-feature ops take sparse features and project first (gnn_sparse): a table
            # timed before that would overstate them
            "raw_ops": "sparse",
        }

    def latency_entries(self, task: Any, settings: Any) -> Iterator[LatencyEntry]:
        from nasforge.spaces.gnn_model import latency_entries

        return latency_entries(self.ops, self.n_nodes, task, self._hyper(settings))

    def latency_terms(self, arch: Architecture, settings: Any) -> Counter[str]:
        """The entries the :class:`~nasforge.spaces.gnn_model.GnnModel` of ``arch``'s
        canonical form runs (mirrors its constructor): ``skip`` nodes cost nothing."""
        self.validate(arch)
        hyper = self._hyper(settings)
        links, ops = self.genes(self.canonicalize(arch))
        terms: Counter[str] = Counter({"pre": 1})
        is_input, is_raw = [True], [hyper.pre == 0]
        for link, op in zip(links, ops, strict=True):
            if op == "skip":
                is_input.append(is_input[link])
                is_raw.append(is_raw[link])
                continue
            terms[f"{op}/{'raw' if is_raw[link] else 'hidden'}"] += 1
            is_input.append(False)
            is_raw.append(False)
        used = set(links)
        leaves = sum(1 for v in range(1, len(ops) + 1) if v not in used and not is_input[v])
        terms[f"out/{leaves}"] += 1
        return terms

    def graph(self, arch: Architecture) -> ArchGraph:
        """The macro DAG of ``arch`` as stored (not canonicalised), for diagrams.

        Nodes: ``in`` (the raw input), ``n1`` .. ``n<n_nodes>`` labelled with their op, and
        ``out``. Each computing node has an edge from its input; every leaf (a node without
        successors) has an edge to ``out``, where the leaves are concatenated. A ``skip`` leaf
        whose value is the raw input has no edge to ``out`` (the model leaves it out, as the
        benchmark does); it, and any node whose successors all end in such leaves, is of kind
        ``"unused"``.

        Raises:
            InvalidArchitectureError: If ``arch`` is not an architecture of this space.
        """
        self.validate(arch)
        links, ops = self.genes(arch)
        kids = _children(links)
        is_input = [True]  # is_input[v]: node v's value is the raw input (v = 0 or skip chains)
        for link, op in zip(links, ops, strict=True):
            is_input.append(op == "skip" and is_input[link])
        feeds = [False] * (len(links) + 1)  # feeds[v]: node v's value reaches the output
        for v in range(len(links), 0, -1):  # successors have larger indices
            feeds[v] = any(feeds[c] for c in kids[v]) if kids[v] else not is_input[v]
        nodes = [GraphNode("in", "input", "input")]
        edges: list[GraphEdge] = []
        for i, (link, op) in enumerate(zip(links, ops, strict=True), start=1):
            nodes.append(GraphNode(f"n{i}", f"{i}: {op}", "op" if feeds[i] else "unused"))
            edges.append(GraphEdge("in" if link == 0 else f"n{link}", f"n{i}"))
        nodes.append(GraphNode("out", "output\nconcat", "output"))
        for i in range(1, len(links) + 1):
            if not kids[i] and not is_input[i]:
                edges.append(GraphEdge(f"n{i}", "out"))
        return ArchGraph(tuple(nodes), tuple(edges))

    # -- moves --------------------------------------------------------------------------------
    def _random_genes(self, rng: np.random.Generator) -> tuple[Links, Ops]:
        while True:
            links = tuple(int(rng.integers(0, i + 1)) for i in range(self.n_nodes))
            ops = tuple(self.ops[int(k)] for k in rng.integers(0, len(self.ops), self.n_nodes))
            if any(op != "skip" for op in ops):
                return links, ops

    def sample(self, rng: np.random.Generator) -> Architecture:
        links, ops = self._random_genes(rng)
        return Architecture.create(self.name, links=links, ops=ops)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        candidates = self.neighbors(arch)
        if not candidates:  # only possible in degenerate spaces
            return self.sample(rng)
        return candidates[int(rng.integers(len(candidates)))]

    def neighbors(self, arch: Architecture) -> list[Architecture]:
        links, ops = self.genes(arch)
        # remembered per genotype: evolution mutates each member of its population many times
        return list(_neighbors(self.name, self.ops, self.n_nodes, links, ops))

    # -- enumeration and encodings -----------------------------------------------------------
    def _all_genes(self) -> Iterator[tuple[Links, Ops]]:
        for links in itertools.product(*(range(i + 1) for i in range(self.n_nodes))):
            for ops in itertools.product(self.ops, repeat=self.n_nodes):
                if any(op != "skip" for op in ops):
                    yield links, ops

    def enumerate(self) -> Iterator[Architecture]:
        seen: set[str] = set()
        for links, ops in self._all_genes():
            key = _canonical_form(links, ops)
            if key not in seen:
                seen.add(key)
                yield self.canonicalize(Architecture.create(self.name, links=links, ops=ops))

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = len({_canonical_form(lk, op) for lk, op in self._all_genes()})
        return self._size

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot input choice per node and one-hot op per node, of the canonical form."""
        links, ops = self.genes(self.canonicalize(arch))
        n, k = self.n_nodes, len(self.ops)
        vec = np.zeros(n * n + n * k, dtype=np.float32)
        for i, (link, op) in enumerate(zip(links, ops, strict=True)):
            vec[i * n + link] = 1.0
            vec[n * n + i * k + self._op_index[op]] = 1.0
        return vec

    def choices(self) -> Mapping[str, Sequence[Any]]:
        params: dict[str, Sequence[Any]] = {}
        for i in range(self.n_nodes):
            params[f"input_{i}"] = list(range(i + 1))
            params[f"op_{i}"] = list(self.ops)
        return params

    def to_choices(self, arch: Architecture) -> dict[str, Any]:
        self.validate(arch)
        links, ops = self.genes(arch)
        params: dict[str, Any] = {}
        for i in range(self.n_nodes):
            params[f"input_{i}"] = links[i]
            params[f"op_{i}"] = ops[i]
        return params

    def from_choices(self, params: Mapping[str, Any]) -> Architecture:
        try:
            links = [int(params[f"input_{i}"]) for i in range(self.n_nodes)]
            ops = [str(params[f"op_{i}"]) for i in range(self.n_nodes)]
        except KeyError as exc:
            raise InvalidArchitectureError(
                f"missing parameter {exc.args[0]!r}; expected {sorted(self.choices())}"
            ) from None
        return self.make(links, ops)

"""The ``mlp`` search space: multilayer perceptrons for tabular data.

An architecture is a stack of ``depth`` hidden layers, each ``Linear -> norm -> activation ->
dropout``, then a linear head. Genes:

* ``depth``: the number of hidden layers, one of the space's ``depths``;
* ``widths``: one width per *possible* layer, ``max(depths)`` entries; only the first
  ``depth`` are used. The unused ones are kept so that a depth mutation can grow the network
  back with the widths it had, instead of inventing them;
* ``activation``, ``dropout``, ``norm``: shared by every hidden layer.

Equivalence (the canonical key) is "builds the same network": the widths of unused layers are
ignored, every other gene counts (``dropout=0.0`` is a value of its own, not "no gene").
The key reads like the network, e.g. ``mlp[64-32 relu drop0.1 batch]``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.spaces.base import (
    ArchGraph,
    GraphEdge,
    GraphNode,
    SearchSpace,
    TaskShape,
    WidthSite,
    checked_widths,
)

if TYPE_CHECKING:
    from torch import nn

    from nasforge.spaces.mlp_supernet import MlpSupernet

__all__ = ["ACTIVATIONS", "NORMS", "MlpGenes", "MlpSpace"]

ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "mish",
    "tanh",
    "sigmoid",
)
"""Every activation an ``mlp`` space may offer (``build`` has a layer for each)."""

NORMS: tuple[str, ...] = ("none", "batch", "layer")
"""Normalisations after each hidden linear layer: none, ``BatchNorm1d`` or ``LayerNorm``."""

GENES: tuple[str, ...] = ("activation", "depth", "dropout", "norm", "widths")


@dataclass(frozen=True, slots=True)
class MlpGenes:
    """The genes of one ``mlp`` architecture, typed.

    Attributes:
        depth: Number of hidden layers.
        widths: A width for every possible layer; only ``widths[:depth]`` are used.
        activation: Activation after every hidden layer.
        dropout: Dropout probability after every hidden layer.
        norm: ``none``, ``batch`` or ``layer``.
    """

    depth: int
    widths: tuple[int, ...]
    activation: str
    dropout: float
    norm: str

    @property
    def hidden(self) -> tuple[int, ...]:
        """The widths of the layers the network has."""
        return self.widths[: self.depth]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _listing(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def _options(option: str, values: object) -> tuple[Any, ...]:
    """``values`` as a non-empty tuple of distinct items (``option`` names it in errors)."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigError(
            f"{option} must be a sequence of choices, got {values!r}; e.g. {option}=(...,)"
        )
    items = tuple(values)
    if not items:
        raise ConfigError(f"{option} must offer at least one choice, got ()")
    try:
        distinct = len(set(items))
    except TypeError:
        raise ConfigError(f"{option} must hold plain values, got {items}") from None
    if distinct != len(items):
        raise ConfigError(f"{option} must be distinct, got {items}")
    return items


class MlpSpace(SearchSpace):
    """Multilayer perceptrons: depth, per-layer width, activation, dropout and normalisation.

    Sampling is uniform per gene (depth first, then every width), not uniform over distinct
    networks: deep networks are far more numerous, and a uniform draw over networks would
    almost never pick a shallow one.

    Args:
        name: Registry name stored in each architecture.
        depths: Allowed numbers of hidden layers (positive integers).
        widths: Allowed widths of a hidden layer (positive integers).
        activations: Allowed activations, from :data:`ACTIVATIONS`.
        dropouts: Allowed dropout probabilities, in ``[0, 1)``.
        norms: Allowed normalisations, from :data:`NORMS`.

    Raises:
        ConfigError: If an option is empty, repeats a value, holds a value outside its rule,
            or the space has a single architecture (nothing to search).
    """

    modality = "tabular"

    def __init__(
        self,
        *,
        name: str = "mlp",
        depths: Sequence[int] = (1, 2, 3, 4),
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        activations: Sequence[str] = ("relu", "tanh", "elu", "gelu", "silu"),
        dropouts: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5),
        norms: Sequence[str] = ("none", "batch", "layer"),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name must be a non-empty string, got {name!r}")
        depths_ = _options("depths", depths)
        widths_ = _options("widths", widths)
        for option, numbers_ in (("depths", depths_), ("widths", widths_)):
            bad = [v for v in numbers_ if not _is_int(v) or v < 1]
            if bad:
                raise ConfigError(
                    f"{option} must be positive integers, got {_listing(bad)} in {numbers_}"
                )
        dropouts_ = _options("dropouts", dropouts)
        bad_p = [p for p in dropouts_ if not _is_real(p) or not 0 <= p < 1]
        if bad_p:
            raise ConfigError(
                f"dropouts must be probabilities in [0, 1), got {_listing(bad_p)} in {dropouts_}"
            )
        activations_ = _options("activations", activations)
        norms_ = _options("norms", norms)
        for option, names, known in (
            ("activations", activations_, ACTIVATIONS),
            ("norms", norms_, NORMS),
        ):
            for value in names:
                if value not in known:
                    raise ConfigError(
                        f"{option}: {value!r} is not a known {option[:-1]}; accepted: "
                        f"{_listing(known)}"
                    )

        self.name = name
        self.depths: tuple[int, ...] = tuple(sorted(depths_))
        self.widths: tuple[int, ...] = tuple(sorted(widths_))
        self.activations: tuple[str, ...] = activations_
        self.dropouts: tuple[float, ...] = tuple(sorted(float(p) for p in dropouts_))
        self.norms: tuple[str, ...] = norms_
        self.max_depth = self.depths[-1]
        if self.size == 1:
            raise ConfigError(
                "the space holds a single architecture, so there is nothing to search; "
                "give at least one option two or more values"
            )

    def __repr__(self) -> str:
        return (
            f"MlpSpace(name={self.name!r}, depths={self.depths}, widths={self.widths}, "
            f"activations={self.activations}, dropouts={self.dropouts}, norms={self.norms})"
        )

    # -- membership -------------------------------------------------------------------------
    def make(
        self, *, hidden: Sequence[int], activation: str, dropout: float, norm: str
    ) -> Architecture:
        """Build and validate the canonical architecture of one network.

        Args:
            hidden: The widths of the hidden layers (``depth = len(hidden)``); the unused
                layers get the smallest width of the space.
            activation: Activation after every hidden layer.
            dropout: Dropout probability after every hidden layer.
            norm: Normalisation after every hidden linear layer.
        """
        filler = (self.widths[0],) * (self.max_depth - len(hidden))
        arch = Architecture.create(
            self.name,
            depth=len(hidden),
            widths=(*hidden, *filler),
            activation=activation,
            dropout=dropout,
            norm=norm,
        )
        self.validate(arch)
        return arch

    def validate(self, arch: Architecture) -> None:
        self.check_member(arch)
        if sorted(arch) != list(GENES):
            raise InvalidArchitectureError(
                f"a {self.name} architecture has genes {_listing(GENES)}; got {sorted(arch)}"
            )
        depth = arch["depth"]
        if not _is_int(depth) or depth not in self.depths:
            raise InvalidArchitectureError(
                f"gene 'depth' = {depth!r} is not a depth of {self.name}; accepted: "
                f"{_listing(self.depths)}"
            )
        widths = arch["widths"]
        if not isinstance(widths, tuple) or len(widths) != self.max_depth:
            raise InvalidArchitectureError(
                f"gene 'widths' must list {self.max_depth} layer widths (one per possible "
                f"layer; those beyond 'depth' are unused), got {widths!r}"
            )
        for i, width in enumerate(widths):
            if not _is_int(width) or width not in self.widths:
                raise InvalidArchitectureError(
                    f"gene 'widths[{i}]' = {width!r} is not a width of {self.name}; accepted: "
                    f"{_listing(self.widths)}"
                )
        for gene, accepted in (("activation", self.activations), ("norm", self.norms)):
            value = arch[gene]
            if not isinstance(value, str) or value not in accepted:
                raise InvalidArchitectureError(
                    f"gene {gene!r} = {value!r} is not among the {gene}s of {self.name}; "
                    f"accepted: {_listing(accepted)}"
                )
        dropout = arch["dropout"]
        if not _is_real(dropout) or dropout not in self.dropouts:
            raise InvalidArchitectureError(
                f"gene 'dropout' = {dropout!r} is not a dropout of {self.name}; accepted: "
                f"{_listing(self.dropouts)}"
            )

    @staticmethod
    def genes(arch: Architecture) -> MlpGenes:
        """The typed genes of an ``mlp`` architecture (not validated)."""
        return MlpGenes(
            depth=arch["depth"],  # type: ignore[arg-type]
            widths=arch["widths"],  # type: ignore[arg-type]
            activation=arch["activation"],  # type: ignore[arg-type]
            dropout=float(arch["dropout"]),  # type: ignore[arg-type]
            norm=arch["norm"],  # type: ignore[arg-type]
        )

    def _arch(self, g: MlpGenes) -> Architecture:
        return Architecture.create(
            self.name,
            depth=g.depth,
            widths=g.widths,
            activation=g.activation,
            dropout=g.dropout,
            norm=g.norm,
        )

    # -- equivalence --------------------------------------------------------------------------
    def canonical_key(self, arch: Architecture) -> str:
        """``mlp[<hidden widths joined by -> <activation> drop<p> <norm>]``.

        Unused widths are left out; the prefix is ``mlp`` whatever the space's registry name,
        so the key names the network alone.
        """
        g = self.genes(arch)
        hidden = "-".join(str(w) for w in g.hidden)
        return f"mlp[{hidden} {g.activation} drop{g.dropout!r} {g.norm}]"

    def canonicalize(self, arch: Architecture) -> Architecture:
        """The representative :meth:`enumerate` yields: unused widths set to the smallest."""
        g = self.genes(arch)
        filler = (self.widths[0],) * (self.max_depth - g.depth)
        return self._arch(replace(g, widths=(*g.hidden, *filler)))

    def build(self, arch: Architecture, task: TaskShape, settings: Any = None) -> nn.Module:
        """The PyTorch model of ``arch`` for ``task``.

        Args:
            arch: An architecture of this space.
            task: Supplies ``input_shape`` (``(F,)``) and ``num_outputs``.
            settings: Ignored: the genes fix every setting of the model. Accepted so that
                evaluators can pass their model settings to any space.

        Returns:
            A ``torch.nn.Module`` mapping (B, F) float inputs to (B, num_outputs) outputs
            (logits for classification, predictions for regression).

        Raises:
            InvalidArchitectureError: If ``arch`` is not in this space.
            ConfigError: If the task's inputs are not flat feature vectors.
        """
        from nasforge.spaces.mlp_model import MlpModel

        self.validate(arch)
        shape = tuple(task.input_shape)
        if len(shape) != 1 or not _is_int(shape[0]) or shape[0] < 1:
            raise ConfigError(
                f"space {self.name!r} builds models for tabular data: the task's input_shape "
                f"must be (features,), got {shape}"
            )
        outputs = task.num_outputs
        if not _is_int(outputs) or outputs < 1:
            raise ConfigError(f"the task's num_outputs must be a positive integer, got {outputs}")
        g = self.genes(arch)
        return MlpModel(
            shape[0],
            g.hidden,
            outputs,
            activation=g.activation,
            dropout=g.dropout,
            norm=g.norm,
        )

    def width_options(self, arch: Architecture, settings: Any) -> dict[str, tuple[int, ...]]:
        """``width_<i>`` for each hidden layer: the space's widths up to the layer's own."""
        g = self.genes(arch)
        return {
            f"width_{i}": tuple(w for w in self.widths if w <= width)
            for i, width in enumerate(g.hidden)
        }

    def with_widths(
        self, arch: Architecture, settings: Any, widths: Mapping[str, int]
    ) -> tuple[Architecture, Any]:
        """The architecture with the hidden layers' widths replaced (the settings are
        unchanged: the genes fix the model)."""
        g = self.genes(arch)
        chosen = checked_widths(self, self.width_options(arch, settings), widths)
        hidden = tuple(chosen[f"width_{i}"] for i in range(g.depth))
        return self._arch(replace(g, widths=(*hidden, *g.widths[g.depth :]))), settings

    def width_sites(
        self, net: nn.Module, arch: Architecture, settings: Any
    ) -> dict[str, list[WidthSite]]:
        """Each hidden layer's features, after its activation."""
        from nasforge.spaces.mlp_model import ACTIVATION_LAYERS, MlpModel

        if not isinstance(net, MlpModel):
            raise ConfigError(f"space {self.name!r} finds widths in its own models only")
        kinds = tuple(ACTIVATION_LAYERS.values())
        acts = [m for m in net.body if isinstance(m, kinds)]  # type: ignore[arg-type]
        return {f"width_{i}": [WidthSite(act)] for i, act in enumerate(acts)}

    def supernet(self, task: Any, settings: Any = None, *, partial: int = 1) -> MlpSupernet:
        """Every network of the space as slices of the largest one
        (:class:`~nasforge.spaces.mlp_supernet.MlpSupernet`), for a task with flat inputs.

        Raises:
            ConfigError: For ``partial`` other than 1 (its layers change width, so there are
                no channels to pass by), or a task whose inputs are not flat.
        """
        from nasforge.spaces.mlp_supernet import MlpSupernet

        if partial != 1:
            raise ConfigError(
                f"space {self.name!r} has no partial-channel supernet (partial must be 1, got "
                f"{partial!r}): its layers change width; pc-darts searches gnn and nb201"
            )
        self.check_task(task)
        shape = tuple(task.input_shape)
        if len(shape) != 1:
            raise ConfigError(
                f"space {self.name!r} builds models for tabular data: the task's input_shape "
                f"must be (features,), got {shape}"
            )
        return MlpSupernet(self, task, settings)

    def graph(self, arch: Architecture) -> ArchGraph:
        """The network of ``arch`` as a chain: ``input``, one node per hidden layer (its width,
        normalisation, activation and dropout), then the linear ``head``.

        Raises:
            InvalidArchitectureError: If ``arch`` is not an architecture of this space.
        """
        self.validate(arch)
        g = self.genes(arch)
        nodes = [GraphNode("input", "input", "input")]
        for i, width in enumerate(g.hidden, start=1):
            lines = [f"linear {width}"]
            if g.norm != "none":
                lines.append(f"{g.norm}norm")
            lines.append(g.activation)
            if g.dropout > 0:
                lines.append(f"dropout {g.dropout:g}")
            nodes.append(GraphNode(f"layer{i}", "\n".join(lines)))
        nodes.append(GraphNode("head", "linear head\noutput", "output"))
        edges = tuple(GraphEdge(a.id, b.id) for a, b in itertools.pairwise(nodes))
        return ArchGraph(tuple(nodes), edges)

    # -- moves --------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        def pick(values: Sequence[Any]) -> Any:
            return values[int(rng.integers(len(values)))]

        return self._arch(
            MlpGenes(
                depth=pick(self.depths),
                widths=tuple(pick(self.widths) for _ in range(self.max_depth)),
                activation=pick(self.activations),
                dropout=pick(self.dropouts),
                norm=pick(self.norms),
            )
        )

    def _edits(self, g: MlpGenes) -> Iterator[MlpGenes]:
        """Every single-gene change that alters the network, in a fixed order."""
        for depth in self.depths:
            if depth != g.depth:
                yield replace(g, depth=depth)
        for i in range(g.depth):
            for width in self.widths:
                if width != g.widths[i]:
                    yield replace(g, widths=(*g.widths[:i], width, *g.widths[i + 1 :]))
        for activation in self.activations:
            if activation != g.activation:
                yield replace(g, activation=activation)
        for dropout in self.dropouts:
            if dropout != g.dropout:
                yield replace(g, dropout=dropout)
        for norm in self.norms:
            if norm != g.norm:
                yield replace(g, norm=norm)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Pick a gene uniformly among those with alternatives, then a different value.

        A width mutation picks one of the ``depth`` used layers. A depth mutation keeps the
        stored widths, so a network that grows back regains the widths it had.
        """
        g = self.genes(arch)
        options: dict[str, Sequence[Any]] = {
            "depth": self.depths,
            "widths": self.widths,
            "activation": self.activations,
            "dropout": self.dropouts,
            "norm": self.norms,
        }
        movable = [gene for gene, values in options.items() if len(values) > 1]
        gene = movable[int(rng.integers(len(movable)))]
        layer = int(rng.integers(g.depth))
        current = g.widths[layer] if gene == "widths" else getattr(g, gene)
        others = [v for v in options[gene] if v != current]
        value = others[int(rng.integers(len(others)))]
        if gene == "widths":
            value = (*g.widths[:layer], value, *g.widths[layer + 1 :])
        return self._arch(replace(g, **{gene: value}))

    def neighbors(self, arch: Architecture) -> list[Architecture]:
        g = self.genes(arch)
        seen = {self.canonical_key(arch)}
        out: list[Architecture] = []
        for edit in self._edits(g):
            candidate = self._arch(edit)
            key = self.canonical_key(candidate)
            if key not in seen:
                seen.add(key)
                out.append(candidate)
        return out

    # -- enumeration and encodings -----------------------------------------------------------
    @property
    def size(self) -> int:
        """``sum(len(widths) ** d for d in depths) * activations * dropouts * norms``."""
        per_layers = sum(int(len(self.widths) ** depth) for depth in self.depths)
        return per_layers * len(self.activations) * len(self.dropouts) * len(self.norms)

    def enumerate(self) -> Iterator[Architecture]:
        """Canonical representatives (see :meth:`canonicalize`), shallow networks first."""
        for depth in self.depths:
            filler = (self.widths[0],) * (self.max_depth - depth)
            for hidden in itertools.product(self.widths, repeat=depth):
                for activation, dropout, norm in itertools.product(
                    self.activations, self.dropouts, self.norms
                ):
                    yield self._arch(MlpGenes(depth, (*hidden, *filler), activation, dropout, norm))

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot depth; ``log2(w + 1) / log2(max_w + 1)`` per used layer (0 if unused);
        one-hot activation; the dropout probability; one-hot norm."""
        g = self.genes(arch)
        n_depth, n_act = len(self.depths), len(self.activations)
        vec = np.zeros(n_depth + self.max_depth + n_act + 1 + len(self.norms), dtype=np.float32)
        vec[self.depths.index(g.depth)] = 1.0
        scale = math.log2(self.widths[-1] + 1)
        for i, width in enumerate(g.hidden):
            vec[n_depth + i] = math.log2(width + 1) / scale
        at = n_depth + self.max_depth
        vec[at + self.activations.index(g.activation)] = 1.0
        vec[at + n_act] = g.dropout
        vec[at + n_act + 1 + self.norms.index(g.norm)] = 1.0
        return vec

    def choices(self) -> Mapping[str, Sequence[Any]]:
        """``depth``, ``width_0`` .. ``width_{max_depth-1}``, ``activation``, ``dropout``,
        ``norm``. Widths of layers beyond ``depth`` are ignored."""
        params: dict[str, Sequence[Any]] = {"depth": list(self.depths)}
        for i in range(self.max_depth):
            params[f"width_{i}"] = list(self.widths)
        params["activation"] = list(self.activations)
        params["dropout"] = list(self.dropouts)
        params["norm"] = list(self.norms)
        return params

    def to_choices(self, arch: Architecture) -> dict[str, Any]:
        self.validate(arch)
        g = self.genes(arch)
        params: dict[str, Any] = {"depth": g.depth}
        for i, width in enumerate(g.widths):
            params[f"width_{i}"] = width
        params.update(activation=g.activation, dropout=g.dropout, norm=g.norm)
        return params

    def from_choices(self, params: Mapping[str, Any]) -> Architecture:
        """Build the architecture ``params`` describe; extra keys are ignored.

        Raises:
            InvalidArchitectureError: If a parameter is missing or has a value outside the space.
        """
        expected = list(self.choices())
        missing = [key for key in expected if key not in params]
        if missing:
            raise InvalidArchitectureError(
                f"missing parameter {missing[0]!r}; expected {_listing(expected)}"
            )

        def integer(value: Any) -> Any:  # numpy / Optuna integers become int
            is_integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            return int(value) if is_integral else value

        dropout = params["dropout"]
        if isinstance(dropout, numbers.Real) and not isinstance(dropout, bool):
            dropout = float(dropout)
        arch = Architecture.create(
            self.name,
            depth=integer(params["depth"]),
            widths=[integer(params[f"width_{i}"]) for i in range(self.max_depth)],
            activation=params["activation"],
            dropout=dropout,
            norm=params["norm"],
        )
        self.validate(arch)
        return arch

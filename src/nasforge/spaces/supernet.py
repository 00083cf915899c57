"""The one-shot side of a space: a supernet that holds every architecture's weights at once.

A :class:`Supernet` is a ``torch.nn.Module`` over the same inputs as the space's models. Its
architecture is a list of :class:`Decision`\\ s (an op per node or edge, an input per node);
what it computes is set by a *route*: for every decision, a weight per option and the
options to compute (:class:`Route`). Weight-sharing methods route it differently:

* DARTS and its kin: softmax weights, every option computed (a continuous mixture);
* GDAS, SPOS, ENAS, ProxylessNAS: one option per decision, weighted 1 (its gradient reaches
  the architecture parameters through a straight-through weight);
* :meth:`Supernet.fix`: one architecture, and then the supernet computes exactly what
  ``space.build(arch)`` computes with the weights :meth:`Supernet.subnet_state` gives it.

Spaces opt in by overriding :meth:`nasforge.spaces.base.SearchSpace.supernet`.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError

__all__ = [
    "Decision",
    "PartialOp",
    "Route",
    "Supernet",
    "best_assignments",
    "check_partial",
    "scaled",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """One architecture decision of a supernet.

    Attributes:
        name: Its name, e.g. ``op_2`` or ``edge_3_1`` (as the space's ``choices`` names it).
        options: What may be chosen (op names, or input node indices).
        free: Indices of the parameter-free options (identity or zero ops), whose share in a
            derived architecture shows DARTS's collapse; empty for input decisions.
    """

    name: str
    options: tuple[Any, ...]
    free: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Route:
    """What one decision computes: ``sum(weights[i] * option_i(x) for i in active)``.

    Attributes:
        weights: (K,) weights over the decision's K options (softmax probabilities, or a
            one-hot that carries a straight-through gradient).
        active: The options computed, in increasing order; the others contribute nothing.
    """

    weights: Tensor
    active: tuple[int, ...]

    @property
    def single(self) -> bool:
        return len(self.active) == 1


class Supernet(nn.Module, ABC):
    """A network whose weights are shared by every architecture of its space.

    Subclasses set ``decisions`` and implement ``forward`` (reading :attr:`routes`),
    :meth:`indices` and :meth:`arch_of`, and :meth:`weights_for`.

    Attributes:
        space: The search space.
        task: The task whose data it takes.
        settings: The space's model settings it was built with.
        decisions: Its decisions, in a fixed order.
    """

    decisions: tuple[Decision, ...]
    summed: tuple[tuple[int, ...], ...] = ()
    """Groups of decisions whose outputs one node sums (a cell's edges into a node): the
    groups PC-DARTS's edge normalisation weighs. Empty where each node reads one input."""

    def __init__(self, space: Any, task: Any, settings: Any, partial: int = 1) -> None:
        super().__init__()
        self.space, self.task, self.settings = space, task, settings
        self.partial = partial
        self.routes: list[Route] = []

    # -- routing ---------------------------------------------------------------------------
    def route(self, routes: Sequence[Route]) -> None:
        """Set what the next forward passes compute (one :class:`Route` per decision)."""
        if len(routes) != len(self.decisions):
            raise ConfigError(
                f"a route has one entry per decision ({len(self.decisions)}), got {len(routes)}"
            )
        for decision, route in zip(self.decisions, routes, strict=True):
            k = len(decision.options)
            if route.weights.shape != (k,) or not route.active:
                raise ConfigError(f"route of {decision.name} needs ({k},) weights and an option")
        self.routes = list(routes)

    def route_indices(
        self, indices: Sequence[int], weights: Sequence[Tensor] | None = None
    ) -> None:
        """Route one option per decision; ``weights`` (each (K,)) carry gradients when given,
        else every chosen option is weighted exactly 1."""
        routes = []
        for d, (decision, index) in enumerate(zip(self.decisions, indices, strict=True)):
            if weights is None:
                w = torch.zeros(len(decision.options))
                w[index] = 1.0
            else:
                w = weights[d]
            routes.append(Route(w, (int(index),)))
        self.route(routes)

    def fix(self, arch: Architecture) -> None:
        """Compute ``arch`` (its canonical form, as ``space.build`` does) from now on."""
        self.route_indices(self.indices(arch))

    def subnet(self, arch: Architecture) -> nn.Module:
        """``space.build(arch)`` holding this supernet's weights for ``arch``.

        Raises:
            ConfigError: For a partial-channel supernet, whose layers are narrower than the
                model's.
        """
        model: nn.Module = self.space.build(arch, self.task, self.settings)
        model.load_state_dict(self.subnet_state(arch, model))
        return model

    def subnet_state(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, Tensor]:
        """The state dict of ``space.build(arch)``'s model (or of ``model``, that model),
        taken from this supernet.

        Raises:
            ConfigError: For a partial-channel supernet (see :meth:`subnet`).
        """
        if self.partial > 1:
            raise ConfigError(
                f"a partial-channel supernet (partial={self.partial}) searches only: its layers "
                "are narrower than the models', so no model takes its weights"
            )
        if model is None:
            model = self.space.build(arch, self.task, self.settings)
        return self.weights_for(arch, model)

    # -- for subclasses ----------------------------------------------------------------------
    @abstractmethod
    def indices(self, arch: Architecture) -> list[int]:
        """The option chosen at each decision by ``arch``'s canonical form."""

    @abstractmethod
    def arch_of(self, indices: Sequence[int]) -> Architecture | None:
        """The architecture of one option per decision, or ``None`` if it is not valid."""

    @abstractmethod
    def weights_for(self, arch: Architecture, model: nn.Module) -> dict[str, Tensor]:
        """The state dict of ``model`` (``space.build(arch)``'s), taken from this supernet."""

    def expected_terms(self, probs: Sequence[Tensor]) -> dict[str, Tensor] | None:
        """How many times, in expectation, a model drawn from ``probs`` (one distribution
        over each decision's options, the decisions drawn independently) runs each entry of
        the space's latency table (``SearchSpace.latency_terms``), differentiable in
        ``probs``; ``None`` (the default) where the supernet cannot say."""
        return None

    # -- shared helpers ----------------------------------------------------------------------
    def free_fraction(self, arch: Architecture) -> float:
        """The share of op decisions of ``arch``'s canonical form that chose a
        parameter-free op (identity or zero): DARTS's collapse shows as this nearing 1."""
        indices = self.indices(arch)
        ops = [(d, i) for d, i in zip(self.decisions, indices, strict=True) if d.free]
        if not ops:
            return 0.0
        return sum(1 for d, i in ops if i in d.free) / len(ops)

    def copy_matching(
        self, state: Mapping[str, Tensor], rename: Mapping[str, str]
    ) -> dict[str, Tensor]:
        """A subnet state dict: each subnet key ``k`` of ``state`` taken from supernet key
        ``rename[k]`` (or ``k`` itself), cloned."""
        own = self.state_dict()
        out: dict[str, Tensor] = {}
        for key in state:
            source = rename.get(key, key)
            if source not in own:
                raise KeyError(f"supernet has no weight {source!r} for subnet weight {key!r}")
            out[key] = own[source].detach().clone()
        return out


class PartialOp(nn.Module):
    """PC-DARTS's partial channel connection (Xu et al., "PC-DARTS: Partial Channel
    Connections for Memory-Efficient Architecture Search", ICLR 2020) around one op: the op,
    built ``1/k`` as wide, computes channel group ``group`` of ``k`` (dimension 1), and the
    other channels pass by unchanged. Successive nodes or cells take successive groups, so
    that every channel is computed somewhere (the paper shuffles channels for this).

    Under a mixture whose weights sum to 1 the bypassed channels come out with weight 1 as in
    the paper, less the weight of a zero op (``none``), which passes nothing.
    """

    def __init__(self, op: nn.Module, k: int, group: int) -> None:
        super().__init__()
        self.op, self.k, self.group = op, k, group % k

    def forward(self, x: Tensor, *args: Any) -> Tensor:
        width = x.shape[1] // self.k
        lo, hi = self.group * width, (self.group + 1) * width
        y: Tensor = self.op(x[:, lo:hi], *args)
        return torch.cat([x[:, :lo], y, x[:, hi:]], dim=1)


def scaled(value: Tensor, weight: Tensor) -> Tensor:
    """``value * weight`` (a route's weight of one option), leaving ``value`` untouched when
    the weight is a constant 1: the product would be exact, but a fixed supernet then does
    no needless work."""
    if not weight.requires_grad and float(weight) == 1.0:
        return value
    return value * weight


def check_partial(partial: int, widths: Sequence[int], what: str) -> int:
    """``partial`` checked: an int >= 1 that divides every one of ``widths``.

    Raises:
        ConfigError: Saying what is accepted.
    """
    if isinstance(partial, bool) or not isinstance(partial, int) or partial < 1:
        raise ConfigError(f"partial must be an integer >= 1 (1: every channel), got {partial!r}")
    bad = [w for w in widths if w % partial]
    if bad:
        raise ConfigError(
            f"partial={partial} must divide the {what} ({', '.join(map(str, sorted(set(widths))))})"
        )
    return partial


def best_assignments(
    probs: Sequence[Sequence[float]], valid: Any, *, limit: int = 20_000
) -> Iterator[list[int]]:
    """Assignments of one option per decision in decreasing product of ``probs``.

    Decisions are independent categorical distributions; this is the k-best enumeration
    (a best-first search over "advance one decision to its next option" moves, as in
    Lawler's scheme for separable scores). ``valid(indices)`` filters; at most ``limit``
    assignments are examined.
    """
    order = [sorted(range(len(p)), key=p.__getitem__, reverse=True) for p in probs]
    logs = [[math.log(max(p[i], 1e-300)) for i in o] for p, o in zip(probs, order, strict=True)]
    start = tuple(0 for _ in probs)
    heap: list[tuple[float, tuple[int, ...]]] = [(-sum(lg[0] for lg in logs), start)]
    seen = {start}
    examined = 0
    while heap and examined < limit:
        neg, ranks = heapq.heappop(heap)
        examined += 1
        indices = [order[d][r] for d, r in enumerate(ranks)]
        if valid(indices):
            yield indices
        for d, r in enumerate(ranks):
            if r + 1 < len(order[d]):
                nxt = (*ranks[:d], r + 1, *ranks[d + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (neg - logs[d][r + 1] + logs[d][r], nxt))

"""Structured pruning by width search, after TAS (Dong & Yang, "Network Pruning via
Transformable Architecture Search", NeurIPS 2019).

Each width the space names (:meth:`~nasforge.spaces.base.SearchSpace.width_options`: an MLP's
hidden layers, a GNN's hidden width, a NAS-Bench-201 network's channels) gets a learnable
distribution over its options. On the trained network (its weights fixed), a width choice is
relaxed as TAS does: a Gumbel-softmax sample ``p`` over the options scales channel ``c`` of
the width's sites (:meth:`~nasforge.spaces.base.SearchSpace.width_sites`) by the sum of
``p_j`` over the options ``j`` wider than ``c``, so the task's loss sees every width at once.
The loss adds TAS's FLOPs term: ``log(F / budget)`` above the budget, ``-log`` below it, zero
within a tolerance, where ``F`` is the FLOPs of the network at the expected widths, from a
polynomial of the widths (constant, linear, square and pairwise terms) fitted to networks
built and counted with PyTorch's FLOP counter. The widths chosen are the most likely ones
(by the learned distributions) among those whose FLOPs fill the budget without passing it;
the network built with them is counted again. That narrower dense network is then trained
from scratch with knowledge distillation from the original (done by the caller).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace, WidthSite
from nasforge.tasks.base import Task
from nasforge.train.cost import count_flops

__all__ = ["WidthChoice", "WidthSearch", "search_widths"]


@dataclass(frozen=True, slots=True)
class WidthSearch:
    """Settings of the width search.

    Attributes:
        steps: Gradient steps on the width distributions.
        lr: Adam's learning rate for them.
        tau: Gumbel-softmax temperature at the first and the last step (annealed
            geometrically, as TAS anneals from 10 to 0.1).
        cost_weight: Weight of the FLOPs term.
        tolerance: Relative band around the budget where the FLOPs term is zero.
        batch_size: Examples per step (graphs: the whole graph).
    """

    steps: int = 150
    lr: float = 0.05
    tau: tuple[float, float] = (10.0, 0.1)
    cost_weight: float = 2.0
    tolerance: float = 0.05
    batch_size: int = 256


@dataclass(frozen=True, slots=True)
class WidthChoice:
    """The widths chosen for a FLOPs budget.

    Attributes:
        widths: Name to width.
        flops: FLOPs of the network built with them (one forward pass on the task's
            example inputs).
        dense_flops: FLOPs of the original network.
        probabilities: Each width's learned distribution over its options.
        met: Whether ``flops`` is within the budget (False when even the narrowest widths
            exceed it).
    """

    widths: dict[str, int]
    flops: float
    dense_flops: float
    probabilities: dict[str, list[float]]
    met: bool


def _flops(space: SearchSpace, arch: Architecture, settings: Any, task: Task, seed: int) -> float:
    torch.manual_seed(seed)
    net = space.build(arch, task, settings)
    net.eval()
    inputs = task.example_inputs()
    return float(count_flops(lambda: net(*inputs)))


class _CostModel:
    """FLOPs as a polynomial of the widths, fitted to measured networks: a constant, each
    width, its square and each product of two widths (exact for stacks of linear layers and
    convolutions, whose FLOPs are sums of such terms)."""

    def __init__(self, options: Sequence[Sequence[int]], measured: dict[tuple[int, ...], float]):
        self.options = [torch.tensor(o, dtype=torch.float64) for o in options]
        self.measured = measured
        rows, values = [], []
        for index, flops in measured.items():
            widths = [float(self.options[k][i]) for k, i in enumerate(index)]
            rows.append(self._terms(widths))
            values.append(flops)
        design = torch.tensor(rows, dtype=torch.float64)
        target = torch.tensor(values, dtype=torch.float64)
        self.coef = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]

    @staticmethod
    def _terms(w: Sequence[float]) -> list[float]:
        pairs = [w[a] * w[b] for a in range(len(w)) for b in range(a + 1, len(w))]
        return [1.0, *w, *(x * x for x in w), *pairs]

    @classmethod
    def measure(
        cls,
        space: SearchSpace,
        arch: Architecture,
        settings: Any,
        task: Task,
        seed: int,
        options: Mapping[str, Sequence[int]],
    ) -> _CostModel:
        """Measure enough networks to fit the polynomial: each width through all its options
        (the others at their own), and every combination of the narrowest and the own width
        of each (of every pair, when there are many widths)."""
        names = list(options)
        full = [len(options[n]) - 1 for n in names]
        wanted: set[tuple[int, ...]] = {tuple(full)}
        for k in range(len(names)):
            for i in range(len(options[names[k]])):
                wanted.add(tuple(i if j == k else full[j] for j in range(len(names))))
        if len(names) <= 6:
            wanted.update(itertools.product(*[(0, f) for f in full]))
        else:
            for a, b in itertools.combinations(range(len(names)), 2):
                point = list(full)
                point[a] = point[b] = 0
                wanted.add(tuple(point))
        measured = {}
        for index in sorted(wanted):
            picked = {n: options[n][i] for n, i in zip(names, index, strict=True)}
            narrow, narrow_settings = space.with_widths(arch, settings, picked)
            measured[index] = _flops(space, narrow, narrow_settings, task, seed)
        return cls([options[n] for n in names], measured)

    def expected(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The FLOPs of the network whose widths are their expectations under ``probs``
        (differentiable in them)."""
        mean = [p.double() @ o for p, o in zip(probs, self.options, strict=True)]
        square = [m * m for m in mean]
        pairs = [mean[a] * mean[b] for a in range(len(mean)) for b in range(a + 1, len(mean))]
        terms = torch.stack([torch.ones((), dtype=torch.float64), *mean, *square, *pairs])
        out: torch.Tensor = (terms @ self.coef).float()
        return out

    def predict(self, index: Sequence[int]) -> float:
        widths = [float(self.options[k][i]) for k, i in enumerate(index)]
        return float(torch.tensor(self._terms(widths), dtype=torch.float64) @ self.coef)


_ENUMERATE = 20_000
"""Width combinations searched exhaustively for the most likely one within the budget."""

_FILL = 0.75
"""The share of the FLOPs budget a chosen combination uses at least, when one can."""


def _most_likely_within(cost: _CostModel, logp: Sequence[torch.Tensor], budget: float) -> list[int]:
    """The most likely combination of options (highest total log-probability) among those
    that use the budget: predicted FLOPs within it and at least :data:`_FILL` of it (or, if
    none does, as much of it as any combination within it). The narrowest one if none is
    within it. Exhaustive up to :data:`_ENUMERATE` combinations; beyond, greedy steps down
    from the most likely ones."""
    sizes = [len(p) for p in logp]
    if math.prod(sizes) <= _ENUMERATE:
        within = []
        for combo in itertools.product(*[range(n) for n in sizes]):
            flops = cost.predict(combo)
            if flops <= budget * (1 + 1e-9):
                within.append((flops, list(combo)))
        if not within:
            return [0] * len(sizes)
        floor = min(_FILL * budget, max(f for f, _ in within) * (1 - 1e-9))
        return max(
            (c for f, c in within if f >= floor),
            key=lambda c: sum(float(p[i]) for p, i in zip(logp, c, strict=True)),
        )
    index = [int(torch.argmax(p)) for p in logp]
    while cost.predict(index) > budget * (1 + 1e-9) and _narrow_once(index, logp):
        pass
    return index


def _narrow_once(index: list[int], logp: Sequence[torch.Tensor]) -> bool:
    """Step one width of ``index`` down an option: the step that loses the least
    log-probability. False (nothing changed) when every width is at its narrowest."""
    lower = [k for k, i in enumerate(index) if i > 0]
    if not lower:
        return False
    k = max(lower, key=lambda k: float(logp[k][index[k] - 1] - logp[k][index[k]]))
    index[k] -= 1
    return True


def _site_mask(site: WidthSite, options: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """The channel scale of one site: ``sum_j probs_j * [c < scale * options_j]``."""
    channels = int(options[-1]) * site.scale
    keep = torch.arange(channels)[None, :] < (options[:, None] * site.scale)  # (J, C)
    mask = probs @ keep.to(probs.dtype)  # (C,)
    return mask.repeat(site.blocks) if site.blocks > 1 else mask


def _shaped(mask: torch.Tensor, like: torch.Tensor, axis: int) -> torch.Tensor:
    shape = [1] * like.dim()
    shape[axis] = mask.numel()
    return mask.view(shape).to(like.dtype)


@contextmanager
def _scaled(
    sites: Mapping[str, list[WidthSite]], masks: dict[str, dict[int, torch.Tensor]]
) -> Iterator[None]:
    """Within the block, every site's channels are scaled by ``masks[name][id(site)]``."""
    handles = []
    for name, group in sites.items():
        for site in group:

            def scale(
                tensor: torch.Tensor, site: WidthSite = site, name: str = name
            ) -> torch.Tensor:
                return tensor * _shaped(masks[name][id(site)], tensor, site.axis)

            if site.inputs:
                handles.append(
                    site.module.register_forward_pre_hook(
                        lambda _m, args, scale=scale: (scale(args[0]), *args[1:])
                    )
                )
            else:
                handles.append(
                    site.module.register_forward_hook(lambda _m, _a, out, scale=scale: scale(out))
                )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def search_widths(
    space: SearchSpace,
    arch: Architecture,
    settings: Any,
    task: Task,
    trained: nn.Module,
    budget: float,
    *,
    seed: int,
    config: WidthSearch | None = None,
) -> WidthChoice:
    """Learn width distributions on ``trained`` and choose widths within ``budget`` (see the
    module docstring).

    Args:
        space, arch, settings: What built ``trained``.
        task: The data (its training examples drive the search).
        trained: The trained network (not changed).
        budget: The share of the original FLOPs the narrower network may have, in (0, 1).
        seed: Seeds the Gumbel noise and the batches.
        config: Search settings.

    Raises:
        ConfigError: If the space has no widths to shrink.
    """
    config = config or WidthSearch()
    options = space.width_options(arch, settings)
    if not options:
        raise ConfigError(f"space {space.name!r} has no widths that structured pruning shrinks")
    names = list(options)
    cost = _CostModel.measure(space, arch, settings, task, seed, options)
    dense = cost.measured[tuple(len(options[n]) - 1 for n in names)]
    net = copy.deepcopy(trained).eval()
    for param in net.parameters():
        param.requires_grad_(False)
    sites = space.width_sites(net, arch, settings)
    widths = {n: torch.tensor(v, dtype=torch.float32) for n, v in options.items()}
    alpha = {n: torch.zeros(len(v), requires_grad=True) for n, v in options.items()}
    opt = torch.optim.Adam(list(alpha.values()), lr=config.lr)
    gen = torch.Generator().manual_seed(seed)
    first, last = config.tau
    for step in range(config.steps):
        tau = first * (last / first) ** (step / max(1, config.steps - 1))
        masks: dict[str, dict[int, torch.Tensor]] = {}
        for name, logits in alpha.items():
            uniform = torch.rand(logits.shape, generator=gen).clamp_(1e-9, 1 - 1e-9)
            probs = torch.softmax((logits - torch.log(-torch.log(uniform))) / tau, dim=0)
            masks[name] = {id(s): _site_mask(s, widths[name], probs) for s in sites[name]}
        batch = task.proxy_batch(
            seed=seed * 100_003 + step, batch_size=config.batch_size, max_rows=config.batch_size
        )
        with _scaled(sites, masks):
            loss = batch.loss(net(*batch.inputs))
        expected = cost.expected([torch.softmax(alpha[n], 0) for n in names])
        ratio = expected / (budget * dense)
        if float(ratio.detach()) > 1 + config.tolerance:
            loss = loss + config.cost_weight * torch.log(ratio)
        elif float(ratio.detach()) < 1 - config.tolerance:
            loss = loss - config.cost_weight * torch.log(ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    logp = [torch.log_softmax(alpha[n].detach(), 0) for n in names]
    index = _most_likely_within(cost, logp, budget * dense)

    def built(chosen: Sequence[int]) -> float:
        if tuple(chosen) not in cost.measured:
            picked = {n: options[n][i] for n, i in zip(names, chosen, strict=True)}
            narrow, narrow_settings = space.with_widths(arch, settings, picked)
            cost.measured[tuple(chosen)] = _flops(space, narrow, narrow_settings, task, seed)
        return cost.measured[tuple(chosen)]

    flops = built(index)
    while flops > budget * dense * (1 + 1e-9) and _narrow_once(index, logp):  # the model erred
        flops = built(index)
    return WidthChoice(
        widths={n: options[n][i] for n, i in zip(names, index, strict=True)},
        flops=flops,
        dense_flops=dense,
        probabilities={
            n: [round(float(v), 4) for v in p.exp()] for n, p in zip(names, logp, strict=True)
        },
        met=flops <= budget * dense * (1 + 1e-9),
    )

"""Unstructured pruning masks over a network's weight matrices and kernels.

What is pruned: every parameter called ``weight`` with two or more dimensions (the matrices of
linear and graph-convolution layers, the kernels of convolutions). Biases, normalisation
scales and attention vectors stay dense, as in the lottery-ticket papers.

A mask is applied as a parametrization (``torch.nn.utils.parametrize``): the module's
``weight`` is ``original * mask`` whenever it is read, so any trainer (a task's own loop, with
its optimiser and early stopping) trains the sparse network unchanged, and pruned weights get
no gradient. :func:`plain_state` turns a masked network's state into that of a plain one: the
pruned entries are stored zeros.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from nasforge.errors import ConfigError

__all__ = [
    "Masks",
    "apply_masks",
    "density",
    "magnitude_masks",
    "plain_state",
    "prunable",
    "random_masks",
]

Masks = dict[str, torch.Tensor]
"""Parameter name (as in ``named_parameters()``) to a 0/1 tensor of its shape (float)."""


def prunable(net: nn.Module) -> dict[str, torch.Tensor]:
    """The weights that pruning may zero, by parameter name (see the module docstring).

    Raises:
        ConfigError: If the network has no such weight.
    """
    found: dict[str, torch.Tensor] = {
        name: param
        for name, param in net.named_parameters()
        if name.rsplit(".", 1)[-1] == "weight" and param.dim() >= 2
    }
    if not found:
        raise ConfigError("the network has no weight matrix or kernel to prune")
    return found


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"a sparsity must be in [0, 1), got {sparsity}")


def _kept(total: int, sparsity: float) -> int:
    """How many of ``total`` weights stay at ``sparsity`` (at least one)."""
    return max(1, total - round(sparsity * total))


def magnitude_masks(weights: Mapping[str, torch.Tensor], sparsity: float) -> Masks:
    """Global magnitude pruning: keep the largest ``|w|`` over all ``weights`` together, so
    that ``sparsity`` of them are zero (Han et al., "Learning both Weights and Connections for
    Efficient Neural Networks", 2015; the masks of Frankle & Carbin, "The Lottery Ticket
    Hypothesis", 2019).

    Weights already zero (pruned before) rank lowest, so a higher sparsity of the same
    weights prunes a superset. Ties at the threshold are broken by position, so exactly the
    asked-for count is kept.
    """
    _check_sparsity(sparsity)
    names = list(weights)
    flat = torch.cat([weights[n].detach().abs().flatten().float().cpu() for n in names])
    keep = _kept(flat.numel(), sparsity)
    order = torch.argsort(flat, descending=True, stable=True)
    chosen = torch.zeros(flat.numel(), dtype=torch.float32)
    chosen[order[:keep]] = 1.0
    out: Masks = {}
    start = 0
    for name in names:
        size = weights[name].numel()
        out[name] = chosen[start : start + size].reshape(weights[name].shape).clone()
        start += size
    return out


def random_masks(reference: Mapping[str, torch.Tensor], *, seed: int) -> Masks:
    """Masks with the same number of kept weights in every layer as ``reference``, at random
    positions (the baseline of "Random Search as a Baseline for Sparse Neural Network
    Architecture Search", 2024, and of the lottery-ticket papers' random pruning)."""
    gen = torch.Generator().manual_seed(seed)
    out: Masks = {}
    for name, mask in reference.items():
        keep = int(mask.sum().item())
        chosen = torch.zeros(mask.numel(), dtype=torch.float32)
        chosen[torch.randperm(mask.numel(), generator=gen)[:keep]] = 1.0
        out[name] = chosen.reshape(mask.shape)
    return out


def density(masks: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """``(kept, total)`` weights over all masks."""
    kept = sum(int(m.sum().item()) for m in masks.values())
    return kept, sum(m.numel() for m in masks.values())


class _Mask(nn.Module):
    """The parametrization ``weight = original * mask``."""

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * self.mask


def _owner(net: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (net.get_submodule(path) if path else net), leaf


def apply_masks(net: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Make each masked weight of ``net`` read as ``original * mask`` (see the module
    docstring); the pruned entries of the originals are zeroed too.

    Raises:
        ConfigError: If a mask names no prunable weight of ``net`` or has another shape.
    """
    weights = prunable(net)
    for name, mask in masks.items():
        if name not in weights:
            raise ConfigError(f"a mask names {name!r}, which is not a prunable weight here")
        if tuple(mask.shape) != tuple(weights[name].shape):
            raise ConfigError(
                f"the mask of {name!r} has shape {tuple(mask.shape)}, the weight "
                f"{tuple(weights[name].shape)}"
            )
    for name, mask in masks.items():
        module, leaf = _owner(net, name)
        param = getattr(module, leaf)
        local = mask.to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            param.mul_(local)
        parametrize.register_parametrization(module, leaf, _Mask(local), unsafe=True)


def plain_state(
    state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The state dict of the masked network ``state`` as a network without masks holds it:
    each masked weight as ``original * mask`` (its pruned entries stored zeros) under its own
    name, and no parametrization entries.

    (Some layers, such as PyG's ``Linear``, also write their weight under its own name in a
    parametrized state; that copy is replaced by the product.)
    """
    out: dict[str, torch.Tensor] = {}
    marker = ".parametrizations."
    for key, value in state.items():
        if marker not in key and not key.startswith("parametrizations."):
            out[key] = value
    for name, mask in masks.items():
        path, _, leaf = name.rpartition(".")
        prefix = f"{path}." if path else ""
        original = state[f"{prefix}parametrizations.{leaf}.original"]
        out[name] = original * mask.to(device=original.device, dtype=original.dtype)
    return out

"""The supernet of the ``mlp`` space: one network per maximum size, every smaller one a slice.

Decisions, as the space's ``choices`` name them: ``depth``, ``width_0`` ..
``width_{max_depth-1}``, ``activation``, ``dropout`` and ``norm``. Weights are shared by
slicing (as in Once-for-All): layer ``i`` holds one ``Linear`` of the largest width, and a
layer of width ``w`` uses its first ``w`` units (and the first inputs the layer before gives
it); its BatchNorm and LayerNorm are sliced the same way, and the head reads the first
columns of the last layer's width.

With one option routed per decision the forward pass is
:class:`~nasforge.spaces.mlp_model.MlpModel`'s, op for op. With mixtures (DARTS), each layer
computes its largest width and multiplies it by the mixture of the widths' masks (FBNetV2's
channel masking); activations, normalisations and dropouts are weighted sums of their
options; and the head reads the mixture of the depths' last hidden layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nasforge.architecture import Architecture
from nasforge.spaces.mlp_model import MlpModel, make_activation
from nasforge.spaces.supernet import Decision, Route, Supernet, scaled
from nasforge.train import fastops

__all__ = ["MlpSupernet"]


class MlpSupernet(Supernet):
    """The weight-sharing supernet of an :class:`~nasforge.spaces.mlp.MlpSpace`.

    Args:
        space: The ``mlp`` space.
        task: A task with flat inputs (``input_shape`` ``(F,)``, ``num_outputs``).
        settings: Ignored, as by the space's ``build``.
    """

    def __init__(self, space: Any, task: Any, settings: Any = None) -> None:
        super().__init__(space, task, settings)
        self.decisions = tuple(
            Decision(name, tuple(opts)) for name, opts in space.choices().items()
        )
        self._at = {d.name: i for i, d in enumerate(self.decisions)}
        width = max(space.widths)
        depth = space.max_depth
        features = task.input_shape[0]
        self.width = width
        self.linears = nn.ModuleList(
            nn.Linear(features if i == 0 else width, width) for i in range(depth)
        )
        norms = set(space.norms)
        self.batch_norms = nn.ModuleList(
            nn.BatchNorm1d(width) for _ in range(depth if "batch" in norms else 0)
        )
        self.layer_norms = nn.ModuleList(
            nn.LayerNorm(width) for _ in range(depth if "layer" in norms else 0)
        )
        self.activations = nn.ModuleDict({a: make_activation(a) for a in space.activations})
        self.head = nn.Linear(width, task.num_outputs)
        # width -> (width_max,) mask of the units a layer of that width uses (mixtures)
        units = torch.arange(width)
        self._masks = {w: (units < w).float() for w in space.widths}

    # -- decisions <-> architectures ----------------------------------------------------------
    def indices(self, arch: Architecture) -> list[int]:
        chosen = self.space.to_choices(self.space.canonicalize(arch))
        return [d.options.index(chosen[d.name]) for d in self.decisions]

    def arch_of(self, indices: Sequence[int]) -> Architecture | None:
        params = {d.name: d.options[int(i)] for d, i in zip(self.decisions, indices, strict=True)}
        arch: Architecture = self.space.canonicalize(self.space.from_choices(params))
        return arch

    def _route(self, name: str) -> Route:
        return self.routes[self._at[name]]

    def _one(self, name: str) -> tuple[Any, Tensor]:
        """The option routed alone at decision ``name``, and its weight."""
        route = self._route(name)
        k = route.active[0]
        return self.decisions[self._at[name]].options[k], route.weights[k]

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if not self.routes:
            raise RuntimeError("route the supernet (route, route_indices or fix) before use")
        if all(r.single for r in self.routes):
            return self._forward_path(x)
        return self._forward_mixture(x)

    def _norm(self, norm: str, i: int, z: Tensor, width: int) -> Tensor:
        if norm == "batch":
            return _sliced_batch_norm(self.batch_norms[i], z, width)
        if norm == "layer":
            ln = self.layer_norms[i]
            assert isinstance(ln, nn.LayerNorm)
            return F.layer_norm(z, (width,), ln.weight[:width], ln.bias[:width], ln.eps)
        return z

    def _forward_path(self, x: Tensor) -> Tensor:
        depth, w_depth = self._one("depth")
        activation, w_act = self._one("activation")
        dropout, w_drop = self._one("dropout")
        norm, w_norm = self._one("norm")
        h, fan_in = x, x.shape[1]
        for i in range(depth):
            width, w_width = self._one(f"width_{i}")
            layer = self.linears[i]
            assert isinstance(layer, nn.Linear)
            z = F.linear(h, layer.weight[:width, :fan_in], layer.bias[:width])
            z = scaled(self._norm(norm, i, z, width), w_norm)
            z = scaled(self.activations[activation](z), w_act)
            if dropout > 0:
                z = fastops.dropout(z, dropout, self.training)
            h, fan_in = scaled(scaled(z, w_drop), w_width), width
        h = scaled(h, w_depth)
        out: Tensor = F.linear(h, self.head.weight[:, :fan_in], self.head.bias)
        return out

    def _forward_mixture(self, x: Tensor) -> Tensor:
        depth_route = self._route("depth")
        depths = self.decisions[self._at["depth"]].options
        deepest = max(depths[k] for k in depth_route.active)
        h, mixed = x, None
        for i in range(deepest):
            layer = self.linears[i]
            assert isinstance(layer, nn.Linear)
            z = F.linear(h, layer.weight[:, : h.shape[1]], layer.bias)
            z = self._mix("norm", lambda n, z=z, i=i: self._norm(n, i, z, self.width))
            z = self._mix("activation", lambda a, z=z: self.activations[a](z))
            z = self._mix("dropout", lambda p, z=z: fastops.dropout(z, p, self.training))
            route = self._route(f"width_{i}")
            widths = self.decisions[self._at[f"width_{i}"]].options
            mask = sum(
                (route.weights[k] * self._masks[widths[k]] for k in route.active),
                z.new_zeros(self.width),
            )
            h = z * mask
            for k in depth_route.active:
                if depths[k] == i + 1:
                    part = depth_route.weights[k] * h
                    mixed = part if mixed is None else mixed + part
        assert mixed is not None
        out: Tensor = self.head(mixed)
        return out

    def _mix(self, name: str, compute: Any) -> Tensor:
        """``sum(weight_k * compute(option_k))`` over decision ``name``'s routed options."""
        route = self._route(name)
        options = self.decisions[self._at[name]].options
        total: Tensor | None = None
        for k in route.active:
            part = route.weights[k] * compute(options[k])
            total = part if total is None else total + part
        assert total is not None
        return total

    # -- weights for space.build ---------------------------------------------------------------
    def weights_for(self, arch: Architecture, model: nn.Module) -> dict[str, Tensor]:
        assert isinstance(model, MlpModel)
        g = self.space.genes(self.space.canonicalize(arch))
        state: dict[str, Tensor] = {}
        layer, fan_in = -1, int(self.task.input_shape[0])
        for name, module in model.body.named_children():
            prefix = f"body.{name}"
            if isinstance(module, nn.Linear):
                layer += 1
                width = g.hidden[layer]
                source = self.linears[layer]
                state[f"{prefix}.weight"] = source.weight[:width, :fan_in]  # type: ignore[index]
                state[f"{prefix}.bias"] = source.bias[:width]  # type: ignore[index]
                fan_in = width
            elif isinstance(module, nn.BatchNorm1d):
                bn = self.batch_norms[layer]
                for key in ("weight", "bias", "running_mean", "running_var"):
                    state[f"{prefix}.{key}"] = getattr(bn, key)[:fan_in]
                state[f"{prefix}.num_batches_tracked"] = bn.num_batches_tracked  # type: ignore[assignment]
            elif isinstance(module, nn.LayerNorm):
                ln = self.layer_norms[layer]
                state[f"{prefix}.weight"] = ln.weight[:fan_in]  # type: ignore[index]
                state[f"{prefix}.bias"] = ln.bias[:fan_in]  # type: ignore[index]
        state["head.weight"] = self.head.weight[:, :fan_in]
        state["head.bias"] = self.head.bias
        return {k: v.detach().clone() for k, v in state.items()}


def _sliced_batch_norm(bn: nn.Module, z: Tensor, width: int) -> Tensor:
    """``bn`` (a ``BatchNorm1d`` of the largest width) on ``z``'s ``width`` features, with
    its statistics and affine weights sliced; the running statistics update in place, by
    the module's own rule (exponential, or a cumulative average when momentum is None)."""
    assert isinstance(bn, nn.BatchNorm1d)
    factor = 0.0
    tracked = bn.num_batches_tracked
    if bn.training and tracked is not None:
        tracked.add_(1)
        factor = 1.0 / float(tracked) if bn.momentum is None else float(bn.momentum)
    return F.batch_norm(
        z,
        bn.running_mean[:width],  # type: ignore[index]
        bn.running_var[:width],  # type: ignore[index]
        bn.weight[:width],
        bn.bias[:width],
        bn.training,
        factor,
        bn.eps,
    )

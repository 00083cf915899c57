"""PyTorch models for architectures of the ``mlp`` space.

Each hidden layer is ``Linear -> norm -> activation -> Dropout``; a linear head follows.
``norm="none"`` and ``dropout=0`` add no module, so a printed model shows only what it
computes. In eval mode ``BatchNorm1d`` uses its running statistics, so batches of one example
work; in training mode PyTorch rejects them (a trainer should drop a last batch of one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from nasforge.errors import ConfigError
from nasforge.train import fastops

__all__ = ["ACTIVATION_LAYERS", "MlpModel", "make_activation", "make_norm"]

ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
"""The layer of every name in :data:`nasforge.spaces.mlp.ACTIVATIONS`."""


def make_activation(name: str) -> nn.Module:
    """The activation layer called ``name``."""
    if name not in ACTIVATION_LAYERS:
        raise ConfigError(
            f"no layer for activation {name!r}; accepted: {', '.join(ACTIVATION_LAYERS)}"
        )
    return ACTIVATION_LAYERS[name]()


def make_norm(name: str, width: int) -> nn.Module | None:
    """The normalisation layer called ``name`` for ``width`` features (``None`` for none)."""
    if name == "none":
        return None
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    raise ConfigError(f"no layer for norm {name!r}; accepted: none, batch, layer")


class MlpModel(nn.Module):
    """A multilayer perceptron (see the module docstring).

    Args:
        in_features: Input features F.
        hidden: Width of each hidden layer (at least one layer).
        out_features: Outputs: classes (logits) or regression targets.
        activation: Activation after every hidden layer.
        dropout: Dropout probability after every hidden layer.
        norm: ``none``, ``batch`` or ``layer``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str,
        dropout: float,
        norm: str,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ConfigError("an MLP needs at least one hidden layer")
        layers: list[nn.Module] = []
        dim = in_features
        for width in hidden:
            layers.append(nn.Linear(dim, width))
            norm_layer = make_norm(norm, width)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(fastops.Dropout(dropout))
            dim = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dim, out_features)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x)  # (B, hidden[-1])
        out: Tensor = self.head(h)
        return out  # (B, out_features)

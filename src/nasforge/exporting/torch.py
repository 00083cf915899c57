"""An exported model on disk: weights as safetensors, metadata as JSON, and :func:`load`.

A folder written by :func:`save` holds ``model.safetensors`` (the state dict of an
:class:`ExportedModel`: the network's weights plus the input standardisation and, for
regression, the target scaling, as buffers) and ``nasforge.json`` (what :func:`load` needs to
rebuild the network, and what a person needs to use it). Nothing is pickled: :func:`load`
rebuilds the module from the space, the architecture and the hyperparameters in the JSON and
reads the tensors with ``safetensors``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "WEIGHTS_FILE",
    "ExportedModel",
    "ModelShape",
    "load",
    "read_metadata",
    "save",
]

FORMAT = "nasforge-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "nasforge.json"


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The task facts a space's ``build`` reads, without the data.

    Attributes:
        input_shape: One example: ``(C, H, W)`` images, ``(F,)`` tables or node features.
        num_outputs: Classes (logits) or regression targets.
    """

    input_shape: tuple[int, ...]
    num_outputs: int

    @property
    def num_features(self) -> int:
        """Node features (graphs) or table columns."""
        return self.input_shape[-1]

    @property
    def num_classes(self) -> int:
        return self.num_outputs


class ExportedModel(nn.Module):
    """A trained network with the preprocessing it was trained with baked in.

    Inputs are raw (as the data source holds them): images and tables are standardised inside
    with the training split's mean and standard deviation, and regression outputs are mapped
    back to the targets' units. Graph models take ``(x, edge_index)`` and return (N, C) logits;
    image models (B, C, H, W) and tabular models (B, F) inputs, returning (B, outputs).

    Attributes:
        net: The network of the architecture (built by its space).
        metadata: The contents of ``nasforge.json`` (architecture, task, metrics, ...).
    """

    input_mean: Tensor | None
    input_std: Tensor | None
    target_mean: Tensor | None
    target_std: Tensor | None

    def __init__(
        self,
        net: nn.Module,
        *,
        graph: bool,
        metadata: Mapping[str, Any] | None = None,
        input_mean: Tensor | None = None,
        input_std: Tensor | None = None,
        target_mean: Tensor | None = None,
        target_std: Tensor | None = None,
    ) -> None:
        super().__init__()
        if (input_mean is None) != (input_std is None):
            raise ConfigError("give both input_mean and input_std, or neither")
        if (target_mean is None) != (target_std is None):
            raise ConfigError("give both target_mean and target_std, or neither")
        self.net = net
        self.graph = graph
        self.metadata: dict[str, Any] = dict(metadata or {})
        for name, value in (
            ("input_mean", input_mean),
            ("input_std", input_std),
            ("target_mean", target_mean),
            ("target_std", target_std),
        ):
            if value is None:
                setattr(self, name, None)
            else:
                self.register_buffer(name, value.detach().to(torch.float32).clone())

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        if self.graph:
            if edge_index is None:
                raise ConfigError("a graph model needs edge_index (2, E) besides x (N, F)")
            out: Tensor = self.net(x, edge_index)  # (N, C) logits
            return out
        if self.input_mean is not None and self.input_std is not None:
            x = (x - self.input_mean) / self.input_std  # the training split's statistics
        out = self.net(x)  # (B, outputs)
        if self.target_mean is not None and self.target_std is not None:
            out = out * self.target_std + self.target_mean  # back to the targets' units
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None  # JSON has no NaN
    return value


def save(model: ExportedModel, folder: Path) -> None:
    """Write ``model``'s weights and metadata into ``folder`` (which must exist)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    text = json.dumps(_jsonable(model.metadata), indent=2, sort_keys=False, allow_nan=False)
    (folder / METADATA_FILE).write_text(text + "\n", encoding="utf-8")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``nasforge.json`` of an exported model folder, checked.

    Raises:
        ConfigError: If the folder or a file is missing, or the metadata is not an export of a
            format this nasforge reads.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder written by 'nasforge export'")
    file = folder / METADATA_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{folder} lacks {METADATA_FILE}; is it a nasforge export?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"{file} is not nasforge export metadata (no format {FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(
            f"{file} has format version {version!r}; this nasforge reads versions up to "
            f"{FORMAT_VERSION}: upgrade nasforge"
        )
    return meta


def build_network(meta: Mapping[str, Any]) -> nn.Module:
    """The untrained network that ``meta`` describes (its space builds it)."""
    from nasforge.spaces.base import SPACES

    model = meta["model"]
    space = SPACES.create(str(meta["space"]))
    arch = Architecture.from_dict(meta["architecture"])
    shape = ModelShape(tuple(int(s) for s in model["input_shape"]), int(model["outputs"]))
    return space.build(arch, shape, space.settings_from_dict(meta.get("hyper")))


def load(path: str | os.PathLike[str]) -> ExportedModel:
    """Load a model folder; see :func:`nasforge.exporting.load`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path).expanduser()
    meta = read_metadata(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"{folder} lacks {WEIGHTS_FILE}; is it a nasforge export?")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"cannot read {weights}: {exc}") from None
    model = ExportedModel(
        build_network(meta),
        graph=bool(meta["model"]["graph"]),
        metadata=meta,
        input_mean=state.get("input_mean"),
        input_std=state.get("input_std"),
        target_mean=state.get("target_mean"),
        target_std=state.get("target_std"),
    )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(
            f"{weights} does not fit the architecture in the metadata: {first}"
        ) from None
    return model.eval()

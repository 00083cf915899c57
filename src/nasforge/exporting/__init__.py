"""Hand users their model: export a trial's architecture trained, and load it back.

* :func:`~nasforge.exporting.exporter.export_experiment` (``nasforge export``, and
  :func:`nasforge.api.export`) takes the chosen trial's weights the search kept (see
  :class:`nasforge.artifacts.ArtifactStore`) or else trains its architecture at full fidelity,
  and writes ``model.safetensors``, ``nasforge.json`` and, where the ops allow, ``model.onnx``.
* :func:`load` (``nasforge.load``) rebuilds the module from such a folder, ready for inference
  on raw inputs.

Importing this package does not import torch; :func:`load` does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasforge.exporting.torch import ExportedModel

__all__ = ["load"]


def load(path: str | os.PathLike[str]) -> ExportedModel:
    """Load a model written by ``nasforge export``, ready for inference (eval mode).

    The network is rebuilt from the architecture in ``nasforge.json`` and its weights are read
    from ``model.safetensors`` (nothing is unpickled). Feed raw inputs: the standardisation the
    model was trained with is part of it.

    Example:
        >>> model = nasforge.load("my-model")
        >>> model.metadata["architecture"], model.metadata["export_metrics"]
        >>> logits = model(x)  # images (B, C, H, W), tables (B, F); graphs: model(x, edge_index)

    Args:
        path: The folder ``nasforge export --out`` wrote.

    Returns:
        An :class:`~nasforge.exporting.torch.ExportedModel` in eval mode; its ``metadata`` attribute
        holds ``nasforge.json``.

    Raises:
        ConfigError: If the folder is not an export, or its weights do not fit its architecture.
    """
    from nasforge.exporting.torch import load as load_folder

    return load_folder(path)

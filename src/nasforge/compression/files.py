"""The file a compression step keeps beside the store: its weights (pruned entries stored as
zeros), its masks, the dense step's rewind weights, and a structured step's widths, as one
safetensors file named after the step's key (read without unpickling anything)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from nasforge.architecture import Architecture
from nasforge.artifacts import ArtifactError, ArtifactStore
from nasforge.compression.masks import Masks
from nasforge.compression.plan import DENSE, Step
from nasforge.store.base import TrialRecord

__all__ = ["FILE_FORMAT", "StoredStep", "stored_step"]

FILE_FORMAT = "nasforge-compression"
"""The ``format`` entry of a compression step's file."""


@dataclass
class StoredStep:
    """A step's outcome in memory: the plain weights (zeros stored), its masks, and for a
    structured step the narrower network's architecture and settings (as JSON)."""

    state: dict[str, torch.Tensor]
    masks: Masks
    rewind: dict[str, torch.Tensor] | None = None
    arch: Architecture | None = None
    settings: dict[str, Any] | None = None
    widths: dict[str, int] | None = None


def stored_step(artifacts: ArtifactStore, trial: TrialRecord) -> StoredStep:
    """The weights and masks a compression trial stored (read with safetensors).

    Raises:
        ArtifactError: If its file is missing, damaged, or of another trial.
    """
    step = Step("", 0.0, 0, trial.key, False)
    loaded = artifacts.load_tensors(step.file)
    if loaded is None:
        raise ArtifactError(
            f"the weights and masks of compressed trial {trial.number} ({trial.key}) are "
            f"missing: no file {artifacts.path(step.file)}"
        )
    tensors, meta = loaded
    if meta.get("format") != FILE_FORMAT or meta.get("key") != trial.key:
        raise ArtifactError(
            f"{artifacts.path(step.file)} is not the file of compressed trial {trial.number} "
            f"({trial.key})"
        )
    parts: dict[str, dict[str, torch.Tensor]] = {"weight": {}, "mask": {}, "rewind": {}}
    for key, value in tensors.items():
        kind, _, name = key.partition("/")
        if kind in parts:
            parts[kind][name] = value
    rewind = parts["rewind"] or None
    if trial.key.startswith(f"{DENSE}:") and rewind is None:
        raise ArtifactError(f"{artifacts.path(step.file)} lacks the dense trial's rewind weights")
    out = StoredStep(parts["weight"], parts["mask"], rewind, arch=trial.arch)
    if "widths" in meta:
        try:
            out.widths = {str(k): int(v) for k, v in json.loads(meta["widths"]).items()}
            out.settings = json.loads(meta.get("settings", "null"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ArtifactError(
                f"{artifacts.path(step.file)}: its widths cannot be read ({exc})"
            ) from None
    return out

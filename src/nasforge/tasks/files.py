"""Reading the data files users point a task at (``.npz`` archives and ``.pt`` tensor files),
so that a damaged, truncated or odd file is refused in one line whatever its bytes hold.

Nothing is unpickled: ``.npz`` files are read with ``allow_pickle=False`` and ``.pt`` files
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import ConfigError

__all__ = ["numeric", "read_npz", "read_tensors"]


def _why(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if not first or len(first) > 120:
        return type(exc).__name__
    return f"{type(exc).__name__}: {first}"


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, by name.

    Raises:
        ConfigError: If the file is not a readable ``.npz`` of plain arrays (damaged, cut
            short, another format, or holding objects that would need unpickling).
    """
    try:
        with np.load(file, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):  # a bare .npy saved under an .npz name
                raise ValueError("a single array, not an archive of named arrays")
            return {name: np.asarray(archive[name]) for name in archive.files}
    except Exception as exc:  # zipfile, zlib, EOF, format and pickle errors alike
        raise ConfigError(
            f"cannot read {file} as an .npz archive of arrays ({_why(exc)}); save one with "
            "numpy.savez(path, x=..., y=...)"
        ) from None


def read_tensors(file: Path) -> Any:
    """What a ``.pt`` file saved with ``torch.save`` holds, loaded with ``weights_only=True``.

    Raises:
        ConfigError: If the file is damaged or holds anything but tensors and plain values.
    """
    import torch

    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip and EOF errors alike
        raise ConfigError(
            f"cannot read {file} safely as saved tensors ({_why(exc)}); save a dict of "
            "tensors with torch.save, or an .npz archive"
        ) from None


def numeric(file: Path, key: str, value: Any) -> np.ndarray:
    """``value`` (an array or tensor read from ``file`` under ``key``) as a numpy array of real
    numbers or booleans.

    Raises:
        ConfigError: For anything else (text, complex numbers, objects).
    """
    import torch

    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise ConfigError(f"{file}: {key!r} holds complex numbers; real numbers are expected")
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ConfigError(
            f"{file}: {key!r} is a {type(value).__name__}; an array or tensor is expected"
        )
    if value.dtype.kind not in "biuf":
        raise ConfigError(f"{file}: {key!r} holds {value.dtype} values; real numbers are expected")
    return value

"""What a latency measurement depends on besides the model: the device fingerprint."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import torch

from nasforge.latency.onnx import onnxruntime
from nasforge.latency.timing import check_backend
from nasforge.train.device import cpu_model

__all__ = ["device_fingerprint"]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_fingerprint(backend: str = "torch", device: str = "cpu") -> dict[str, Any]:
    """What a latency table depends on besides the model: the device (``cpu``, ``cuda:0``)
    and, for a GPU, its name and CUDA version; CPU model, core counts, PyTorch's thread count,
    library versions and the backend.

    Raises:
        ConfigError: For an unknown backend, or ``"onnxruntime"`` without the extra.
    """
    check_backend(backend)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    fingerprint: dict[str, Any] = {
        "device": device,
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_geometric": _version("torch-geometric"),
        "backend": backend,
    }
    if device.startswith("cuda"):
        fingerprint["gpu"] = str(torch.cuda.get_device_name(torch.device(device)))
        fingerprint["cuda"] = torch.version.cuda
    if backend == "onnxruntime":
        fingerprint["onnxruntime"] = str(onnxruntime().__version__)
    return fingerprint

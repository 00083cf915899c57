"""Where models train and run: ``--device auto|cpu|cuda|cuda:N``.

A search names one device *spec* (stored with its execution settings, not with its identity:
a search begun on a GPU resumes on a CPU). Each process resolves it where it trains:

* ``auto``: CUDA when PyTorch sees a CUDA device, else the CPU;
* ``cpu``;
* ``cuda``: a CUDA device; a worker of a local search with several workers takes its own,
  ``cuda:(worker % GPUs)``, so that a machine's GPUs are shared out one per worker;
* ``cuda:N``: that device, for every worker.

Training, zero-cost proxies, supernets and latency run on the resolved device; each trial
stores the device it ran on and the device's name (``cuda:0``, ``NVIDIA H100 80GB HBM3``).
"""

from __future__ import annotations

import functools
import platform
import re
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DEVICE_FORMS",
    "assign_worker",
    "check_device",
    "cpu_model",
    "device_name",
    "model_device",
    "resolve_device",
    "synchronize",
    "to_device",
    "trial_gpus",
]

DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N")
"""The accepted device specs (``N``: a CUDA device index from 0)."""

_SPEC = re.compile(r"auto|cpu|cuda(?::(\d{1,3}))?")
_worker: int | None = None


def check_device(spec: object) -> str:
    """``spec`` in its canonical form (lower case, no spaces) if it is a device spec.

    Raises:
        ConfigError: Otherwise, naming the accepted forms.
    """
    text = spec.strip().lower() if isinstance(spec, str) else None
    if text is None or _SPEC.fullmatch(text) is None:
        raise ConfigError(f"unknown device {spec!r}; accepted: {', '.join(DEVICE_FORMS)}")
    return text


def assign_worker(index: int | None) -> None:
    """Record that this process is worker ``index`` of a local search: ``cuda`` then resolves
    to GPU ``index % GPUs`` in it (``None``: no worker, GPU 0)."""
    global _worker
    _worker = index
    _resolved.cache_clear()


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _no_cuda(spec: str) -> ConfigError:
    import torch

    build = torch.version.cuda
    why = (
        f"this PyTorch ({torch.__version__}) is built without CUDA"
        if build is None
        else f"this PyTorch (CUDA {build}) sees no CUDA device"
    )
    return ConfigError(
        f"device {spec!r} asks for a GPU but {why}; use --device cpu, or auto to use a GPU "
        "only where there is one"
    )


@functools.lru_cache(maxsize=8)
def _resolved(spec: str) -> torch.device:
    import torch

    count = _cuda_count()
    if spec == "cpu" or (spec == "auto" and count == 0):
        return torch.device("cpu")
    if count == 0:
        raise _no_cuda(spec)
    if spec in ("auto", "cuda"):
        return torch.device("cuda", (_worker or 0) % count)
    index = int(spec.partition(":")[2])
    if index >= count:
        raise ConfigError(
            f"device {spec!r}: there is no CUDA device {index} here; this machine has {count} "
            f"(cuda:0 to cuda:{count - 1})"
        )
    return torch.device("cuda", index)


def resolve_device(spec: str = "auto") -> torch.device:
    """The device ``spec`` names in this process (see the module's description).

    Raises:
        ConfigError: For a spec that is not one of :data:`DEVICE_FORMS`, a GPU asked for
            where PyTorch sees none, or a ``cuda:N`` beyond the devices there are.
    """
    return _resolved(check_device(spec))


@functools.cache
def device_name(device: torch.device) -> str:
    """What the device is: the GPU's name, or the CPU's model (read once per process: every
    trial's result names it)."""
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return cpu_model()


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one; read once per process)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for a model with none)."""
    import torch

    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously): call before reading
    a clock."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trial_gpus(spec: str, cluster_gpus: float, executor: str = "ray") -> float:
    """The GPUs a remote trial reserves on a cluster with ``cluster_gpus`` GPUs: one when the
    spec asks for CUDA (``auto`` only where the cluster has GPUs), else none.

    Raises:
        ConfigError: For ``cuda``/``cuda:N`` on a cluster without GPUs, or ``cuda:N`` (the
            cluster assigns each trial its GPU; give ``cuda`` or ``auto``).
    """
    spec = check_device(spec)
    if spec == "cpu" or (spec == "auto" and cluster_gpus <= 0):
        return 0.0
    if spec.startswith("cuda:"):
        raise ConfigError(
            f"device {spec!r}: the {executor} executor gives each trial a GPU of its own; "
            "give --device cuda or auto"
        )
    if cluster_gpus <= 0:
        raise ConfigError(
            f"device {spec!r} asks for a GPU but the {executor} cluster has none; use "
            "--device cpu or auto"
        )
    return 1.0


def to_device(value: Any, device: torch.device) -> Any:
    """``value`` (a tensor, or a tuple or list of them) on ``device``; anything else as is."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple | list):
        return type(value)(to_device(v, device) for v in value)
    return value

"""Timing a model: median inference time with PyTorch or with ONNX Runtime."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.train.cost import count_flops, count_params, measure_latency_ms

__all__ = [
    "BACKENDS",
    "check_backend",
    "check_timing",
    "example_inputs",
    "measure_architecture",
    "measure_costs",
    "measure_latency",
    "seeded",
    "timing_device",
]

BACKENDS = ("torch", "onnxruntime")
"""Where latency is measured: PyTorch eager, or ONNX Runtime's CPU execution provider."""


def check_backend(backend: str) -> None:
    """Raises ConfigError for a backend not in :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown latency backend {backend!r}; valid: {', '.join(BACKENDS)}")


def timing_device(backend: str, device: str = "cpu") -> str:
    """Where ``backend`` times models for the device spec ``device`` (``auto``, ``cpu``,
    ``cuda``, ``cuda:N``): the resolved device for torch, the CPU for ONNX Runtime.

    Raises:
        ConfigError: For a bad spec, or a GPU asked for where there is none (torch only).
    """
    from nasforge.train.device import resolve_device

    return str(resolve_device(device)) if backend == "torch" else "cpu"


def check_timing(warmup: int, repeats: int) -> None:
    """Raises ConfigError unless ``warmup >= 0`` and ``repeats >= 1`` are integers."""
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def measure_latency(
    model: nn.Module,
    inputs: Tensor | Sequence[Tensor],
    *,
    backend: str = "torch",
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median inference time of ``model(*inputs)`` in ms on this machine.

    With ``backend="torch"`` the model runs on its own device (the inputs are moved there;
    on a GPU each call is timed until its work has run). The model runs in eval mode without
    gradients (its mode is restored afterwards). With
    ``backend="torch"`` this is :func:`nasforge.train.cost.measure_latency_ms`, what
    :class:`~nasforge.evaluators.training.TrainingEvaluator` reports as ``latency_ms``; with
    ``"onnxruntime"`` the model is exported to ONNX and run by ONNX Runtime's
    ``CPUExecutionProvider`` with as many intra-op threads as PyTorch uses
    (``torch.get_num_threads()``).

    Args:
        model: The model to time.
        inputs: Its positional inputs (one tensor or a sequence).
        backend: One of :data:`BACKENDS`.
        warmup: Untimed calls first.
        repeats: Timed calls; the median is returned.

    Raises:
        ConfigError: For an unknown backend, bad counts, or ``"onnxruntime"`` without the
            ``onnx`` extra installed.
        LatencyTableError: If the model cannot be exported to ONNX.
    """
    from nasforge.train.device import model_device, to_device

    check_backend(backend)
    check_timing(warmup, repeats)
    args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    was_training = model.training
    model.eval()
    try:
        if backend == "torch":
            device = model_device(model)
            args = to_device(args, device)

            def forward() -> object:
                return model(*args)

            return measure_latency_ms(forward, warmup=warmup, repeats=repeats, device=device)
        from nasforge.latency.onnx import onnx_runner  # exports to ONNX: only when asked

        runner = onnx_runner(model, args)
        return measure_latency_ms(runner, warmup=warmup, repeats=repeats)
    finally:
        model.train(was_training)


def example_inputs(task: Any) -> tuple[Tensor, ...]:
    """The inputs latency is measured on: the task's own (``task.example_inputs()``: the
    whole graph for node classification, one validation example for images and tables),
    else one random example of ``task.input_shape`` (seed 0).

    Raises:
        ConfigError: If ``task`` has neither.
    """
    own = getattr(task, "example_inputs", None)
    if callable(own):
        inputs: tuple[Tensor, ...] = own()
        return inputs
    shape = getattr(task, "input_shape", None)
    if shape is None:
        raise ConfigError(
            f"cannot make example inputs for {type(task).__name__}: expected a task, or an "
            "object with input_shape"
        )
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(1, *(int(s) for s in shape), generator=gen),)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed PyTorch's global generator inside, leaving the caller's state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def measure_architecture(
    space: SearchSpace,
    arch: Architecture,
    task: Any,
    hyper: Any = None,
    *,
    backend: str = "torch",
    warmup: int = 3,
    repeats: int = 10,
    device: str = "cpu",
) -> float:
    """Measured latency (ms) of ``space.build(arch, task, hyper)`` on :func:`example_inputs`
    (with the torch backend, on the device the spec ``device`` names: :func:`timing_device`).

    Raises:
        ConfigError: As :func:`measure_latency`, or if the space cannot build ``arch``.
        LatencyTableError: If the model cannot be exported to ONNX.
    """
    with seeded(0):
        model = space.build(arch, task, hyper if hyper is not None else space.default_settings())
    model = model.to(timing_device(backend, device))
    return measure_latency(
        model, example_inputs(task), backend=backend, warmup=warmup, repeats=repeats
    )


def measure_costs(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], *, latency: str | None = "torch"
) -> dict[str, float]:
    """``params``, ``flops`` and (unless ``latency`` is ``None``) ``latency_ms`` of one
    forward pass of ``model`` on ``inputs``; latency is timed at the process's base threads,
    by torch (on the model's device, where ``inputs`` must be) or by another backend of
    :data:`BACKENDS` (``onnxruntime``)."""
    from nasforge.train import threads
    from nasforge.train.device import model_device

    def forward() -> object:
        return model(*inputs)

    costs: dict[str, float] = {
        "params": float(count_params(model)),
        "flops": float(count_flops(forward)),
    }
    with threads.at_base():
        if latency == "torch":
            costs["latency_ms"] = measure_latency_ms(forward, device=model_device(model))
        elif latency is not None:
            costs["latency_ms"] = measure_latency(model, inputs, backend=latency)
    return costs

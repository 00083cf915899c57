"""Model costs: parameter count, FLOPs of one forward pass, and measured latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "count_params", "measure_latency_ms"]


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(forward: Callable[[], object]) -> int:
    """FLOPs of one call of ``forward`` as counted by PyTorch's ``FlopCounterMode``.

    Counts dense tensor algebra (matrix products, convolutions): a multiply-add is 2 FLOPs.
    Sparse message passing (scatter/gather of edge messages) is not included.
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        forward()
    return int(counter.get_total_flops())


def measure_latency_ms(
    forward: Callable[[], object],
    *,
    warmup: int = 3,
    repeats: int = 10,
    device: torch.device | None = None,
) -> float:
    """Median wall time of ``forward`` in ms over ``repeats`` calls, after ``warmup`` calls;
    on a CUDA ``device`` each call is timed until its queued work has run."""
    from nasforge.train.device import synchronize

    where = device if device is not None else torch.device("cpu")
    with torch.no_grad():
        for _ in range(warmup):
            forward()
        times = []
        for _ in range(repeats):
            synchronize(where)
            start = time.perf_counter()
            forward()
            synchronize(where)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3

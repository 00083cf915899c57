"""Evaluators that misbehave on purpose, imported by Ray workers (not a test module).

The test cluster's nodes run with the repository root on ``PYTHONPATH``, so workers import
this module by name, as they would import an evaluator installed on a real cluster.
"""

from __future__ import annotations

import os

from nasforge.architecture import Architecture
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.result import Result

CRASH_OP = "gat"
"""The first op of architectures whose evaluation kills the worker process."""


class RaisingEvaluator(NasBenchGraphEvaluator):
    """Real Cora look-ups, except that architectures using a GAT layer raise."""

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if "gat" in arch["ops"]:  # type: ignore[operator]
            raise RuntimeError("simulated out-of-memory in a GAT layer")
        return super().evaluate(arch, budget)


class CrashingEvaluator(NasBenchGraphEvaluator):
    """Real Cora look-ups, except that the worker process dies (``os._exit``) mid-trial."""

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if arch["ops"][0] == CRASH_OP:  # type: ignore[index]
            os._exit(3)  # like a segfault or the OOM killer: no exception, no cleanup
        return super().evaluate(arch, budget)


class ThreadsEvaluator(NasBenchGraphEvaluator):
    """Real Cora look-ups that also report the worker's torch threads.

    torch is imported on the first evaluation, as a training evaluator would.
    """

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        import torch

        result = super().evaluate(arch, budget)
        return Result(
            metrics=result.metrics,
            test_metrics=result.test_metrics,
            costs={**result.costs, "torch_threads": torch.get_num_threads()},
            wall_time=result.wall_time,
        )

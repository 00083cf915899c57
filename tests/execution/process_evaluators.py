"""Evaluators that misbehave on purpose, imported by worker processes (not a test module).

Spawned workers (and the Ray test cluster's workers) import this module by name, as they
would import an evaluator installed with the search. The misbehaviour is picked by the first
op of the architecture; every trial first writes ``<pid>`` (and, for the hanging ones, the
pid of the child it starts) to ``<pid_dir>/<first op>.pid``, so that a test can find it.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from nasforge.architecture import Architecture
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.result import Result

SLEEP = "gat"
"""Sleeps for a minute (to be killed, or timed out)."""
SLOW = "sage"
"""Sleeps for a second, then looks up the table."""
HANG = "cheb"
"""Starts ``sleep 300`` (in the worker's process group), then hangs."""
HANG_DETACHED = "graph"
"""Starts ``sleep 300`` in a session of its own (outside the worker's group), then hangs."""
NO_MEMORY = "gin"
"""Asks Python for an impossible allocation (MemoryError)."""
NO_TORCH_MEMORY = "arma"
"""Asks torch for an impossible allocation (RuntimeError: can't allocate memory)."""
EXIT = "fc"
"""Ends the worker process with ``os._exit(3)``: no exception, no cleanup."""
UNPICKLABLE = "skip"
"""Returns a result that cannot be pickled (a lambda among its weights)."""


class MisbehavingEvaluator(NasBenchGraphEvaluator):
    """Real Cora look-ups, except for the architectures whose first op names a misbehaviour.

    Args:
        pid_dir: Folder of the ``<first op>.pid`` files (None: none written).
    """

    def __init__(self, *, pid_dir: str | None = None) -> None:
        super().__init__(dataset="cora")
        self.pid_dir = pid_dir

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        first = str(arch["ops"][0])  # type: ignore[index]
        child = None
        if first in (HANG, HANG_DETACHED):
            child = subprocess.Popen(["sleep", "300"], start_new_session=first == HANG_DETACHED)
        self._write_pids(first, child)
        if first in (HANG, HANG_DETACHED):
            while True:
                time.sleep(1)
        if first == SLEEP:
            time.sleep(60)
        elif first == SLOW:
            time.sleep(1)
        elif first == NO_MEMORY:
            bytearray(1 << 62)
        elif first == NO_TORCH_MEMORY:
            import torch

            torch.empty(1 << 50, dtype=torch.uint8)
        elif first == EXIT:
            os._exit(3)
        result = super().evaluate(arch, budget)
        if first == UNPICKLABLE:
            weights: dict[str, Any] = {"w": lambda: 0}
            return Result(metrics=result.metrics, weights=weights)
        return result

    def _write_pids(self, first: str, child: subprocess.Popen[bytes] | None) -> None:
        if self.pid_dir is None:
            return
        pids = [os.getpid()] + ([child.pid] if child else [])
        path = Path(self.pid_dir) / f"{first}.pid"
        # whole, never half-written; each process its own temporary file, since trials of the
        # same first op run at once in several workers
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(" ".join(map(str, pids)))
        tmp.replace(path)


class UnstartableEvaluator(NasBenchGraphEvaluator):
    """An evaluator that pickles here but cannot be unpickled in a worker process."""

    def __init__(self) -> None:
        super().__init__(dataset="cora")
        self.home = os.getpid()

    def __setstate__(self, state: dict[str, Any]) -> None:
        if os.getpid() != state["home"]:
            raise RuntimeError("this evaluator cannot be loaded in another process")
        self.__dict__.update(state)


class ThreadWatchingEvaluator(NasBenchGraphEvaluator):
    """Looks up the table after "training" for ``seconds`` in 50 ms "epochs", and reports the
    torch threads it ran with: at its first and last epoch (``threads_first``,
    ``threads_last``) and inside :func:`nasforge.train.threads.at_base` (``threads_base``), as
    costs of the result."""

    def __init__(self, *, seconds: float) -> None:
        super().__init__(dataset="cora")
        self.seconds = seconds

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        import torch

        from nasforge.train import threads

        seen = []
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            threads.between_epochs()
            seen.append(torch.get_num_threads())
            time.sleep(0.05)
        with threads.at_base():
            base = torch.get_num_threads()
        result = super().evaluate(arch, budget)
        costs = {"threads_first": seen[0], "threads_last": seen[-1], "threads_base": base}
        return Result(metrics=result.metrics, costs={**result.costs, **costs})


class DeviceReportingEvaluator(NasBenchGraphEvaluator):
    """Looks up the table after ``seconds``, and reports the worker number its process was
    given (cost ``worker``, -1 for none) and the device its spec resolves to there."""

    def __init__(self, *, device: str = "auto", seconds: float = 0.3) -> None:
        super().__init__(dataset="cora")
        self.device = device
        self.seconds = seconds

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        from nasforge.train import device as devices

        time.sleep(self.seconds)  # both workers get trials
        result = super().evaluate(arch, budget)
        where = devices.resolve_device(self.device)
        worker = devices._worker if devices._worker is not None else -1
        return Result(
            metrics=result.metrics,
            costs={"worker": float(worker)},
            device=str(where),
            device_name=devices.device_name(where),
        )


class EpochsEvaluator(NasBenchGraphEvaluator):
    """Looks up the table after "training" ``epochs`` epochs of ``seconds`` each, reporting
    each one as the trainers do."""

    def __init__(self, *, epochs: int, seconds: float) -> None:
        super().__init__(dataset="cora")
        self.epochs, self.seconds = epochs, seconds

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        from nasforge.train import progress

        for epoch in range(1, self.epochs + 1):
            time.sleep(self.seconds)
            progress.epoch_done(epoch, self.epochs)
        return super().evaluate(arch, budget)

"""The CPU threads a training process uses: a fixed base, and a share that may change.

A search with several local workers splits the machine's cores between them (the *base*:
CPUs // workers each). Near the end of a search, or whenever the search has fewer trials in
flight than workers, some workers sit idle; their cores can serve the trials still running.
The process executor publishes each worker's current *share* of the cores, and a worker
adopts it between epochs (:func:`between_epochs`, called by the trainers), so a trial left
running alone speeds up instead of leaving a core idle.

Costs are measured at the base count (:func:`at_base`), so that the latency of every trial
of a search is timed under the same threads whatever the other workers were doing.

In a process that configured nothing (a search evaluating in its own process, a script),
both functions do nothing: torch keeps the threads it was given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

__all__ = ["at_base", "between_epochs", "configure"]

_base: int | None = None
_share: Callable[[], int] | None = None


def configure(base: int, share: Callable[[], int] | None = None) -> None:
    """Set this process's base thread count and, optionally, where its current share is read.

    Args:
        base: Threads to use by default (and to measure costs with).
        share: Returns the threads this process may use now (values < 1 mean ``base``).
    """
    global _base, _share
    _base, _share = base, share
    torch.set_num_threads(base)


def between_epochs() -> None:
    """Adopt the current share of the cores, if this process follows one."""
    if _share is None or _base is None:
        return
    wanted = _share()
    wanted = wanted if wanted >= 1 else _base
    if wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)


@contextlib.contextmanager
def at_base() -> Iterator[None]:
    """Run the block at the base thread count (nothing changes where none is configured)."""
    if _base is None or torch.get_num_threads() == _base:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(_base)
    try:
        yield
    finally:
        torch.set_num_threads(before)

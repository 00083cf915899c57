"""One-shot (weight-sharing) search: the supernet phase (:mod:`~nasforge.oneshot.phase`) and
the methods' training rules (:mod:`~nasforge.oneshot.methods`). The strategies that configure
them are in :mod:`nasforge.strategies.oneshot`; the experiment runs the phase before its loop.

This module holds what the experiment hands a phase, and imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.artifacts import ArtifactStore
    from nasforge.store.base import Store

__all__ = ["PhaseContext", "PhaseProgress"]


@dataclass(frozen=True, slots=True)
class PhaseProgress:
    """One finished supernet epoch (or evolution generation), for progress lines."""

    kind: str  # "epoch" or "generation"
    step: int
    total: int
    record: Mapping[str, Any]


@dataclass
class PhaseContext:
    """What a supernet phase needs from the experiment running it.

    Attributes:
        store: Where the phase's records go (:meth:`~nasforge.store.base.Store.put_phase`).
        experiment_id: The experiment's id in the store.
        checkpoints: The experiment's artifact folder, for ``supernet.safetensors``; ``None``
            for a store without files (in memory): the phase then keeps no checkpoint.
        deadline: ``time.monotonic()`` value at which the phase must end (a time budget),
            or ``None``.
        report: Called after each stored epoch or generation.
    """

    store: Store
    experiment_id: int
    checkpoints: ArtifactStore | None = None
    deadline: float | None = None
    report: Callable[[PhaseProgress], None] | None = None

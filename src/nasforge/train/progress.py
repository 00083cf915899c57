"""The epochs of the training running in this process, for a search's live progress.

The trainers call :func:`epoch_done` after every epoch. By default it records the pair
``(epoch, planned epochs)`` in this process (what :func:`current` reads: the inline executor
runs trials in the search's own process); a worker process of the process executor instead
sends it where the search reads it (:func:`report_to`: a slot of shared memory). Nothing here
imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["current", "epoch_done", "report_to", "reset"]

_sink: Callable[[int, int], None] | None = None
_current: tuple[int, int] = (0, 0)


def report_to(sink: Callable[[int, int], None] | None) -> None:
    """Send each ``(epoch, planned)`` to ``sink`` (``None``: keep it in this process)."""
    global _sink
    _sink = sink


def epoch_done(epoch: int, planned: int) -> None:
    """Training finished ``epoch`` of ``planned`` (called by the trainers)."""
    global _current
    if _sink is not None:
        _sink(epoch, planned)
    else:
        _current = (epoch, planned)


def current() -> tuple[int, int]:
    """The last ``(epoch, planned)`` recorded in this process since :func:`reset`; ``(0, 0)``
    when none was."""
    return _current


def reset() -> None:
    """Forget the epochs recorded (a new trial starts, or one ended)."""
    global _current
    _current = (0, 0)

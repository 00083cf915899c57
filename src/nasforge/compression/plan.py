"""What a compression run does: its method, the sparsities it reaches, and the steps (one
stored trial each) that get there.

Every run starts from one dense step: the source trial's architecture trained again with the
search's own settings and seed, keeping its weights at the rewind epoch. Then, per method:

* ``magnitude``: for each sparsity, global magnitude pruning of the dense trained weights in
  one shot, then fine-tuning of the remaining weights (Han et al., 2015);
* ``imp``: iterative magnitude pruning with late rewinding (Frankle & Carbin, "The Lottery
  Ticket Hypothesis", 2019; Frankle et al., "Linear Mode Connectivity and the Lottery Ticket
  Hypothesis", 2020): each round prunes ``prune_ratio`` of the weights still there (by
  magnitude, over the whole network), resets the rest to their values at the rewind epoch and
  trains again; a round never passes a requested sparsity, so each one is reached exactly;
* ``random``: for each sparsity, a random mask with the same number of weights per layer as
  global magnitude pruning keeps, trained from the rewind point as ``imp`` trains (the
  baseline of "Random Search as a Baseline for Sparse Neural Network Architecture Search");
* ``channels``: structured pruning. For each level, the share of the dense network's FLOPs
  to remove, a width search on the trained network chooses narrower widths that meet the
  budget (TAS, :mod:`nasforge.compression.channels`), and the narrower dense network is
  trained from scratch with knowledge distillation from the trained one.

A step's key names its method, source trial and sparsity (and ``imp``'s ratio and round), so a
resumed run finds the steps it finished.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasforge.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.store.base import ExperimentRecord

__all__ = [
    "COMPRESSION_KEY",
    "DEFAULT_SPARSITIES",
    "METHODS",
    "CompressPlan",
    "Step",
    "compression_of",
    "parse_sparsities",
    "step_of_key",
]

METHODS: dict[str, str] = {
    "magnitude": "one-shot global magnitude pruning of the trained network, then fine-tuning",
    "imp": "iterative magnitude pruning with rewinding to an early epoch (lottery tickets)",
    "random": "random masks with magnitude pruning's per-layer sparsity (the baseline)",
    "channels": "structured: a width search on the trained network (TAS), then the narrower "
    "network trained with distillation; each level is the share of FLOPs removed",
}
"""The compression methods, with one line each."""

DEFAULT_SPARSITIES: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
DENSE = "dense"
COMPRESSION_KEY = "compression"
"""The key of a compression experiment's config that names its source."""


def compression_of(record: ExperimentRecord) -> str | None:
    """The source experiment's name if ``record`` is a compression experiment, else ``None``."""
    info = record.config.get(COMPRESSION_KEY)
    if isinstance(info, Mapping) and isinstance(info.get("of"), str):
        return str(info["of"])
    return None


def parse_sparsities(values: str | Sequence[float]) -> tuple[float, ...]:
    """Sparsities as given (``"0.5,0.8"`` or numbers), checked, sorted, without repeats.

    Raises:
        ConfigError: For a value that is not a number in the open interval (0, 1).
    """
    items: Sequence[object] = values.split(",") if isinstance(values, str) else values
    out: set[float] = set()
    for item in items:
        text = str(item).strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if isinstance(item, bool) or not 0.0 < value < 1.0:
            raise ConfigError(
                f"a sparsity must be a number in the open interval (0, 1), e.g. 0.9 for 90% of "
                f"the weights removed; got {text!r}"
            )
        out.add(round(value, 4))
    if not out:
        raise ConfigError("give at least one sparsity, e.g. --sparsity 0.5,0.8,0.9,0.95")
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Step:
    """One stored trial of a compression run.

    Attributes:
        method: ``dense`` (the reference) or the run's method.
        sparsity: The share of prunable weights that are zero (0 for ``dense``).
        round: ``imp``'s pruning round (1, 2, ...); 0 otherwise.
        key: The trial's stored key (unique in the compression experiment).
        level: Whether ``sparsity`` is one the user asked for (not an intermediate ``imp``
            round).
    """

    method: str
    sparsity: float
    round: int
    key: str
    level: bool

    @property
    def file(self) -> str:
        """The safetensors file (in the experiment's artifact folder) of its weights and masks."""
        return "compress-" + self.key.replace(":", "-") + ".safetensors"


@dataclass(frozen=True, slots=True)
class CompressPlan:
    """A compression run's settings.

    Attributes:
        method: One of :data:`METHODS`.
        sparsities: The sparsities to reach, ascending, each in (0, 1).
        source: The number of the trial compressed.
        prune_ratio: ``imp``: the share of the remaining weights each round removes.
        rewind_epoch: The epoch whose weights ``imp`` and ``random`` train from (the dense
            step keeps them).

    Raises:
        ConfigError: For an unknown method, a bad sparsity, a ratio outside (0, 1) or a
            rewind epoch below 0.
    """

    method: str
    sparsities: tuple[float, ...]
    source: int
    prune_ratio: float = 0.5
    rewind_epoch: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            close = difflib.get_close_matches(str(self.method), METHODS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown compression method {self.method!r}; valid: {', '.join(METHODS)}.{hint}"
            )
        parse_sparsities(self.sparsities)
        if not 0.0 < self.prune_ratio < 1.0:
            raise ConfigError(
                f"prune_ratio must be in the open interval (0, 1) (the share of the remaining "
                f"weights each imp round removes, e.g. 0.2), got {self.prune_ratio}"
            )
        if isinstance(self.rewind_epoch, bool) or self.rewind_epoch < 0:
            raise ConfigError(f"rewind_epoch must be an integer >= 0, got {self.rewind_epoch}")

    def dense(self) -> Step:
        """The dense reference step every method starts from."""
        return Step(DENSE, 0.0, 0, f"{DENSE}:t{self.source}:w{self.rewind_epoch}", False)

    def steps(self) -> list[Step]:
        """The method's steps in the order they run (after :meth:`dense`)."""
        head = f"{self.method}:t{self.source}"
        if self.method != "imp":
            return [
                Step(self.method, s, 0, f"{head}:w{self.rewind_epoch}:s{s:.4f}", True)
                for s in self.sparsities
            ]
        out: list[Step] = []
        current, number = 0.0, 0
        for level in self.sparsities:
            while current < level - 1e-9:
                number += 1
                nxt = 1.0 - (1.0 - current) * (1.0 - self.prune_ratio)
                current = level if nxt >= level - 1e-4 else round(nxt, 4)
                key = f"{head}:w{self.rewind_epoch}:p{self.prune_ratio:g}:r{number}:s{current:.4f}"
                out.append(Step("imp", current, number, key, current == level))
        return out


def step_of_key(key: str) -> tuple[str, float] | None:
    """``(method, sparsity)`` of a stored compression step's key; ``None`` for another key."""
    parts = key.split(":")
    method = parts[0]
    if method == DENSE:
        return DENSE, 0.0
    if method not in METHODS or not parts[-1].startswith("s"):
        return None
    try:
        return method, float(parts[-1][1:])
    except ValueError:
        return None

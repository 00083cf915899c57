"""Search budgets: distinct architectures, trials, or wall-clock seconds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from nasforge.errors import ConfigError

__all__ = ["Budget", "BudgetUnit"]


class BudgetUnit(StrEnum):
    """What a budget counts."""

    ARCHS = "archs"  # distinct architectures (canonical keys) evaluated
    TRIALS = "trials"  # stored trials, failed ones included
    SECONDS = "seconds"  # wall-clock seconds of this run


_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
_SUFFIXES = {
    "": (BudgetUnit.ARCHS, 1.0),
    "archs": (BudgetUnit.ARCHS, 1.0),
    "arch": (BudgetUnit.ARCHS, 1.0),
    "trials": (BudgetUnit.TRIALS, 1.0),
    "trial": (BudgetUnit.TRIALS, 1.0),
    "s": (BudgetUnit.SECONDS, 1.0),
    "m": (BudgetUnit.SECONDS, 60.0),
    "h": (BudgetUnit.SECONDS, 3600.0),
}
_RULE = (
    "a budget is a positive number of architectures ('100' or '100archs'), trials "
    "('500trials') or wall time ('90s', '30m', '2h')"
)


@dataclass(frozen=True, slots=True)
class Budget:
    """How much search to do; ``amount`` is positive."""

    amount: float
    unit: BudgetUnit = BudgetUnit.ARCHS

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", BudgetUnit(self.unit))
        if not self.amount > 0:
            raise ConfigError(f"{_RULE}; got {self.amount:g} {self.unit.value}")
        if self.unit is not BudgetUnit.SECONDS and self.amount != int(self.amount):
            raise ConfigError(f"{_RULE}; got a fraction of {self.unit.value}: {self.amount:g}")

    @classmethod
    def parse(cls, text: str | int) -> Budget:
        """Parse ``"100"``, ``"100archs"``, ``"500trials"``, ``"90s"``, ``"30m"``, ``"2h"``.

        Raises:
            ConfigError: Saying the rule and the value, e.g. for ``"0"`` or ``"-5"``.
        """
        match = _PATTERN.match(str(text).lower())
        if match is None or match.group(2) not in _SUFFIXES:
            raise ConfigError(f"{_RULE}; got {text!r}")
        unit, scale = _SUFFIXES[match.group(2)]
        return cls(float(match.group(1)) * scale, unit)

    def __str__(self) -> str:
        if self.unit is BudgetUnit.SECONDS:
            return f"{self.amount:g}s"
        return f"{int(self.amount)} {self.unit.value}"

"""Console output that can be copied: on a terminal, Rich at the terminal's width; elsewhere (a
log file, a pipe, CI) lines as long as their content, never folded at 80 columns, so that
architecture strings and printed commands stay whole.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.rule import Rule

from nasforge.budget import BudgetUnit

if TYPE_CHECKING:
    from nasforge.experiment import Progress

__all__ = [
    "RULE_WIDTH",
    "console",
    "epochs_text",
    "printable",
    "rule",
    "spent",
    "trial_line",
]

# Width given to Rich when the output is not a terminal: wide enough that no table or line of
# ours is ever folded; tables and text take only the width of their content.
UNFOLDED = 100_000
# Width of a horizontal rule where the output is not a terminal (a rule fills the width).
RULE_WIDTH = 100


def console(stderr: bool = False) -> Console:
    """A console for standard output (or error): no highlighting; at the terminal's width on a
    terminal, unfolded elsewhere unless ``COLUMNS`` says otherwise."""
    made = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = UNFOLDED
    return made


def rule(where: Console, title: str) -> None:
    """A horizontal rule with ``title``, as wide as the terminal up to :data:`RULE_WIDTH`."""
    where.print(Rule(title), width=min(where.width, RULE_WIDTH))


def printable(text: str) -> str:
    """``text`` as one line: control characters and line breaks are shown escaped (``\\n``,
    ``\\x1e``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def spent(p: Progress) -> float:
    """How much of the search's budget is spent, in the budget's unit."""
    return {
        BudgetUnit.ARCHS: p.archs,
        BudgetUnit.TRIALS: p.trials,
        BudgetUnit.SECONDS: p.elapsed,
    }[p.budget.unit]


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:.4f}"


def trial_line(name: str, p: Progress) -> str:
    """One plain line on the trial that just finished: experiment, trial number, status, its
    objective value and the best so far, the budget spent, and the architecture last (so that
    the line is whole, however long the architecture). Print it with ``markup=False``."""
    last, budget = p.last, p.budget
    of = "" if budget.unit is BudgetUnit.SECONDS else f"/{budget.amount:g}"
    metric = printable(p.objective.metric)
    value = p.objective.value_in(last.metrics, last.costs)
    return (
        f"{printable(name)}: trial {last.number} {last.status.value} {metric}={_number(value)} "
        f"best={_number(p.best_value)} ({spent(p):.0f}{of} {budget.unit.value}, "
        f"{p.elapsed:.1f} s) {printable(str(last.arch))}"
    )


def epochs_text(running: Sequence[tuple[int, int]]) -> str:
    """The epochs of the trials training now, for a progress bar: ``epoch 37/200`` for one,
    ``epochs 37/200 5/200`` for several, empty for none."""
    if not running:
        return ""
    pairs = " ".join(f"{done}/{planned}" for done, planned in running)
    return f"epoch{'s' if len(running) > 1 else ''} {pairs}"

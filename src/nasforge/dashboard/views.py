"""JSON views of stored experiments and trials, as the dashboard's page reads them.

Every value is plain JSON: floats that are NaN or infinite become ``null``, architectures are
their text form. The views are recomputed from the store's records on each request, so they
follow a search that another process is writing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from nasforge.objective import Objective, best_trial, is_better
from nasforge.pareto import pareto_front
from nasforge.result import Status
from nasforge.store.base import ExperimentRecord, TrialRecord

__all__ = ["experiment_summary", "trial_rows"]

_COUNTED = (Status.COMPLETE, Status.FAILED, Status.PRUNED, Status.INFEASIBLE, Status.RUNNING)


def _num(value: float | None) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    return value if value is not None and math.isfinite(value) else None


def _nums(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: _num(value) for key, value in values.items()}


def _value(trial: TrialRecord, objective: Objective) -> float | None:
    return _num(objective.value_in(trial.metrics, trial.costs))


def experiment_summary(
    record: ExperimentRecord,
    trials: Sequence[TrialRecord],
    *,
    front: Sequence[TrialRecord] | None = None,
) -> dict[str, Any]:
    """One experiment as listed: settings, trial counts by status and its best trial.

    The best trial is the one ``nasforge best`` shows (best first objective among COMPLETE
    trials at the highest fidelity). A multi-objective experiment also lists the numbers of
    the trials on its Pareto front: ``front`` when given (see
    :meth:`~nasforge.dashboard.cache.TrialCache.front`), else computed here.

    Raises:
        ConfigError: If the stored objectives cannot be parsed.
    """
    config = record.config
    stored = record.search
    objectives = stored.objectives
    counts = Counter(t.status for t in trials)
    best = best_trial(trials, objectives[0])
    summary: dict[str, Any] = {
        "name": record.name,
        "space": str(config.get("space", "-")),
        "strategy": str(config.get("strategy", "-")),
        "seed": stored.seed,
        "source": stored.source_name(),
        "objectives": [
            {"metric": o.metric, "direction": o.direction.value, "text": str(o)} for o in objectives
        ],
        "counts": {status.value: counts.get(status, 0) for status in _COUNTED},
        "total": len(trials),
        "last": trials[-1].number if trials else -1,
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": _value(best, objectives[0]),
            "arch": str(best.arch),
        },
        "created_at": record.created_at,
    }
    if len(objectives) > 1:
        if front is None:
            front = pareto_front(trials, objectives)
        summary["front"] = [t.number for t in front]
    return summary


def trial_rows(
    trials: Sequence[TrialRecord],
    objectives: Sequence[Objective],
    *,
    after: int = -1,
    refresh: Collection[int] = (),
) -> list[dict[str, Any]]:
    """The trials numbered above ``after`` or listed in ``refresh``, each with the
    best-so-far after it.

    ``best`` is the value of the first objective of the search's incumbent once the trial is
    stored (the trial ``nasforge best`` would have shown then), ``None`` while there is none.
    It is computed over all ``trials``, so a page that holds the earlier rows can append these.
    """
    objective = objectives[0]
    incumbent: TrialRecord | None = None
    rows: list[dict[str, Any]] = []
    for trial in trials:
        if is_better(trial, incumbent, objective):
            incumbent = trial
        if trial.number <= after and trial.number not in refresh:
            continue
        rows.append(
            {
                "number": trial.number,
                "status": trial.status.value,
                "stale": trial.lost,
                "attempt": trial.attempt,
                "arch": str(trial.arch),
                "key": trial.key,
                "values": [_value(trial, o) for o in objectives],
                "metrics": _nums(trial.metrics),
                "test_metrics": _nums(trial.test_metrics),
                "costs": _nums(trial.costs),
                "fidelity": trial.fidelity,
                "error": trial.error,
                "wall_time": _num(trial.wall_time),
                "finished_at": _num(trial.finished_at),
                "best": None if incumbent is None else _value(incumbent, objective),
                "best_number": None if incumbent is None else incumbent.number,
            }
        )
    return rows

"""The report section of a compression experiment: accuracy against sparsity, one line per
method with the dense model as the reference, and accuracy against measured latency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from nasforge.compression.plan import DENSE, step_of_key
from nasforge.reporting.plots import Chart, Mark, Series, fmt_number
from nasforge.result import Status
from nasforge.store.base import ExperimentRecord, TrialRecord

__all__ = ["compression_section"]

_COLORS = {
    "imp": "#2563eb",
    "magnitude": "#d97706",
    "random": "#6b7280",
    "channels": "#9333ea",
}
_SHAPES = {"imp": "circle", "magnitude": "square", "random": "cross", "channels": "triangle"}
_DENSE = "#0f172a"


def _points(
    trials: Sequence[TrialRecord], x_of: str, metric: str
) -> dict[str, list[tuple[float, float, TrialRecord]]]:
    """Each method's COMPLETE trials as ``(x, test metric, trial)``, ordered by x."""
    out: dict[str, list[tuple[float, float, TrialRecord]]] = {}
    for trial in trials:
        step = step_of_key(trial.key)
        value = trial.test_metrics.get(metric, math.nan)
        x = trial.costs.get(x_of, math.nan)
        if step is None or trial.status is not Status.COMPLETE:
            continue
        if math.isfinite(value) and math.isfinite(x):
            out.setdefault(step[0], []).append((float(x), float(value), trial))
    return {m: sorted(p, key=lambda item: item[0]) for m, p in out.items()}


def _tip(trial: TrialRecord, method: str, metric: str) -> str:
    sparsity = trial.costs.get("sparsity", 0.0)
    return (
        f"trial {trial.number}: {method}, sparsity {sparsity:.1%}, {metric} "
        f"{fmt_number(trial.test_metrics.get(metric, math.nan))}, "
        f"{fmt_number(trial.costs.get('nonzero_params', math.nan))} non-zero parameters"
    )


def _chart(
    points: dict[str, list[tuple[float, float, TrialRecord]]],
    *,
    title: str,
    x_label: str,
    metric: str,
    scale: float = 1.0,
    log: bool = False,
) -> str:
    chart = Chart(title=title, x_label=x_label, y_label=f"{metric} (test)", x_log=log)
    dense = points.get(DENSE, [])
    xs = [x * scale for p in points.values() for x, _, _ in p]
    for x, y, trial in dense[-1:]:
        span = (min(xs), max(xs)) if len(set(xs)) > 1 else (x * scale, x * scale)
        marks = tuple(Mark(v, y, _tip(trial, DENSE, metric)) for v in span)
        chart.add(
            Series(f"dense (trial {trial.number})", marks, style="line", color=_DENSE, dashed=True)
        )
    for method, rows in points.items():
        if method == DENSE:
            continue
        marks = tuple(Mark(x * scale, y, _tip(t, method, metric)) for x, y, t in rows)
        color = _COLORS.get(method, "#16a34a")
        chart.add(Series(method, marks, style="line", color=color))
        chart.add(Series("", marks, color=color, shape=_SHAPES.get(method, "circle")))
    return chart.svg()


def compression_section(record: ExperimentRecord, trials: Sequence[TrialRecord]) -> str:
    """The HTML section: test metric against sparsity (one line per method, the dense model
    dashed), and against measured latency when a method changes it (``channels``)."""
    metric = f"test_{record.objective.metric.removeprefix('val_')}"
    parts = [
        '<section id="compression"><h2>Compression</h2>',
        f'<p class="note">Trials compressed from experiment '
        f"{escape(str(record.config.get('compression', {}).get('of', '')))}: the test metric "
        "of each method at each sparsity (the share of weight matrices and kernels that are "
        "zero), with the dense model trained again as the reference (dashed). Hover a point "
        "for its trial.</p>",
    ]
    by_sparsity = _points(trials, "sparsity", metric)
    if not by_sparsity:
        parts.append('<p class="note">No COMPLETE compressed trial yet.</p></section>')
        return "\n".join(parts)
    charts = [
        _chart(
            by_sparsity,
            title=f"{metric} against sparsity",
            x_label="sparsity (%)",
            metric=metric,
            scale=100.0,
        )
    ]
    structured = _points(trials, "latency_ms", metric)
    if any(m not in (DENSE, "imp", "magnitude", "random") for m in structured):
        charts.append(
            _chart(
                structured,
                title=f"{metric} against measured latency",
                x_label="latency_ms (log scale)",
                metric=metric,
                log=True,
            )
        )
    parts.append('<div class="charts">' + "\n".join(charts) + "</div></section>")
    return "\n".join(parts)

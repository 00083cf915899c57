"""The self-contained HTML report of one experiment.

One file that works offline: no script, font, style sheet or image is fetched; charts and
architecture diagrams are inline SVG drawn by :mod:`nasforge.reporting.plots` and
:mod:`nasforge.reporting.diagram`. Every text read from the store (names, keys, reasons,
settings) is HTML-escaped.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from nasforge.compression.plan import compression_of
from nasforge.errors import ConfigError, NasforgeError
from nasforge.objective import Direction, Objective, is_better, rank_trials
from nasforge.pareto import objective_values, pareto_front
from nasforge.paths import store_label
from nasforge.reporting.compression import compression_section
from nasforge.reporting.diagram import diagram_svg
from nasforge.reporting.phase import phase_section
from nasforge.reporting.plots import Chart, Mark, Series, column_format, fmt_number
from nasforge.result import Status
from nasforge.spaces.base import SPACES, space_members
from nasforge.store.base import ExperimentRecord, PhaseRecord, TrialRecord
from nasforge.store.sql import open_store

__all__ = ["rank_trials", "render_report", "report", "store_label"]

COST_ORDER = ("params", "flops", "latency_ms")
"""Costs shown first, in this order; any others follow by name."""

_STATUS_STYLE: dict[Status, tuple[str, str]] = {  # colour, marker
    Status.COMPLETE: ("#2563eb", "circle"),
    Status.PRUNED: ("#d97706", "triangle"),
    Status.INFEASIBLE: ("#9333ea", "square"),
    Status.FAILED: ("#6b7280", "cross"),
}
_BEST = "#dc2626"
_STATUS_ORDER = (Status.COMPLETE, Status.PRUNED, Status.INFEASIBLE, Status.FAILED, Status.RUNNING)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #0f172a; background: #f8fafc; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 1.2rem; margin: 32px 0 8px; border-bottom: 1px solid #cbd5e1;
  padding-bottom: 4px; }
section > p, .note { color: #334155; max-width: 80ch; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { font-weight: 600; color: #334155; }
dl.facts dd { margin: 0; word-break: break-word; }
table { border-collapse: collapse; margin: 8px 0; background: #fff; font-size: 0.9rem; }
th, td { border: 1px solid #cbd5e1; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f1f5f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 0.85rem; word-break: break-all; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg { max-width: 100%; height: auto; background: #fff; border: 1px solid #e2e8f0; }
figure { margin: 12px 0 20px; }
figcaption { margin-bottom: 6px; font-size: 0.9rem; }
pre { background: #fff; border: 1px solid #e2e8f0; padding: 8px; overflow-x: auto;
  font-size: 0.8rem; }
.status-COMPLETE { color: #2563eb; } .status-PRUNED { color: #d97706; }
.status-INFEASIBLE { color: #9333ea; } .status-FAILED { color: #6b7280; }
"""


def _e(value: object) -> str:
    """``value`` as escaped HTML text (quotes included, for attributes too)."""
    return escape(str(value), quote=True)


def _when(timestamp: float | None) -> str:
    if timestamp is None or not math.isfinite(timestamp):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _direction_text(objective: Objective) -> str:
    better = "higher" if objective.direction is Direction.MAXIMIZE else "lower"
    return f"{objective} ({better} is better)"


def _axis_text(objective: Objective) -> str:
    better = "higher" if objective.direction is Direction.MAXIMIZE else "lower"
    return f"{objective.metric} ({better} is better)"


def _value(trial: TrialRecord, objective: Objective) -> float:
    return objective.value_in(trial.metrics, trial.costs)


def _header(
    record: ExperimentRecord,
    trials: Sequence[TrialRecord],
    objectives: Sequence[Objective],
    store: str | None,
) -> str:
    config = record.config
    stored = record.search
    counts = Counter(t.status for t in trials)
    statuses = ", ".join(
        f'<span class="status-{s.value}" data-status="{s.value}" data-count="{counts[s]}">'
        f"{s.value} {counts[s]}</span>"
        for s in _STATUS_ORDER
        if counts[s] or s is not Status.RUNNING
    )
    constraints = [str(c) for c in stored.constraints]
    started = [t.started_at for t in trials if t.started_at is not None]
    finished = [t.finished_at for t in trials if t.finished_at is not None]
    first = min(started) if started else None
    last = max(finished) if finished else None
    span = f" ({_duration(last - first)})" if first is not None and last is not None else ""
    strategy = stored.strategy or "–"
    if stored.strategy_options:
        strategy += " " + json.dumps(stored.strategy_options, sort_keys=True)
    facts = [
        ("space", _e(stored.space or "–")),
        ("strategy", _e(strategy)),
        ("seed", _e(config.get("seed", "–"))),
        (
            "objectives" if len(objectives) > 1 else "objective",
            ", ".join(f"<code>{_e(_direction_text(o))}</code>" for o in objectives),
        ),
        (
            "constraints",
            ", ".join(f"<code>{_e(c)}</code>" for c in constraints) if constraints else "none",
        ),
        ("data source", _e(stored.source_text())),
        ("trained on", _devices(trials)),
        ("store", _e(store) if store else "–"),
        (
            "trials",
            f'<span id="trial-count">{len(trials)}</span> ({statuses}); '
            f"{len({t.key for t in trials})} distinct architectures",
        ),
        ("created", _e(_when(record.created_at))),
        ("first trial started", _e(_when(first))),
        ("last trial finished", _e(_when(last)) + _e(span)),
    ]
    rows = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    full = json.dumps(dict(config), indent=2, sort_keys=True, default=str)
    return (
        f'<header id="summary"><p class="note">nasforge experiment report</p>'
        f'<h1 id="experiment-name">{_e(record.name)}</h1>\n<dl class="facts">\n{rows}\n</dl>\n'
        f"<details><summary>full configuration</summary><pre>{_e(full)}</pre></details>"
        "</header>"
    )


def _devices(trials: Sequence[TrialRecord]) -> str:
    """The devices the trials ran on, with their names and trial counts (``–`` for table
    look-ups, which run no model)."""
    counts = Counter((t.device, t.device_name) for t in trials if t.device)
    if not counts:
        return "–"
    return "; ".join(
        f"<code>{_e(device)}</code> {_e(name or '')} ({n} trials)"
        for (device, name), n in sorted(counts.items(), key=lambda item: -item[1])
    )


def _fidelity_note(trials: Sequence[TrialRecord]) -> str:
    fidelities = sorted({t.fidelity for t in trials if t.fidelity is not None})
    if len(fidelities) < 2:
        return ""
    listed = ", ".join(str(f) for f in fidelities)
    return (
        f'<p class="note">Trials ran at several fidelities ({_e(listed)}). As for '
        "<code>nasforge best</code>, the best trial is the best one at the highest fidelity "
        "reached so far, so the curve can drop when a higher fidelity first completes.</p>"
    )


def _best_so_far(
    ordered: Sequence[TrialRecord], objective: Objective, position: Mapping[int, float]
) -> tuple[list[Mark], list[Mark]]:
    """The step curve (one mark per change, and the last position) and the new-best marks."""
    steps: list[Mark] = []
    news: list[Mark] = []
    best: TrialRecord | None = None
    for trial in ordered:
        if is_better(trial, best, objective):
            best = trial
            value = _value(trial, objective)
            tip = (
                f"trial {trial.number}: new best {objective.metric} = {fmt_number(value)}"
                f" ({trial.key})"
            )
            steps.append(Mark(position[trial.number], value, tip))
            news.append(steps[-1])
    if best is not None and ordered:
        steps.append(Mark(position[ordered[-1].number], _value(best, objective)))
    return steps, news


def _progress(trials: Sequence[TrialRecord], objective: Objective) -> str:
    label = _axis_text(objective)
    parts = ['<section id="progress"><h2>Best so far</h2>', _fidelity_note(trials)]
    by_number = sorted(trials, key=lambda t: t.number)
    steps, news = _best_so_far(by_number, objective, {t.number: t.number for t in by_number})
    if not steps:
        parts.append(f'<p class="note">No COMPLETE trial with a finite {_e(objective.metric)}.</p>')
        return "\n".join(parts) + "</section>"
    charts = [
        Chart(title=f"best {objective.metric} by trial", x_label="trial number", y_label=label)
        .add(Series("best so far", tuple(steps), style="step", color=_BEST))
        .add(Series("new best", tuple(news), color=_BEST))
    ]
    timed = sorted(
        (t for t in trials if t.finished_at is not None),
        key=lambda t: (t.finished_at or 0.0, t.number),
    )
    if timed:
        starts = [t.started_at for t in timed if t.started_at is not None]
        origin = min([*starts, *(t.finished_at or 0.0 for t in timed)])
        total = max(t.finished_at or 0.0 for t in timed) - origin
        unit, scale = (
            ("s", 1.0) if total < 120 else ("min", 60.0) if total < 7200 else ("h", 3600.0)
        )
        at = {t.number: ((t.finished_at or origin) - origin) / scale for t in timed}
        steps, news = _best_so_far(timed, objective, at)
        if steps:
            charts.append(
                Chart(
                    title=f"best {objective.metric} by wall time",
                    x_label=f"wall time since the first trial started ({unit})",
                    y_label=label,
                )
                .add(Series("best so far", tuple(steps), style="step", color=_BEST))
                .add(Series("new best", tuple(news), color=_BEST))
            )
    parts.append('<div class="charts">' + "\n".join(c.svg() for c in charts) + "</div>")
    return "\n".join(parts) + "</section>"


def _status_series(
    trials: Sequence[TrialRecord],
    x_of: Callable[[TrialRecord], float],
    objective: Objective,
    x_name: str,
) -> tuple[list[Series], Counter[Status]]:
    """One scatter series per status, and per status how many trials have no point."""
    missing: Counter[Status] = Counter()
    series: list[Series] = []
    for status in _STATUS_ORDER:
        marks: list[Mark] = []
        for t in trials:
            if t.status is not status:
                continue
            x, y = x_of(t), _value(t, objective)
            if not (math.isfinite(x) and math.isfinite(y)):
                missing[status] += 1
                continue
            tip = (
                f"trial {t.number} ({status.value}): {objective.metric} = {fmt_number(y)}, "
                f"{x_name} = {fmt_number(x)}; {t.key}"
            )
            if t.error:
                tip += f"; {t.error}"
            marks.append(Mark(x, y, tip))
        if marks:
            color, shape = _STATUS_STYLE.get(status, ("#000000", "circle"))
            series.append(Series(status.value, tuple(marks), color=color, shape=shape))
    return series, missing


def _missing_note(missing: Counter[Status], what: str) -> str:
    if not missing:
        return ""
    listed = ", ".join(f"{s.value} {n}" for s, n in sorted(missing.items()))
    return f'<p class="note">Not drawn ({_e(what)}): {_e(listed)}.</p>'


def _costs_present(trials: Iterable[TrialRecord]) -> list[str]:
    names = {name for t in trials for name in t.costs}
    return [c for c in COST_ORDER if c in names] + sorted(names - set(COST_ORDER))


def _scatter_section(trials: Sequence[TrialRecord], objective: Objective) -> str:
    label = _axis_text(objective)
    parts = [
        '<section id="trials"><h2>All trials</h2>',
        '<p class="note">Every trial with a finite value, by status: COMPLETE (circles), '
        "PRUNED (triangles), INFEASIBLE (squares: violates a hard constraint), FAILED "
        "(crosses). Hover a point for its trial.</p>",
    ]
    series, missing = _status_series(trials, lambda t: float(t.number), objective, "trial")
    charts: list[str] = []
    if series:
        chart = Chart(title=f"{objective.metric} by trial", x_label="trial number", y_label=label)
        for s in series:
            chart.add(s)
        charts.append(chart.svg())
    notes = [_missing_note(missing, f"no finite {objective.metric}")]
    for cost in _costs_present(trials):
        if cost == objective.metric:
            continue

        def x_of(t: TrialRecord, cost: str = cost) -> float:
            return float(t.costs.get(cost, math.nan))

        series, _ = _status_series(trials, x_of, objective, cost)
        if not series:
            continue
        values = [m.x for s in series for m in s.marks]
        log = min(values) > 0 and max(values) / min(values) >= 20
        chart = Chart(
            title=f"{objective.metric} against {cost}",
            x_label=cost + (" (log scale)" if log else ""),
            y_label=label,
            x_log=log,
        )
        for s in series:
            chart.add(s)
        charts.append(chart.svg())
    if not charts:
        parts.append(f'<p class="note">No trial has a finite {_e(objective.metric)} yet.</p>')
    else:
        parts.append('<div class="charts">' + "\n".join(charts) + "</div>")
    parts += notes
    parts.append(_reasons(trials))
    return "\n".join(parts) + "</section>"


def _reasons(trials: Sequence[TrialRecord]) -> str:
    """The most frequent reasons of trials that did not complete."""
    reasons = Counter(
        (t.status.value, t.error or "(no reason recorded)")
        for t in trials
        if t.status is not Status.COMPLETE
    )
    if not reasons:
        return ""
    rows = "\n".join(
        f'<tr><td class="status-{_e(status)}">{_e(status)}</td><td class="num">{n}</td>'
        f'<td class="key">{_e(reason)}</td></tr>'
        for (status, reason), n in reasons.most_common(10)
    )
    more = len(reasons) - 10
    tail = f'<p class="note">…and {more} other reasons.</p>' if more > 0 else ""
    return (
        '<h3>Trials that did not complete</h3><table id="reasons"><thead><tr><th>status</th>'
        f"<th>trials</th><th>reason</th></tr></thead><tbody>\n{rows}\n</tbody></table>{tail}"
    )


def _num_cell(value: float, column: str, fmt: Callable[[float], str] = fmt_number) -> str:
    return f'<td class="num" data-col="{_e(column)}" data-value="{value!r}">{fmt(value)}</td>'


def _trial_table(
    table_id: str, rows: Sequence[TrialRecord], objectives: Sequence[Objective], *, ranks: bool
) -> str:
    """A table of trials: objective values, test metrics, costs and canonical keys."""
    metrics = [o.metric for o in objectives]
    tests = sorted({k for t in rows for k in t.test_metrics})
    costs = [c for c in _costs_present(rows) if c not in metrics]
    fidelity = any(t.fidelity is not None for t in rows)
    head = (["rank"] if ranks else []) + ["trial"] + (["fidelity"] if fidelity else [])
    head += [*metrics, *tests, *costs, "canonical key"]
    lines = [
        f'<table id="{table_id}"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
    ]
    columns: dict[str, list[float]] = {name: [] for name in (*metrics, *tests, *costs)}
    for t in rows:  # one format per column (its values line up)
        for name, value in zip(metrics, objective_values(t, objectives), strict=True):
            columns[name].append(value)
        for name in tests:
            columns[name].append(t.test_metrics.get(name, math.nan))
        for name in costs:
            columns[name].append(t.costs.get(name, math.nan))
    formats = {name: column_format(values) for name, values in columns.items()}
    for i, t in enumerate(rows):
        cells = [f'<td class="num" data-col="rank">{i + 1}</td>'] if ranks else []
        cells.append(f'<td class="num" data-col="trial">{t.number}</td>')
        if fidelity:
            shown = "–" if t.fidelity is None else t.fidelity
            cells.append(f'<td class="num" data-col="fidelity">{shown}</td>')
        cells += [_num_cell(columns[name][i], name, formats[name]) for name in columns]
        cells.append(f'<td class="key" data-col="key">{_e(t.key)}</td>')
        lines.append(f'<tr data-trial="{t.number}">' + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _pareto_section(trials: Sequence[TrialRecord], objectives: Sequence[Objective]) -> str:
    front = pareto_front(trials, objectives)
    first, second = objectives[0], objectives[1]
    parts = [
        '<section id="pareto"><h2>Pareto front</h2>',
        f'<p class="note">The {len(front)} non-dominated COMPLETE trials on '
        f"{_e(', '.join(str(o) for o in objectives))}"
        + (
            " (drawn on the first two objectives)"
            if len(objectives) > 2
            else "; the dashed line joins them"
        )
        + ". INFEASIBLE, FAILED and PRUNED trials are never on the front.</p>",
    ]
    if not front:
        parts.append('<p class="note">No COMPLETE trial has finite values of every objective.</p>')
        return "\n".join(parts) + "</section>"
    level = max(t.fidelity or 0 for t in front)
    comparable = [t for t in trials if (t.fidelity or 0) == level]
    chart = Chart(
        title=f"{first.metric} against {second.metric}",
        x_label=_axis_text(first),
        y_label=_axis_text(second),
    )
    on_front = {t.number for t in front}
    for status in (Status.COMPLETE, Status.INFEASIBLE):
        marks = tuple(
            Mark(_value(t, first), _value(t, second), f"trial {t.number} ({status.value}); {t.key}")
            for t in comparable
            if t.status is status and t.number not in on_front
        )
        if marks:
            color = "#94a3b8" if status is Status.COMPLETE else _STATUS_STYLE[status][0]
            name = "dominated" if status is Status.COMPLETE else "INFEASIBLE"
            chart.add(Series(name, marks, color=color, shape=_STATUS_STYLE[status][1]))
    points = sorted(
        (
            Mark(
                _value(t, first),
                _value(t, second),
                f"trial {t.number}: {first.metric} = {fmt_number(_value(t, first))}, "
                f"{second.metric} = {fmt_number(_value(t, second))}; {t.key}",
            )
            for t in front
        ),
        key=lambda m: (m.x, m.y),
    )
    if len(objectives) == 2 and len(points) > 1:
        chart.add(Series("", tuple(points), style="line", color=_BEST, dashed=True))
    chart.add(Series("Pareto front", tuple(points), color=_BEST))
    parts.append(chart.svg())
    parts.append(_trial_table("front-table", front, objectives, ranks=False))
    return "\n".join(parts) + "</section>"


def _diagrams(record: ExperimentRecord, rows: Sequence[TrialRecord]) -> str:
    parts = ['<section id="architectures"><h2>Top architectures</h2>']
    try:
        space = SPACES.create(record.search.space)
    except NasforgeError as exc:
        parts.append(f'<p class="note">No diagrams: {_e(exc)}</p>')
        return "\n".join(parts) + "</section>"
    for rank, t in enumerate(rows, start=1):
        caption = f"#{rank} · trial {t.number} · {t.arch}"
        try:
            drawing = diagram_svg(space.graph(t.arch), uid=f"arch{rank}", title=caption)
        except (NotImplementedError, NasforgeError, ValueError) as exc:
            drawing = f'<p class="note">No diagram: {_e(exc)}</p>'
        parts.append(
            f'<figure id="arch-{rank}" data-trial="{t.number}"><figcaption><code>'
            f"{_e(caption)}</code><br>canonical key <code>{_e(t.key)}</code></figcaption>"
            f"{drawing}</figure>"
        )
    if not rows:
        parts.append('<p class="note">No COMPLETE trial to draw yet.</p>')
    return "\n".join(parts) + "</section>"


def render_report(
    record: ExperimentRecord,
    trials: Sequence[TrialRecord],
    *,
    top: int = 10,
    store: str | None = None,
    generated_at: float | None = None,
    phase: Mapping[str, Sequence[PhaseRecord]] | None = None,
) -> str:
    """The report of an experiment as one self-contained HTML document.

    Args:
        record: The experiment.
        trials: Its trials (any order).
        top: How many of the best architectures to tabulate and draw.
        store: Where the trials were read from, shown in the header (no password).
        generated_at: Time stamp shown in the footer (default: now).
        phase: The records of a one-shot search's supernet phase, by kind (a section on it).

    Raises:
        ConfigError: If ``top`` is not an integer >= 1.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"the number of top architectures must be an integer >= 1, got {top!r}")
    trials = sorted(trials, key=lambda t: t.number)
    objectives = record.objectives
    primary = objectives[0]
    ranked = rank_trials(trials, primary)[:top]
    sections = [
        _header(record, trials, objectives, store),
        _progress(trials, primary),
        _scatter_section(trials, primary),
    ]
    if phase:
        sections.append(phase_section(phase))
    if compression_of(record) is not None:
        sections.append(compression_section(record, trials))
    if len(objectives) > 1:
        sections.append(_pareto_section(trials, objectives))
    fidelity_rule = (
        " (highest fidelity first, as <code>nasforge best</code> ranks)"
        if len({t.fidelity for t in ranked}) > 1
        else ""
    )
    sections.append(
        f'<section id="top"><h2>Top {len(ranked)} by {_e(_direction_text(primary))}</h2>'
        f'<p class="note">COMPLETE trials only{fidelity_rule}; test metrics are for reporting '
        "and were never shown to the strategy.</p>"
        + _trial_table("top-table", ranked, objectives, ranks=True)
        + "</section>"
    )
    sections.append(_diagrams(record, ranked))
    stamp = _when(time.time() if generated_at is None else generated_at)
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>nasforge report: {_e(record.name)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>\n{body}\n"
        f'<footer><p class="note">Generated by nasforge on {_e(stamp)}.</p></footer>'
        "\n</main></body></html>\n"
    )


def _check_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.is_dir():
        raise ConfigError(
            f"--out {path} is a directory; give the HTML file to write, e.g. {path / 'report.html'}"
        )
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write the report to {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the report to {path}: directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write the report to {path}: the file is not writable")
    return path


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write the report to {path}: {exc.strerror or exc}; choose another --out"
        ) from None


def report(
    name: str,
    out: str | os.PathLike[str],
    *,
    db: str | os.PathLike[str] | None = None,
    top: int = 10,
) -> Path:
    """Write a self-contained HTML report of experiment ``name`` to ``out``.

    The report holds the settings, the best-so-far curves by trial and by wall time, every
    trial against the objective and each cost, the Pareto front of a multi-objective search,
    the top ``top`` architectures as a table and as diagrams. It works offline: no external
    resource is referenced.

    Example:
        >>> nasforge.report("my-run", "report.html", db="runs.db", top=5)
        PosixPath('report.html')

    Args:
        name: The experiment.
        out: The HTML file to write (replaced whole if it exists).
        db: Store path or SQLAlchemy URL; defaults to ``$NASFORGE_DB`` or ``nasforge.db``.
        top: How many of the best architectures to tabulate and draw.

    Returns:
        The path written.

    Raises:
        ConfigError: For an unknown experiment, ``top`` < 1, or an ``out`` that cannot be
            written (nothing is written then).
        StoreError: If the store cannot be opened or read.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"the number of top architectures must be an integer >= 1, got {top!r}")
    path = _check_out(out)
    store = open_store(db, create=False)
    try:
        record = store.get_experiment(name)
        trials = space_members(record, store.trials(record.id))
        phase = {k: store.phase(record.id, k) for k in ("epoch", "generation", "result")}
        target = store.target
    finally:
        store.close()
    text = render_report(record, trials, top=top, store=store_label(target), phase=phase)
    _write(path, text)
    return path

"""The report's section on a one-shot search's supernet phase: what it derived, its
validation curve on the shared weights, and how the architecture weights evolved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from nasforge.architecture import Architecture
from nasforge.errors import NasforgeError
from nasforge.reporting.plots import Chart, Mark, Series
from nasforge.store.base import PhaseRecord

__all__ = ["phase_section"]

_PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#d97706",
    "#9333ea",
    "#0891b2",
    "#be185d",
    "#4b5563",
    "#65a30d",
)


def _line(name: str, points: Sequence[tuple[float, float]], color: str) -> Series:
    marks = tuple(Mark(x, y, f"{name}: {y:.4g} at {x:g}") for x, y in points)
    return Series(name, marks, style="line", color=color)


def _points(records: Sequence[PhaseRecord], key: str) -> list[tuple[float, float]]:
    """(step, value) of the records holding a number under ``key``."""
    return [
        (float(r.step), float(r.data[key]))
        for r in records
        if isinstance(r.data.get(key), int | float)
    ]


def phase_section(records: Mapping[str, Sequence[PhaseRecord]]) -> str:
    """The section's HTML (empty when the search had no supernet phase).

    Args:
        records: The phase's stored records by kind (``epoch``, ``generation``, ``result``).
    """
    epochs = list(records.get("epoch", ()))
    result = list(records.get("result", ()))
    generations = list(records.get("generation", ()))
    if not epochs and not result:
        return ""
    parts = ['<section id="supernet"><h2>Supernet phase</h2>']
    if result:
        done = result[-1].data
        parts.append(
            f"<p>{escape(str(done.get('method')))}: {escape(str(done.get('epochs')))} supernet "
            f"epochs in {float(done.get('seconds', 0.0)):.1f} s "
            f"({escape(str(done.get('stopped')))}). Derived, then trained from scratch:</p><ul>"
        )
        for arch, free in zip(done.get("derived", []), done.get("free", []), strict=False):
            try:
                shown = str(Architecture.from_dict(arch))
            except NasforgeError:
                shown = repr(arch)
            parts.append(
                f"<li><code>{escape(shown)}</code>: parameter-free ops (skip/none) "
                f"{float(free):.0%}</li>"
            )
        parts.append("</ul>")
    else:
        parts.append('<p class="note">The phase has not finished yet.</p>')
    charts: list[Chart] = []
    curve, loss = _points(epochs, "val_acc"), _points(epochs, "train_loss")
    if curve:
        charts.append(
            Chart(
                title="derived architecture on the shared weights",
                x_label="supernet epoch",
                y_label="validation accuracy",
            ).add(_line("val_acc", curve, _PALETTE[0]))
        )
    if loss:
        charts.append(
            Chart(title="supernet training loss", x_label="supernet epoch", y_label="loss").add(
                _line("train_loss", loss, _PALETTE[1])
            )
        )
    free = _points(epochs, "free")
    if free:
        charts.append(
            Chart(
                title="parameter-free ops in the derived architecture",
                x_label="supernet epoch",
                y_label="share (skip/none)",
            ).add(_line("parameter-free share", free, _PALETTE[3]))
        )
    expected, derived = _points(epochs, "expected_latency_ms"), _points(epochs, "latency_pred_ms")
    if expected or derived:  # ProxylessNAS: the latency term it trades accuracy against
        chart = Chart(
            title="predicted latency (per-op table)", x_label="supernet epoch", y_label="ms"
        )
        if expected:
            chart.add(_line("expected under the weights", expected, _PALETTE[4]))
        if derived:
            chart.add(_line("derived architecture", derived, _PALETTE[5]))
        charts.append(chart)
    best = _points(generations, "best_val_acc")
    if best:
        charts.append(
            Chart(
                title="evolution on the shared weights",
                x_label="generation",
                y_label="best validation accuracy",
            ).add(_line("best", best, _PALETTE[2]))
        )
    options = result[-1].data.get("decisions") if result else None
    charts.extend(_weight_charts(epochs, options if isinstance(options, dict) else {}))
    charts.extend(_weight_charts(epochs, {}, key="edge_weights", what="edge weights"))
    if charts:
        parts.append('<div class="charts">' + "\n".join(c.svg() for c in charts) + "</div>")
    return "\n".join(parts) + "</section>"


def _weight_charts(
    epochs: Sequence[PhaseRecord],
    options: Mapping[str, object],
    *,
    key: str = "weights",
    what: str = "architecture weights",
) -> list[Chart]:
    """One chart per decision with more than one option: each option's softmax weight,
    labelled with the option (an op, or an input node) when the result names them. With
    ``key="edge_weights"``: one chart per group of edges a node sums (PC-DARTS), one line
    per edge."""
    names: dict[str, int] = {}
    for r in epochs:
        weights = r.data.get(key)
        if isinstance(weights, dict):
            for name, values in weights.items():
                if isinstance(values, list) and len(values) > 1:
                    names.setdefault(str(name), len(values))
    charts = []
    for name, count in names.items():
        chart = Chart(title=f"{what} of {name}", x_label="supernet epoch", y_label="weight")
        for option in range(count):
            points = []
            for r in epochs:
                values = r.data.get(key, {}).get(name)
                if isinstance(values, list) and len(values) == count:
                    value = values[option]
                    if isinstance(value, int | float):
                        points.append((float(r.step), float(value)))
            if points:
                labels = options.get(name)
                if isinstance(labels, list) and len(labels) == count:
                    label = str(labels[option])
                elif key == "edge_weights" and len(name.split("+")) == count:
                    label = name.split("+")[option]
                else:
                    label = f"option {option}"
                if name.startswith("input_") and label.isdigit():
                    label = "raw input" if label == "0" else f"node {label}"
                chart.add(_line(label, points, _PALETTE[option % len(_PALETTE)]))
        if chart.series:
            charts.append(chart)
    return charts

"""Charts as inline SVG, drawn by hand: axes with ticks, step lines, lines and scatters.

No plotting library and no script: each chart is one ``<svg>`` element (without a namespace
URL, which HTML does not need), every text in it is escaped, and a point's tooltip is its
``<title>``, which browsers show on hover.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Chart", "Mark", "Series", "column_format", "fmt_number", "linear_ticks", "log_ticks"]

WIDTH, HEIGHT = 520, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 66, 18, 48, 46
_FONT = 'font-family="system-ui,sans-serif"'

SHAPES = ("circle", "square", "triangle", "cross")


def _n(value: float) -> str:
    """A pixel coordinate as compact SVG text."""
    return f"{value:.1f}"


def fmt_number(value: float) -> str:
    """A value for tables and tooltips: 4 significant digits, thousands separated when large."""
    if not math.isfinite(value):
        return "–"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def column_format(values: Iterable[float]) -> Callable[[float], str]:
    """One format for a column of a table, so that its numbers line up: whole numbers with
    thousands separated for counts (or values of 10,000 and more), else as many decimals as 4
    significant digits of the column's largest value need (``0.8020`` beside ``0.8033``)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return fmt_number
    largest = max(abs(v) for v in finite)
    if largest >= 1e4 or all(float(v).is_integer() for v in finite):
        return lambda v: f"{v:,.0f}" if math.isfinite(v) else "–"
    digits = 1 + math.floor(math.log10(largest)) if largest > 0 else 1
    decimals = min(8, max(0, 4 - digits))
    return lambda v: f"{v:.{decimals}f}" if math.isfinite(v) else "–"


def _nice_step(span: float, count: int) -> float:
    """The 1-2-5 multiple of a power of ten closest above ``span / count``."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10.0 * power


def linear_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], list[str]]:
    """About ``count`` round tick values in ``[low, high]`` and their labels (k/M/G scaled)."""
    if not high > low:
        return [low], [f"{low:.4g}"]
    step = _nice_step(high - low, count)
    first = math.ceil(low / step - 1e-9)
    values: list[float] = []
    k = first
    while k * step <= high + step * 1e-9:
        values.append(round(k * step, 12))
        k += 1
    top = max(abs(v) for v in values)
    factor, suffix = 1.0, ""
    for f, s in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if top >= f:
            factor, suffix = f, s
            break
    decimals = max(0, -math.floor(math.log10(step / factor) + 1e-9))
    labels = [f"{v / factor:.{decimals}f}{suffix}" for v in values]
    return values, labels


def _compact(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Powers of ten in ``[low, high]`` (both > 0), with 2 and 5 multiples on short ranges."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    multiples = (1.0,) if last - first > 2 else (1.0, 2.0, 5.0)
    values = [
        m * 10.0**e
        for e in range(first, last + 1)
        for m in multiples
        if low * (1 - 1e-9) <= m * 10.0**e <= high * (1 + 1e-9)
    ]
    if len(values) < 2:
        return linear_ticks(low, high)
    return values, [_compact(v) for v in values]


@dataclass(frozen=True, slots=True)
class Mark:
    """One data point; ``tip`` is its tooltip (plain text, escaped when drawn)."""

    x: float
    y: float
    tip: str = ""


@dataclass(frozen=True, slots=True)
class Series:
    """Points drawn one way, with a legend entry.

    Attributes:
        name: Legend text.
        marks: The points, in drawing order (x order for lines and steps).
        style: ``"scatter"``, ``"line"`` (straight segments) or ``"step"`` (horizontal, then
            vertical: a best-so-far curve).
        color: A CSS colour.
        shape: Marker of a scatter: ``circle``, ``square``, ``triangle`` or ``cross``.
        dashed: Draw a line or step dashed.
    """

    name: str
    marks: tuple[Mark, ...]
    style: str = "scatter"
    color: str = "#2563eb"
    shape: str = "circle"
    dashed: bool = False

    def __post_init__(self) -> None:
        if self.style not in ("scatter", "line", "step"):
            raise ValueError(f"style must be scatter, line or step, got {self.style!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")


@dataclass(frozen=True, slots=True)
class _Scale:
    """Maps data values in ``[low, high]`` (log10 of them when ``log``) to pixels."""

    low: float
    high: float
    start: float
    end: float
    log: bool

    @classmethod
    def fit(cls, values: Sequence[float], start: float, end: float, *, log: bool) -> _Scale:
        data = [math.log10(v) for v in values] if log else list(values)
        low, high = min(data), max(data)
        flat = 0.5 if log else (abs(low) * 0.1 or 1.0)  # one value: a span around it
        pad = (high - low) * 0.05 if high > low else flat
        return cls(low - pad, high + pad, start, end, log)

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start)

    def ticks(self) -> tuple[list[float], list[str]]:
        if self.log:
            return log_ticks(10.0**self.low, 10.0**self.high)
        return linear_ticks(self.low, self.high)


class Chart:
    """An x/y chart of several series, rendered by :meth:`svg`.

    Args:
        title: Shown above the plot.
        x_label: Text under the x axis.
        y_label: Text beside the y axis.
        x_log: Logarithmic x axis (only if every x is > 0; linear otherwise).
        y_log: Logarithmic y axis (same rule).
        width: Width of the drawing in pixels (it scales down with the page).
        height: Height in pixels.
    """

    def __init__(
        self,
        *,
        title: str,
        x_label: str,
        y_label: str,
        x_log: bool = False,
        y_log: bool = False,
        width: int = WIDTH,
        height: int = HEIGHT,
    ) -> None:
        self.title = title
        self.x_label = x_label
        self.y_label = y_label
        self.x_log = x_log
        self.y_log = y_log
        self.width = width
        self.height = height
        self.series: list[Series] = []

    def add(self, series: Series) -> Chart:
        """Add a series (drawn over the earlier ones); returns the chart."""
        self.series.append(series)
        return self

    def svg(self) -> str:
        """The chart as one ``<svg>`` element.

        Raises:
            ValueError: If no series has a point with finite coordinates.
        """
        marks = [
            m for s in self.series for m in s.marks if math.isfinite(m.x) and math.isfinite(m.y)
        ]
        if not marks:
            raise ValueError(f"chart {self.title!r} has no point to draw")
        xs, ys = [m.x for m in marks], [m.y for m in marks]
        x_log = self.x_log and min(xs) > 0
        y_log = self.y_log and min(ys) > 0
        plot_right, plot_bottom = self.width - _RIGHT, self.height - _BOTTOM
        sx = _Scale.fit(xs, _LEFT, plot_right, log=x_log)
        sy = _Scale.fit(ys, plot_bottom, _TOP, log=y_log)
        parts = [
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{escape(self.title)}">',
            f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>',
            f'<text x="{_LEFT}" y="18" {_FONT} font-size="14" font-weight="600" '
            f'fill="#0f172a">{escape(self.title)}</text>',
        ]
        parts += self._axes(sx, sy, plot_right, plot_bottom)
        parts += self._legend()
        for series in self.series:
            parts += self._draw(series, sx, sy)
        parts.append("</svg>")
        return "\n".join(parts)

    def _axes(self, sx: _Scale, sy: _Scale, right: float, bottom: float) -> list[str]:
        out = [
            f'<rect x="{_LEFT}" y="{_TOP}" width="{_n(right - _LEFT)}" '
            f'height="{_n(bottom - _TOP)}" fill="none" stroke="#94a3b8"/>'
        ]
        values, labels = sx.ticks()
        for value, label in zip(values, labels, strict=True):
            x = sx(value)
            if not _LEFT - 0.5 <= x <= right + 0.5:
                continue
            out.append(
                f'<line x1="{_n(x)}" y1="{_TOP}" x2="{_n(x)}" y2="{_n(bottom)}" stroke="#e2e8f0"/>'
            )
            out.append(
                f'<text x="{_n(x)}" y="{_n(bottom + 15)}" {_FONT} font-size="11" '
                f'text-anchor="middle" fill="#334155">{escape(label)}</text>'
            )
        values, labels = sy.ticks()
        for value, label in zip(values, labels, strict=True):
            y = sy(value)
            if not _TOP - 0.5 <= y <= bottom + 0.5:
                continue
            out.append(
                f'<line x1="{_LEFT}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" stroke="#e2e8f0"/>'
            )
            out.append(
                f'<text x="{_LEFT - 5}" y="{_n(y + 4)}" {_FONT} font-size="11" '
                f'text-anchor="end" fill="#334155">{escape(label)}</text>'
            )
        out.append(
            f'<text x="{_n((_LEFT + right) / 2)}" y="{self.height - 8}" {_FONT} font-size="12" '
            f'text-anchor="middle" fill="#0f172a">{escape(self.x_label)}</text>'
        )
        middle = (_TOP + bottom) / 2
        out.append(
            f'<text x="14" y="{_n(middle)}" {_FONT} font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 14 {_n(middle)})" fill="#0f172a">'
            f"{escape(self.y_label)}</text>"
        )
        return out

    def _legend(self) -> list[str]:
        out: list[str] = []
        x = float(_LEFT)
        for series in self.series:
            if not series.name:
                continue
            y = 34.0
            if series.style == "scatter":
                out.append(_marker(series.shape, x + 6, y - 4, series.color))
            else:
                dash = ' stroke-dasharray="5 3"' if series.dashed else ""
                out.append(
                    f'<line x1="{_n(x)}" y1="{_n(y - 4)}" x2="{_n(x + 14)}" y2="{_n(y - 4)}" '
                    f'stroke="{series.color}" stroke-width="2"{dash}/>'
                )
            out.append(
                f'<text x="{_n(x + 18)}" y="{_n(y)}" {_FONT} font-size="11" fill="#334155">'
                f"{escape(series.name)}</text>"
            )
            x += 30 + 6.2 * len(series.name)
        return out

    def _draw(self, series: Series, sx: _Scale, sy: _Scale) -> list[str]:
        marks = [m for m in series.marks if math.isfinite(m.x) and math.isfinite(m.y)]
        if not marks:
            return []
        if series.style == "scatter":
            out = [f'<g class="series" data-series="{escape(series.name)}">']
            for m in marks:
                shape = _marker(series.shape, sx(m.x), sy(m.y), series.color)
                tip = f"<title>{escape(m.tip)}</title>" if m.tip else ""
                out.append(f"<g>{shape}{tip}</g>")
            out.append("</g>")
            return out
        path = [f"M{_n(sx(marks[0].x))},{_n(sy(marks[0].y))}"]
        for m in marks[1:]:
            if series.style == "step":
                path.append(f"H{_n(sx(m.x))}V{_n(sy(m.y))}")
            else:
                path.append(f"L{_n(sx(m.x))},{_n(sy(m.y))}")
        dash = ' stroke-dasharray="5 3"' if series.dashed else ""
        return [
            f'<path class="series" data-series="{escape(series.name)}" d="{"".join(path)}" '
            f'fill="none" stroke="{series.color}" stroke-width="2"{dash}/>'
        ]


def _marker(shape: str, x: float, y: float, color: str) -> str:
    """A scatter marker of ``shape`` centred on ``(x, y)``."""
    if shape == "square":
        return (
            f'<rect x="{_n(x - 3.5)}" y="{_n(y - 3.5)}" width="7" height="7" fill="{color}" '
            'fill-opacity="0.8"/>'
        )
    if shape == "triangle":
        return (
            f'<path d="M{_n(x)},{_n(y - 4.5)}L{_n(x + 4.5)},{_n(y + 3.5)}L{_n(x - 4.5)},'
            f'{_n(y + 3.5)}Z" fill="{color}" fill-opacity="0.8"/>'
        )
    if shape == "cross":
        return (
            f'<path d="M{_n(x - 3.5)},{_n(y - 3.5)}L{_n(x + 3.5)},{_n(y + 3.5)}M{_n(x - 3.5)},'
            f'{_n(y + 3.5)}L{_n(x + 3.5)},{_n(y - 3.5)}" stroke="{color}" stroke-width="2"/>'
        )
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="{color}" fill-opacity="0.75"/>'

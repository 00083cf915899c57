"""The hand-drawn SVG charts: ticks, scales, step lines, markers, escaping."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest

from nasforge.reporting.plots import (
    Chart,
    Mark,
    Series,
    column_format,
    fmt_number,
    linear_ticks,
    log_ticks,
)


@pytest.mark.parametrize(
    ("low", "high", "labels"),
    [
        (0.0, 1.0, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (0.803, 0.861, ["0.82", "0.84", "0.86"]),
        (0.0, 30.0, ["0", "10", "20", "30"]),
        (0.0, 17.0, ["0", "5", "10", "15"]),
        (1.2e5, 9.9e5, ["200k", "400k", "600k", "800k"]),
        (2e6, 3.1e6, ["2.0M", "2.5M", "3.0M"]),
    ],
)
def test_linear_ticks_are_round_and_inside(low: float, high: float, labels: list[str]) -> None:
    values, texts = linear_ticks(low, high)
    assert texts == labels
    assert all(low - 1e-9 <= v <= high + 1e-9 for v in values)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    assert len(steps) == 1


def test_log_ticks_cover_decades() -> None:
    values, texts = log_ticks(3e3, 2e6)
    assert values == [1e4, 1e5, 1e6] and texts == ["10k", "100k", "1M"]
    values, texts = log_ticks(1.5, 40)  # under three decades: 2 and 5 multiples too
    assert texts == ["2", "5", "10", "20"]


def test_fmt_number() -> None:
    assert fmt_number(0.812345) == "0.8123"
    assert fmt_number(123456.0) == "123,456"
    assert fmt_number(math.nan) == "–"


def _series(svg: ET.Element, name: str) -> ET.Element:
    return next(g for g in svg.iter("g") if g.get("data-series") == name)


def test_chart_draws_steps_and_scatters_in_the_plot_area() -> None:
    chart = Chart(title='a "b" <c>', x_label="trial", y_label="val_acc & more")
    steps = (Mark(0, 0.5), Mark(3, 0.7), Mark(9, 0.8), Mark(12, 0.8))
    chart.add(Series("best", steps, style="step", color="#f00"))
    chart.add(Series("trials", tuple(Mark(i, 0.4 + i / 30, f"trial {i} <x>") for i in range(13))))
    chart.add(Series("failed", (Mark(4, 0.2),), shape="cross"))
    text = chart.svg()
    svg = ET.fromstring(text)
    assert svg.get("aria-label") == 'a "b" <c>'
    texts = ["".join(t.itertext()) for t in svg.iter("text")]
    assert 'a "b" <c>' in texts and "val_acc & more" in texts
    step = next(p for p in svg.iter("path") if p.get("data-series") == "best")
    commands = re.findall(r"[MHV]", step.get("d", ""))
    assert commands == ["M", "H", "V", "H", "V", "H", "V"]  # horizontal, then vertical
    circles = list(_series(svg, "trials").iter("circle"))
    assert len(circles) == 13
    assert len(list(_series(svg, "failed").iter("path"))) == 1  # a cross
    titles = ["".join(t.itertext()) for t in svg.iter("title")]
    assert titles == [f"trial {i} <x>" for i in range(13)]
    frame = svg.find("rect[@fill='none']")
    assert frame is not None
    x0, y0 = float(frame.get("x", 0)), float(frame.get("y", 0))
    x1, y1 = x0 + float(frame.get("width", 0)), y0 + float(frame.get("height", 0))
    for c in circles:  # every point inside the frame
        assert x0 < float(c.get("cx", 0)) < x1 and y0 < float(c.get("cy", 0)) < y1
    # higher values are drawn higher (smaller y)
    ys = [float(c.get("cy", 0)) for c in circles]
    assert ys == sorted(ys, reverse=True)


def test_log_axis_and_degenerate_data() -> None:
    chart = Chart(title="t", x_label="params", y_label="y", x_log=True)
    chart.add(Series("s", (Mark(1e3, 1.0), Mark(1e5, 1.0), Mark(1e6, 1.0))))
    svg = ET.fromstring(chart.svg())
    xs = [float(c.get("cx", 0)) for c in _series(svg, "s").iter("circle")]
    assert xs[1] - xs[0] == pytest.approx(2 * (xs[2] - xs[1]), rel=1e-2)
    with pytest.raises(ValueError, match="no point"):
        Chart(title="empty", x_label="x", y_label="y").add(Series("s", ())).svg()
    nan_only = Chart(title="nan", x_label="x", y_label="y").add(Series("s", (Mark(1, math.nan),)))
    with pytest.raises(ValueError, match="no point"):
        nan_only.svg()


def test_a_column_has_one_format() -> None:
    accuracy = column_format([0.802, 0.8033, math.nan, 0.5])
    assert [accuracy(v) for v in (0.802, 0.8033, math.nan, 0.5)] == [
        "0.8020",
        "0.8033",
        "–",
        "0.5000",
    ]
    params = column_format([1200.0, 98304.0])
    assert [params(v) for v in (1200.0, 98304.0)] == ["1,200", "98,304"]
    latency = column_format([1.5, 12.25, 0.031])
    assert [latency(v) for v in (1.5, 12.25, 0.031)] == ["1.50", "12.25", "0.03"]
    assert column_format([math.nan])(0.812345) == "0.8123"

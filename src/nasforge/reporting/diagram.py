"""Architecture diagrams as inline SVG: a layered layout of a space's :class:`ArchGraph`.

Nodes are placed in columns by the longest path from a source (left to right), spread within
a column and ordered by the mean position of their predecessors to limit crossings. Edges are
lines with arrowheads; an edge that skips columns is drawn as a curve bending away from the
nodes it passes, so that no edge runs through a node. Op labels sit on their edges.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape

from nasforge.spaces.base import ArchGraph, GraphEdge, GraphNode

__all__ = ["diagram_svg", "layers"]

_CHAR = 7.3  # width of one character of the 12 px monospace font
_LINE = 15.0  # height of one text line
_PAD_X, _PAD_Y = 10.0, 7.0
_ROW_GAP = 26.0
_BEND = 36.0  # how far a curve bends per column it skips
_MARGIN = 14.0
_FONT = 'font-family="ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"'
_STYLE = {  # kind -> (fill, stroke, text colour, dash)
    "input": ("#e0f2fe", "#0369a1", "#0c4a6e", ""),
    "op": ("#f1f5f9", "#334155", "#0f172a", ""),
    "output": ("#dcfce7", "#15803d", "#14532d", ""),
    "unused": ("#ffffff", "#94a3b8", "#64748b", ' stroke-dasharray="4 3"'),
}


def layers(graph: ArchGraph) -> dict[str, int]:
    """The column of each node: the length of the longest path reaching it from a source;
    output nodes come last, in a column of their own.

    Raises:
        ValueError: If the graph has a cycle.
    """
    preds: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for edge in graph.edges:
        preds[edge.target].append(edge.source)
    column: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(node: str) -> int:
        if node in column:
            return column[node]
        if node in visiting:
            raise ValueError(f"the graph has a cycle through node {node!r}")
        visiting.add(node)
        column[node] = max((visit(p) + 1 for p in preds[node]), default=0)
        visiting.discard(node)
        return column[node]

    for node in graph.nodes:
        visit(node.id)
    inner = [column[n.id] for n in graph.nodes if n.kind != "output"]
    last = max(inner, default=-1) + 1
    for node in graph.nodes:  # outputs in a column of their own, after every other node
        if node.kind == "output":
            column[node.id] = max(column[node.id], last)
    return column


@dataclass(frozen=True, slots=True)
class _Box:
    node: GraphNode
    x: float  # centre
    y: float  # centre
    w: float
    h: float

    def border(self, toward_x: float, toward_y: float) -> tuple[float, float]:
        """Where the ray from the centre toward a point leaves the box."""
        dx, dy = toward_x - self.x, toward_y - self.y
        if dx == 0 and dy == 0:
            return self.x, self.y
        t = min(
            self.w / 2 / abs(dx) if dx else math.inf,
            self.h / 2 / abs(dy) if dy else math.inf,
        )
        return self.x + t * dx, self.y + t * dy


def _size(node: GraphNode) -> tuple[float, float]:
    lines = node.label.split("\n")
    width = max(len(line) for line in lines) * _CHAR + 2 * _PAD_X
    return max(width, 44.0), len(lines) * _LINE + 2 * _PAD_Y


def _place(graph: ArchGraph) -> dict[str, _Box]:
    column = layers(graph)
    n_columns = max(column.values(), default=-1) + 1
    members: list[list[GraphNode]] = [[] for _ in range(n_columns)]
    for node in graph.nodes:
        members[column[node.id]].append(node)
    preds: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for edge in graph.edges:
        preds[edge.target].append(edge.source)
    # order within a column by the mean slot of the predecessors (barycentre heuristic)
    slot: dict[str, float] = {}
    for col in members:
        order = {n.id: i for i, n in enumerate(col)}

        def barycentre(node: GraphNode, order: dict[str, int] = order) -> tuple[float, int]:
            placed = [slot[p] for p in preds[node.id] if p in slot]
            return (sum(placed) / len(placed) if placed else -1.0, order[node.id])

        col.sort(key=barycentre)
        for i, node in enumerate(col):
            slot[node.id] = i - (len(col) - 1) / 2
    sizes = {n.id: _size(n) for n in graph.nodes}
    label_width = max((len(e.label) * _CHAR for e in graph.edges if e.label), default=0.0)
    gap = max(56.0, label_width + 30.0)
    row = max((h for _, h in sizes.values()), default=0.0) + _ROW_GAP
    boxes: dict[str, _Box] = {}
    x = 0.0
    for col in members:
        width = max(sizes[n.id][0] for n in col)
        for node in col:
            w, h = sizes[node.id]
            boxes[node.id] = _Box(node, x + width / 2, slot[node.id] * row, w, h)
        x += width + gap
    return boxes


def _crosses(a: _Box, b: _Box, cx: float, cy: float, boxes: dict[str, _Box]) -> bool:
    """Whether the curve from ``a`` to ``b`` through control ``(cx, cy)`` runs through a node."""
    others = [box for box in boxes.values() if box is not a and box is not b]
    for k in range(1, 32):
        t = k / 32
        x = (1 - t) ** 2 * a.x + 2 * (1 - t) * t * cx + t**2 * b.x
        y = (1 - t) ** 2 * a.y + 2 * (1 - t) * t * cy + t**2 * b.y
        for box in others:
            if abs(x - box.x) <= box.w / 2 + 4 and abs(y - box.y) <= box.h / 2 + 4:
                return True
    return False


def _edges(graph: ArchGraph, boxes: dict[str, _Box]) -> list[tuple[GraphEdge, list[float]]]:
    """Each edge with its path points: start, control (a quadratic curve) and end.

    An edge between adjacent columns is straight. One that skips columns is straight if no
    node is in its way, else it bends, by more the more columns it skips, to the side (first
    alternating between such edges, then whichever is free) where it passes no node.
    """
    column = layers(graph)
    long = sorted(
        (e for e in graph.edges if column[e.target] - column[e.source] > 1),
        key=lambda e: (column[e.target] - column[e.source], column[e.source]),
    )
    side = {id(e): (-1.0 if i % 2 == 0 else 1.0) for i, e in enumerate(long)}
    out: list[tuple[GraphEdge, list[float]]] = []
    for edge in graph.edges:
        a, b = boxes[edge.source], boxes[edge.target]
        span = column[edge.target] - column[edge.source]
        cx, cy = (a.x + b.x) / 2, (a.y + b.y) / 2
        if span > 1 and _crosses(a, b, cx, cy, boxes):
            length = math.hypot(b.x - a.x, b.y - a.y) or 1.0
            nx, ny = -(b.y - a.y) / length, (b.x - a.x) / length  # normal of the chord
            mx, my = cx, cy
            for k in range(span - 1, span + 4):
                found = False
                for sign in (side[id(edge)], -side[id(edge)]):
                    bend = 2 * _BEND * k * sign  # the curve peaks half-way to its control
                    cx, cy = mx + nx * bend, my + ny * bend
                    if not _crosses(a, b, cx, cy, boxes):
                        found = True
                        break
                if found:
                    break
        sx, sy = a.border(cx, cy)
        ex, ey = b.border(cx, cy)
        out.append((edge, [sx, sy, cx, cy, ex, ey]))
    return out


def diagram_svg(graph: ArchGraph, *, uid: str, title: str = "") -> str:
    """``graph`` as one ``<svg>`` element.

    Args:
        graph: Nodes and edges, e.g. from ``space.graph(arch)``.
        uid: Prefix of the element ids in the drawing (the arrowhead marker), unique in the
            page; letters, digits, ``-`` and ``_``.
        title: Accessible name of the drawing (escaped).

    Raises:
        ValueError: If ``uid`` has other characters, the graph is empty or has a cycle.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", uid):
        raise ValueError(f"uid must be letters, digits, '-' and '_' (a letter first), got {uid!r}")
    if not graph.nodes:
        raise ValueError("cannot draw a graph without nodes")
    boxes = _place(graph)
    paths = _edges(graph, boxes)
    xs = [v for b in boxes.values() for v in (b.x - b.w / 2, b.x + b.w / 2)]
    ys = [v for b in boxes.values() for v in (b.y - b.h / 2, b.y + b.h / 2)]
    for _, (sx, sy, cx, cy, ex, ey) in paths:  # a quadratic curve peaks half-way to control
        xs.append(0.25 * sx + 0.5 * cx + 0.25 * ex)
        ys += [0.25 * sy + 0.5 * cy + 0.25 * ey - 10, 0.25 * sy + 0.5 * cy + 0.25 * ey + 10]
    left, top = min(xs) - _MARGIN, min(ys) - _MARGIN
    width, height = max(xs) - left + _MARGIN, max(ys) - top + _MARGIN
    marker = f"{uid}-arrow"
    parts = [
        f'<svg class="diagram" viewBox="{left:.1f} {top:.1f} {width:.1f} {height:.1f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title)}">',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10Z" '
        'fill="#475569"/></marker></defs>',
    ]
    labels: list[str] = []
    for edge, (sx, sy, cx, cy, ex, ey) in paths:
        parts.append(
            f'<path class="edge" d="M{sx:.1f},{sy:.1f}Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}" '
            f'fill="none" stroke="#475569" stroke-width="1.4" marker-end="url(#{marker})"/>'
        )
        if edge.label:
            lx, ly = 0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey
            w = len(edge.label) * _CHAR * 11 / 12 + 8
            labels.append(
                f'<g class="edge-label"><rect x="{lx - w / 2:.1f}" y="{ly - 8:.1f}" '
                f'width="{w:.1f}" height="15" rx="3" fill="#ffffff" fill-opacity="0.9"/>'
                f'<text x="{lx:.1f}" y="{ly + 3.5:.1f}" {_FONT} font-size="11" '
                f'text-anchor="middle" fill="#7c2d12">{escape(edge.label)}</text></g>'
            )
    for box in boxes.values():
        fill, stroke, ink, dash = _STYLE.get(box.node.kind, _STYLE["op"])
        lines = box.node.label.split("\n")
        first = box.y - (len(lines) - 1) * _LINE / 2 + 4
        spans = "".join(
            f'<tspan x="{box.x:.1f}" y="{first + i * _LINE:.1f}">{escape(line)}</tspan>'
            for i, line in enumerate(lines)
        )
        parts.append(
            f'<g class="node" data-kind="{escape(box.node.kind)}">'
            f'<rect x="{box.x - box.w / 2:.1f}" y="{box.y - box.h / 2:.1f}" width="{box.w:.1f}" '
            f'height="{box.h:.1f}" rx="6" fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<text {_FONT} font-size="12" text-anchor="middle" fill="{ink}">{spans}</text></g>'
        )
    parts += labels  # labels last: over edges and nodes
    parts.append("</svg>")
    return "\n".join(parts)

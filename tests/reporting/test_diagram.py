"""Architecture graphs of every space, and their SVG diagrams: well-formed, complete, readable."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.reporting.diagram import diagram_svg, layers
from nasforge.spaces.base import SPACES, ArchGraph, GraphEdge, GraphNode, SearchSpace
from nasforge.spaces.nb201 import NB201_EDGES


def _edges(graph: ArchGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.label) for e in graph.edges}


def _reachable(graph: ArchGraph, start: str, *, forward: bool) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        node = todo.pop()
        for e in graph.edges:
            a, b = (e.source, e.target) if forward else (e.target, e.source)
            if a == node and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


_PATH = re.compile(r"M([-\d.]+),([-\d.]+)Q([-\d.]+),([-\d.]+) ([-\d.]+),([-\d.]+)")


def _assert_edges_avoid_nodes(svg: str) -> None:
    """No edge runs through a node box (sampled along each curve, ends excluded)."""
    root = ET.fromstring(svg)
    boxes = _boxes(svg)
    for path in root.iter("path"):
        if path.get("class") != "edge":
            continue
        match = _PATH.fullmatch(path.get("d", ""))
        assert match, path.get("d")
        sx, sy, cx, cy, ex, ey = map(float, match.groups())
        for k in range(2, 19):
            t = k / 20
            x = (1 - t) ** 2 * sx + 2 * (1 - t) * t * cx + t**2 * ex
            y = (1 - t) ** 2 * sy + 2 * (1 - t) * t * cy + t**2 * ey
            for x0, y0, x1, y1 in boxes:
                inside = x0 + 1 < x < x1 - 1 and y0 + 1 < y < y1 - 1
                assert not inside, (path.get("d"), (x0, y0, x1, y1), t)


@pytest.mark.parametrize("name", SPACES.names())
def test_every_space_draws_sampled_architectures_as_a_dag(name: str) -> None:
    space = SPACES.create(name)
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        graph = space.graph(arch)
        inputs = [n.id for n in graph.nodes if n.kind == "input"]
        outputs = [n.id for n in graph.nodes if n.kind == "output"]
        assert len(inputs) == 1 and len(outputs) == 1, graph
        layers(graph)  # raises on a cycle
        from_input = _reachable(graph, inputs[0], forward=True)
        to_output = _reachable(graph, outputs[0], forward=False)
        for node in graph.nodes:  # every op node is on an input-to-output path
            if node.kind == "op":
                assert node.id in from_input and node.id in to_output, (arch, node)
        _assert_edges_avoid_nodes(diagram_svg(graph, uid="d0", title=str(arch)))


def test_gnn_graph_follows_links_and_sends_leaves_to_the_output() -> None:
    space = SPACES.create("gnn")
    arch = Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn", "gat", "skip", "fc"])
    graph = space.graph(arch)
    assert [(n.id, n.label, n.kind) for n in graph.nodes] == [
        ("in", "input", "input"),
        ("n1", "1: gcn", "op"),
        ("n2", "2: gat", "op"),
        ("n3", "3: skip", "op"),
        ("n4", "4: fc", "op"),
        ("out", "output\nconcat", "output"),
    ]
    assert _edges(graph) == {
        ("in", "n1", ""),
        ("in", "n2", ""),
        ("n1", "n3", ""),
        ("n2", "n4", ""),
        ("n3", "out", ""),
        ("n4", "out", ""),
    }
    # a skip leaf forwarding the raw input carries nothing to the output (as the model)
    arch = Architecture.create("gnn", links=[0, 0, 1, 1], ops=["gcn", "skip", "sage", "fc"])
    graph = space.graph(arch)
    assert {n.id: n.kind for n in graph.nodes}["n2"] == "unused"
    assert {e.target for e in graph.edges if e.source == "n2"} == set()
    assert {e.source for e in graph.edges if e.target == "out"} == {"n3", "n4"}


def test_nb201_graph_is_the_cell_without_none_edges() -> None:
    space = SPACES.create("nb201")
    ops = ["nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none"]
    graph = space.graph(space.make(ops))
    assert [n.id for n in graph.nodes] == ["0", "1", "2", "3"]
    expected = {
        (str(s), str(t), op) for op, (t, s) in zip(ops, NB201_EDGES, strict=True) if op != "none"
    }
    assert _edges(graph) == expected and len(graph.edges) == 4
    svg = diagram_svg(graph, uid="cell", title="cell")
    root = ET.fromstring(svg)
    texts = ["".join(t.itertext()) for t in root.iter("text")]
    for op in ("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1"):
        assert texts.count(op) == 1
    assert "none" not in texts
    # nodes on no input-to-output path are drawn as unused; the zero cell has no edge
    dead = space.graph(space.make(["nor_conv_3x3", "none", "none", "skip_connect", "none", "none"]))
    assert [n.kind for n in dead.nodes] == ["input", "unused", "unused", "output"]
    zero = space.graph(space.make(["none"] * 6))
    assert zero.edges == () and [n.kind for n in zero.nodes][1:3] == ["unused", "unused"]
    ET.fromstring(diagram_svg(zero, uid="zero"))
    assert len([p for p in root.iter("path") if p.get("class") == "edge"]) == 4


def test_mlp_graph_is_a_chain_of_layers() -> None:
    space = SPACES.create("mlp")
    arch = space.sample(np.random.default_rng(3))
    g = space.genes(arch)
    graph = space.graph(arch)
    assert [n.kind for n in graph.nodes] == ["input", *["op"] * g.depth, "output"]
    for node, width in zip(graph.nodes[1:-1], g.hidden, strict=True):
        lines = node.label.split("\n")
        assert lines[0] == f"linear {width}" and g.activation in lines
        assert (f"dropout {g.dropout:g}" in lines) == (g.dropout > 0)
        assert (f"{g.norm}norm" in lines) == (g.norm != "none")
    ids = [n.id for n in graph.nodes]
    assert [(e.source, e.target) for e in graph.edges] == list(itertools.pairwise(ids))


def test_graph_refuses_an_architecture_of_another_space() -> None:
    arch = Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn", "gat", "skip", "fc"])
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'gnn'"):
        SPACES.create("nb201").graph(arch)


def test_the_contract_default_says_graph_is_not_provided() -> None:
    space = SPACES.create("gnn")
    arch = Architecture.create("gnn", links=[0, 0, 1, 2], ops=["gcn", "gat", "skip", "fc"])
    with pytest.raises(NotImplementedError, match="space 'gnn' cannot describe"):
        SearchSpace.graph(space, arch)  # the base class's method, as a space without one


def _boxes(svg: str) -> list[tuple[float, float, float, float]]:
    root = ET.fromstring(svg)
    out = []
    for group in root.iter("g"):
        if group.get("class") == "node":
            rect = group.find("rect")
            assert rect is not None
            x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
            out.append((x, y, x + float(rect.get("width", 0)), y + float(rect.get("height", 0))))
    return out


def test_diagram_layout_keeps_nodes_apart_and_arrows_defined() -> None:
    space = SPACES.create("gnn")
    arch = Architecture.create("gnn", links=[0, 1, 1, 0], ops=["gin", "sage", "arma", "cheb"])
    svg = diagram_svg(space.graph(arch), uid="g-1", title="<a & b>")
    root = ET.fromstring(svg)
    assert root.get("aria-label") == "<a & b>"  # escaped in the text, intact once parsed
    boxes = _boxes(svg)
    assert len(boxes) == 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (a, b)
    _assert_edges_avoid_nodes(svg)
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    refs = set(re.findall(r"url\(#([^)]+)\)", svg))
    assert refs == {"g-1-arrow"} and refs <= ids
    # columns: input, then nodes by depth, output last
    column = layers(space.graph(arch))
    assert column["in"] == 0 and column["n2"] == 2 and column["out"] == 3


def test_diagram_escapes_labels_and_checks_its_id() -> None:
    graph = ArchGraph(
        (GraphNode("a", "<script>x</script>", "input"), GraphNode("b", "out & done", "output")),
        (GraphEdge("a", "b", 'op "q"'),),
    )
    svg = diagram_svg(graph, uid="x1")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    texts = ["".join(t.itertext()) for t in ET.fromstring(svg).iter("text")]
    assert {"<script>x</script>", "out & done", 'op "q"'} <= set(texts)
    with pytest.raises(ValueError, match="uid must be"):
        diagram_svg(graph, uid='x" onload="y')
    with pytest.raises(ValueError, match="not in the graph"):
        ArchGraph((GraphNode("a", "a"),), (GraphEdge("a", "b"),))

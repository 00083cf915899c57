"""The HTML report of real searches: parsed back, checked against the store, offline, escaped."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import nasforge
from nasforge import api
from nasforge.architecture import Architecture
from nasforge.cli import main
from nasforge.errors import ConfigError
from nasforge.evaluators.base import BENCHMARKS
from nasforge.paths import store_label
from nasforge.reporting import rank_trials
from nasforge.result import Result, Status
from nasforge.spaces.base import SPACES, ArchGraph
from nasforge.store.base import ExperimentRecord, TrialRecord
from nasforge.store.sql import open_store

COMMAND = (sys.executable, "-m", "nasforge.cli", "report")
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
VOID = {"meta", "br", "img", "hr", "input", "link"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.parts) + "".join(c.text() for c in self.children)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.iter()
            if e.tag == tag and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def by_id(self, id_: str) -> Element:
        found = [e for e in self.iter() if e.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id {id_!r}"
        return found[0]


class Page(HTMLParser):
    """A small DOM built by the standard library's HTML parser (it unescapes text)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def _svgs(text: str) -> list[ET.Element]:
    """Every inline SVG, parsed as XML (raises if one is not well-formed)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", text, flags=re.S)]


def _rows(page: Page, table_id: str) -> list[dict[str, str]]:
    """Rows of a trial table: the trial number and each data-col cell's data-value."""
    rows = []
    for tr in page.root.by_id(table_id).find_all("tr"):
        if "data-trial" not in tr.attrs:
            continue
        cells = {td.attrs["data-col"]: td.attrs.get("data-value", td.text()) for td in tr.children}
        rows.append({"trial": tr.attrs["data-trial"], **cells})
    return rows


def _section(text: str, section: str) -> str:
    """The raw HTML of one ``<section>``."""
    return text.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]


def _assert_draws(figure: Element, graph: ArchGraph) -> None:
    """The figure's diagram shows every node label line and every edge label once."""
    drawn = sorted(e.text() for e in figure.find_all("tspan"))
    assert drawn == sorted(line for n in graph.nodes for line in n.label.split("\n"))
    edge_labels = [e.text() for e in figure.find_all("text") if not e.find_all("tspan")]
    assert sorted(edge_labels) == sorted(e.label for e in graph.edges if e.label)
    assert len(figure.find_all("path", **{"class": "edge"})) == len(graph.edges)


def _assert_offline(text: str, page: Page) -> None:
    assert "http://" not in text and "https://" not in text
    for element in page.root.iter():
        for name, value in element.attrs.items():
            assert name not in ("src", "href", "xlink:href"), (element.tag, name, value)
            assert "url(" not in value or value.startswith("url(#"), (element.tag, value)
    assert not page.root.find_all("script") and not page.root.find_all("link")
    assert "@import" not in text and "url(http" not in text


@pytest.fixture(scope="module")
def cora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real 30-architecture search on the NAS-Bench-Graph Cora table."""
    db = tmp_path_factory.mktemp("cora") / "runs.db"
    api.search(benchmark="nas-bench-graph:cora", strategy="evolution", budget=30, db=db, name="c")
    return db, "c"


def test_report_of_a_search_matches_the_store(cora: tuple[Path, str], tmp_path: Path) -> None:
    db, name = cora
    out = nasforge.report(name, tmp_path / "r.html", db=db, top=5)
    assert out == tmp_path / "r.html"
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    _assert_offline(text, page)
    for section in ("summary", "progress", "trials", "top", "architectures"):
        page.root.by_id(section)
    assert not [e for e in page.root.iter() if e.attrs.get("id") == "pareto"]
    assert page.root.by_id("experiment-name").text() == name
    trials = api.trials(name, db=db)
    assert page.root.by_id("trial-count").text() == str(len(trials))
    assert all(t.status is Status.COMPLETE for t in trials)
    complete = page.root.find_all("span", data_status="COMPLETE")[0]
    assert complete.attrs["data-count"] == str(len(trials))

    expected = api.top(name, 5, db=db)
    rows = _rows(page, "top-table")
    assert [int(r["trial"]) for r in rows] == [t.number for t in expected]
    for row, t in zip(rows, expected, strict=True):
        assert float(row["val_acc"]) == t.metrics["val_acc"]
        assert float(row["test_acc"]) == t.test_metrics["test_acc"]
        assert float(row["params"]) == t.costs["params"]
        assert float(row["latency_ms"]) == t.costs["latency_ms"]
    keys = [td.text() for td in page.root.by_id("top-table").find_all("td", **{"class": "key"})]
    assert keys == [t.key for t in expected]
    best = api.best(name, db=db)
    assert best is not None and expected[0].number == best.number

    svgs = _svgs(text)
    charts = [s for s in svgs if s.get("class") == "chart"]
    diagrams = [s for s in svgs if s.get("class") == "diagram"]
    # best so far by trial and by time; val_acc by trial, against params, against latency
    assert len(charts) == 5 and len(diagrams) == 5
    figures = page.root.by_id("architectures").find_all("figure")
    assert [int(f.attrs["data-trial"]) for f in figures] == [t.number for t in expected]
    space = SPACES.create("gnn")
    for figure, t in zip(figures, expected, strict=True):  # the diagram draws the ops
        _assert_draws(figure, space.graph(t.arch))
        ops = t.arch["ops"]
        assert isinstance(ops, tuple)
        assert {f"{i}: {op}" for i, op in enumerate(ops, start=1)} <= {
            e.text() for e in figure.find_all("tspan")
        }
    ids = [e.get("id") for s in svgs for e in s.iter() if e.get("id")]
    assert len(ids) == len(set(ids)) == 5  # one arrowhead per diagram, none shared

    # the best-so-far curve ends at the best value: its last new best is the best trial
    new_best = [
        "".join(t.itertext())
        for s in charts[:1]
        for g in s.iter("g")
        if g.get("data-series") == "new best"
        for t in g.iter("title")
    ]
    assert new_best[-1].startswith(f"trial {best.number}: new best val_acc")


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    api.search(benchmark="nas-bench-graph:cora", strategy="random", budget=4, db=db, name=HOSTILE)
    text = nasforge.report(HOSTILE, tmp_path / "r.html", db=db).read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>bold" not in text
    page = Page(text)
    assert {e.tag for e in page.root.iter()}.isdisjoint({"script", "b"})
    assert page.root.by_id("experiment-name").text() == HOSTILE
    assert page.root.find_all("title")[0].text() == f"nasforge report: {HOSTILE}"
    assert len(_svgs(text)) >= 3  # all well-formed


def _nbg_trials(n: int, seed: int) -> Iterator[tuple[Architecture, str, Result]]:
    """Distinct random gnn architectures with their real NAS-Bench-Graph Cora results."""
    space = SPACES.create("gnn")
    evaluator = BENCHMARKS.create("nas-bench-graph:cora")
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    while len(seen) < n:
        arch = space.sample(rng)
        key = space.canonical_key(arch)
        if key not in seen:
            seen.add(key)
            yield arch, key, evaluator.evaluate(arch)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TrialRecord]]:
    """A two-objective experiment of 40 real Cora results plus FAILED, PRUNED, INFEASIBLE."""
    db = tmp_path_factory.mktemp("multi") / "runs.db"
    config = {
        "space": "gnn",
        "strategy": "random",
        "seed": 0,
        "objective": "val_acc:max",
        "objectives": ["val_acc:max", "latency_ms:min"],
        "constraints": ["params<=1e6"],
        "source": {"benchmark": "nas-bench-graph:cora", "table": None},
    }
    with open_store(db) as store:
        record, _ = store.get_or_create_experiment("mo", config)
        now = time.time()
        stored = [
            store.add_trial(record.id, arch, key, result, started_at=now + i, finished_at=now + i)
            for i, (arch, key, result) in enumerate(_nbg_trials(40, seed=1))
        ]
        extra = list(_nbg_trials(43, seed=2))[-3:]
        arch, key, good = extra[0]
        # better than everything on both objectives, but it violates the constraint
        infeasible = Result(
            status=Status.INFEASIBLE,
            metrics={"val_acc": 0.99},
            test_metrics=good.test_metrics,
            costs={"latency_ms": 1e-3, "params": 5e6},
            reason="violates params<=1e+06 (params=5e+06)",
        )
        pruned = Result(status=Status.PRUNED, metrics={"val_acc": 0.5}, reason="<curve> said so")
        failed = Result.failed("CUDA <out of memory> & worse")
        for i, ((arch, key, _), result) in enumerate(
            zip(extra, (infeasible, pruned, failed), strict=True)
        ):
            t = now + 40 + i
            stored.append(
                store.add_trial(record.id, arch, key, result, started_at=t, finished_at=t)
            )
    return db, stored


def test_multi_objective_report_shows_exactly_the_non_dominated(
    multi: tuple[Path, list[TrialRecord]], tmp_path: Path
) -> None:
    db, stored = multi
    text = nasforge.report("mo", tmp_path / "mo.html", db=db, top=3).read_text(encoding="utf-8")
    page = Page(text)
    _assert_offline(text, page)
    complete = [t for t in stored if t.status is Status.COMPLETE]

    def point(t: TrialRecord) -> tuple[float, float]:
        return t.metrics["val_acc"], t.costs["latency_ms"]

    def dominated(t: TrialRecord) -> bool:
        (a, la) = point(t)
        return any(
            b >= a and lb <= la and (b > a or lb < la) for b, lb in map(point, complete)
        ) or any(point(u) == point(t) and u.number < t.number for u in complete)

    front = {t.number for t in complete if not dominated(t)}
    assert len(front) >= 2
    rows = _rows(page, "front-table")
    assert {int(r["trial"]) for r in rows} == front
    for row in rows:
        t = next(t for t in stored if t.number == int(row["trial"]))
        assert float(row["val_acc"]) == t.metrics["val_acc"]
        assert float(row["latency_ms"]) == t.costs["latency_ms"]
    pareto_svg = _svgs(_section(text, "pareto"))[0]
    drawn = [g for g in pareto_svg.iter("g") if g.get("data-series") == "Pareto front"]
    assert len(drawn) == 1 and len(list(drawn[0].iter("title"))) == len(front)
    # the INFEASIBLE trial would dominate everything: drawn apart, never on the front
    infeasible = stored[40]
    assert infeasible.status is Status.INFEASIBLE and infeasible.number not in front
    assert any(g.get("data-series") == "INFEASIBLE" for g in pareto_svg.iter("g"))

    # header: both objectives, the constraint, the counts by status, the data source
    summary = page.root.by_id("summary").text()
    assert "val_acc:max (higher is better)" in summary
    assert "latency_ms:min (lower is better)" in summary
    assert "params<=1e6" in summary and "benchmark nas-bench-graph:cora" in summary
    for status, n in (("COMPLETE", 40), ("INFEASIBLE", 1), ("PRUNED", 1), ("FAILED", 1)):
        assert page.root.find_all("span", data_status=status)[0].attrs["data-count"] == str(n)
    # reasons are listed, escaped, and the trials without a value are counted
    reasons = page.root.by_id("reasons").text()
    assert "CUDA <out of memory> & worse" in reasons and "<curve> said so" in reasons
    assert "<out of memory>" not in text
    assert "Not drawn (no finite val_acc): FAILED 1." in page.root.by_id("trials").text()
    # the top table ranks on the first objective, COMPLETE only
    top = [int(r["trial"]) for r in _rows(page, "top-table")]
    assert top == [t.number for t in rank_trials(complete, api.objectives_of(_record(db))[0])[:3]]
    assert infeasible.number not in top


def _record(db: Path) -> ExperimentRecord:
    with open_store(db, create=False) as store:
        return store.get_experiment("mo")


def test_several_fidelities_rank_as_best_does(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    config = {"space": "gnn", "strategy": "asha", "objective": "val_acc:max"}
    results = list(_nbg_trials(6, seed=4))
    ranked = sorted(results, key=lambda r: -r[2].metrics["val_acc"])
    with open_store(db) as store:
        record, _ = store.get_or_create_experiment("fid", config)
        for i, (arch, key, result) in enumerate(ranked):  # the worst two reach fidelity 9
            fidelity = 9 if i >= 4 else 1
            result = Result(
                metrics=result.metrics,
                test_metrics=result.test_metrics,
                costs=result.costs,
                fidelity=fidelity,
            )
            store.add_trial(record.id, arch, key, result, started_at=i, finished_at=i + 1)
    page = Page(nasforge.report("fid", tmp_path / "f.html", db=db).read_text(encoding="utf-8"))
    best = api.best("fid", db=db)
    assert best is not None and best.fidelity == 9
    rows = _rows(page, "top-table")
    assert int(rows[0]["trial"]) == best.number
    assert [int(r["trial"]) for r in rows] == [4, 5, 0, 1, 2, 3]
    assert "several fidelities (1, 9)" in page.root.by_id("progress").text()


def test_cli_report_writes_the_file(cora: tuple[Path, str], tmp_path: Path) -> None:
    db, name = cora
    out = tmp_path / "cli.html"
    proc = subprocess.run(
        [*COMMAND, "--name", name, "--db", str(db), "--out", str(out), "--top", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    assert len(_rows(Page(out.read_text(encoding="utf-8")), "top-table")) == 3


def test_cli_refuses_a_missing_experiment_and_an_unwritable_out(
    cora: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, name = cora
    out = tmp_path / "x.html"
    assert main(["report", "--name", "nope", "--db", str(db), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no experiment named 'nope'" in err and name in err
    assert not out.exists()
    missing_dir = tmp_path / "absent" / "x.html"
    assert main(["report", "--name", name, "--db", str(db), "--out", str(missing_dir)]) == 2
    assert "directory" in capsys.readouterr().err and not missing_dir.parent.exists()
    assert main(["report", "--name", name, "--db", str(db), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", "--name", name, "--db", str(db), "--out", str(out), "--top", "0"])
    assert exc.value.code == 2
    assert list(tmp_path.iterdir()) == []  # nothing written, no partial file left


def test_report_replaces_an_existing_file_whole(cora: tuple[Path, str], tmp_path: Path) -> None:
    db, name = cora
    out = tmp_path / "r.html"
    out.write_text("old " * 100_000)
    nasforge.report(name, out, db=db, top=1)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "old old" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    with pytest.raises(ConfigError, match="integer >= 1"):
        nasforge.report(name, out, db=db, top=0)
    # the same function three ways, and nasforge.report stays callable after each call
    assert api.report(name, out, db=db, top=2) == out
    assert callable(nasforge.report) and nasforge.report(name, out, db=db) == out


@pytest.mark.slow
def test_reports_of_trained_nb201_and_mlp_searches_draw_their_architectures(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    api.search(
        task="image:digits",
        space="nb201",
        strategy="random",
        budget=2,
        epochs=1,
        training={"channels": 4, "cells_per_stage": 1},
        db=db,
        name="cells",
    )
    api.search(task="tabular:breast_cancer", strategy="random", budget=3, epochs=2, db=db, name="m")
    for name, space in (("cells", "nb201"), ("m", "mlp")):
        text = nasforge.report(name, tmp_path / f"{name}.html", db=db).read_text(encoding="utf-8")
        page = Page(text)
        _assert_offline(text, page)
        top = api.top(name, 10, db=db)
        assert [int(r["trial"]) for r in _rows(page, "top-table")] == [t.number for t in top]
        figures = page.root.by_id("architectures").find_all("figure")
        assert len(figures) == len(top) >= 1
        for figure, t in zip(figures, top, strict=True):
            _assert_draws(figure, SPACES.create(space).graph(t.arch))
        # trained searches measure flops too: one chart per cost
        titles = [s.get("aria-label") for s in _svgs(text) if s.get("class") == "chart"]
        assert "val_acc against flops" in titles and "val_acc against params" in titles
        assert all(math.isfinite(t.metrics["val_acc"]) for t in top)


def test_an_experiment_without_trials_and_the_store_label(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        store.get_or_create_experiment("empty", {"space": "nb201", "objective": "val_acc:max"})
    text = nasforge.report("empty", tmp_path / "e.html", db=db).read_text(encoding="utf-8")
    page = Page(text)
    assert page.root.by_id("trial-count").text() == "0"
    assert "No COMPLETE trial with a finite val_acc" in page.root.by_id("progress").text()
    assert _rows(page, "top-table") == [] and _svgs(text) == []
    assert str(db.resolve()) in page.root.by_id("summary").text()
    url = "postgresql+psycopg://alice:s3cret@db.example:5432/runs"
    assert store_label(url) == "postgresql+psycopg://alice:***@db.example:5432/runs"
    assert store_label("runs.db") == str(Path("runs.db").resolve())


def test_each_column_of_the_top_table_has_one_format(
    cora: tuple[Path, str], tmp_path: Path
) -> None:
    db, name = cora
    page = Page(nasforge.report(name, tmp_path / "r.html", db=db, top=10).read_text())
    shown: dict[str, list[str]] = {}
    for tr in page.root.by_id("top-table").find_all("tr"):
        for td in tr.children:
            if td.tag == "td" and "num" in td.attrs.get("class", ""):
                shown.setdefault(td.attrs["data-col"], []).append(td.text())
    assert {"val_acc", "test_acc", "latency_ms", "params"} <= set(shown)
    for column, texts in shown.items():
        decimals = {len(t.partition(".")[2]) for t in texts if t != "–"}
        assert len(decimals) == 1, (column, texts)
    assert all(len(t.partition(".")[2]) == 4 for t in shown["val_acc"])

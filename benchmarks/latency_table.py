"""Per-operation latency tables: predicted against measured latency of random architectures.

For each case a fresh table is measured (its build time reported), then ``--n`` random
architectures of distinct canonical keys are built as ``space.build(arch, task, hyper)`` does
and timed whole on the inputs ``TrainingEvaluator`` times (the whole graph; one image); the
prediction is the table's sum over the architecture's operations and fixed parts (FBNet /
ProxylessNAS style). Cases: ``gnn`` on the synthetic graph and on Cora (NAS-Bench-Graph's
Cora sizes), ``nb201`` on digits (the task's small network) and on 32x32x3 inputs with the
benchmark's C=16, N=5 network.

Example::

    OMP_NUM_THREADS=2 python benchmarks/latency_table.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _report import header, machine_lines, markdown_table, publish, version
from nasforge.latency import (
    LatencyTable,
    compare_latency,
    measure_architecture,
)
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.gnn import GnnSpace
from nasforge.spaces.nb201 import Nb201Hyper, Nb201Space
from nasforge.tasks import resolve_task

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latency_table.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"


@dataclass(frozen=True)
class ImageShape:
    """An image task known by its shape only (the inputs are random)."""

    input_shape: tuple[int, int, int]
    num_outputs: int


@dataclass
class Case:
    name: str
    space: SearchSpace
    task: Any
    hyper: Any


@dataclass
class Outcome:
    case: Case
    table: LatencyTable
    predicted: list[float]
    measured: list[float]
    archs: list[str]
    predict_us: float
    table_drift: float  # median |change| (%) of the entries, table measured again at the end
    measure_drift: float  # median |change| (%) of the whole-model timings, timed again


def distinct_sample(space: SearchSpace, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        arch = space.sample(rng)
        key = space.canonical_key(arch)
        if key not in seen:
            seen.add(key)
            out.append(arch)
    return out


def median_change(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of |b - a| / a in % over the pairs with a > 0."""
    return statistics.median(abs(y - x) / x * 100 for x, y in zip(a, b, strict=True) if x > 0)


def run_case(case: Case, *, n: int, seed: int, backend: str, warmup: int, repeats: int) -> Outcome:
    def build_table() -> LatencyTable:
        with tempfile.TemporaryDirectory(prefix="nasforge-latency-") as cache:
            return LatencyTable.for_task(
                case.space,
                case.task,
                case.hyper,
                backend=backend,
                warmup=warmup,
                repeats=repeats,
                cache=cache,
            )

    def measure_all() -> list[float]:
        return [
            measure_architecture(
                case.space,
                a,
                case.task,
                case.hyper,
                backend=backend,
                warmup=warmup,
                repeats=repeats,
            )
            for a in archs
        ]

    table = build_table()
    archs = distinct_sample(case.space, n, seed)
    table.predict(archs[0])  # builds the space's one-off canonicalisation caches
    start = time.perf_counter()
    predicted = [table.predict(a) for a in archs]
    predict_us = (time.perf_counter() - start) / len(archs) * 1e6
    measured = measure_all()
    again = measure_all()  # noise floors: the same timings repeated later
    later = build_table()
    names = sorted(table.entries)
    return Outcome(
        case,
        table,
        predicted,
        measured,
        [str(a) for a in archs],
        predict_us,
        table_drift=median_change(
            [table.entries[k] for k in names], [later.entries[k] for k in names]
        ),
        measure_drift=median_change(measured, again),
    )


def cases(data_root: Path, *, cora: bool, large: bool) -> list[Case]:
    out = []
    synthetic = resolve_task("synthetic")
    out.append(Case("gnn / synthetic", GnnSpace(), synthetic.task, synthetic.hyper))
    if cora:
        setup = resolve_task("planetoid:Cora", data_root=data_root)
        out.append(Case("gnn / Cora", GnnSpace(), setup.task, setup.hyper))
    digits = resolve_task("image:digits")
    out.append(Case("nb201 / digits", Nb201Space(), digits.task, digits.hyper))
    if large:
        out.append(
            Case(
                "nb201 / 32x32x3",
                Nb201Space(),
                ImageShape((3, 32, 32), 10),
                Nb201Hyper(channels=16, cells_per_stage=5),
            )
        )
    return out


def describe(case: Case) -> str:
    task = case.task
    if hasattr(task, "num_nodes"):
        h = case.hyper
        return (
            f"{task.num_nodes} nodes, {int(task.data.edge_index.shape[1])} edges, "
            f"{task.num_features} features; hidden {h.hidden}, pre {h.pre}, post {h.post}, "
            f"GAT heads {h.gat_heads}"
        )
    c, hh, w = task.input_shape
    return f"one {c}x{hh}x{w} image; C={case.hyper.channels}, N={case.hyper.cells_per_stage}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--n", type=int, default=50, help="architectures per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-cora", action="store_true", help="skip the Cora case")
    parser.add_argument("--no-large", action="store_true", help="skip nb201 C=16, N=5")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t_all = time.perf_counter()
    outcomes = []
    for case in cases(args.data_root, cora=not args.no_cora, large=not args.no_large):
        print(f"{case.name} ...", flush=True)
        outcomes.append(
            run_case(
                case,
                n=args.n,
                seed=args.seed,
                backend=args.backend,
                warmup=args.warmup,
                repeats=args.repeats,
            )
        )
    wall = time.perf_counter() - t_all

    rows = []
    for o in outcomes:
        c = compare_latency(o.predicted, o.measured)
        ratio = statistics.median(p / m for p, m in zip(o.predicted, o.measured, strict=True))
        rows.append(
            [
                o.case.name,
                c.n,
                f"{statistics.median(o.measured):.3f}",
                f"{min(o.measured):.3f}-{max(o.measured):.3f}",
                f"{c.mape:.1f}",
                f"{c.median_ape:.1f}",
                f"{ratio:.2f}",
                f"{c.spearman:.3f}",
                f"{c.kendall:.3f}",
                len(o.table.entries),
                f"{o.table.build_seconds:.1f}",
                f"{o.predict_us:.0f}",
                f"{o.measure_drift:.1f}",
                f"{o.table_drift:.1f}",
            ]
        )
    threads = (
        f"- torch threads: {torch.get_num_threads()}; OMP_NUM_THREADS: "
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; torch-geometric "
        f"{version('torch-geometric')}; onnx {version('onnx')}; onnxruntime "
        f"{version('onnxruntime')}"
    )
    lines = [
        *header(
            "Per-operation latency tables: predicted vs measured", started, wall, machine_lines()
        ),
        threads,
        f"- backend: {args.backend}; each timing: median of {args.repeats} calls after "
        f"{args.warmup} warm-up calls (tables and whole models alike)",
        "",
        "## Protocol",
        "",
        f"Per case: a fresh table measured in an empty cache folder, then {args.n} random "
        f"architectures of distinct canonical keys (seed {args.seed}) built by the space and "
        "timed whole in eval mode without gradients, on the inputs `TrainingEvaluator` times "
        "`latency_ms` on (the whole graph; one image). Predicted = sum of the table's entries "
        "over what the built model runs (see `nasforge.latency`). APE = |predicted - measured| "
        "/ measured. Noise floors: every model is timed a second time after all first timings, "
        "and the table is measured a second time at the end of the case; the median change "
        "between the two is reported.",
        "",
        *(f"- {o.case.name}: {describe(o.case)}" for o in outcomes),
        "",
        "## Results",
        "",
        *markdown_table(
            [
                "case",
                "archs",
                "median measured ms",
                "range ms",
                "MAPE %",
                "median APE %",
                "median pred/meas",
                "Spearman",
                "Kendall tau",
                "entries",
                "table build s",
                "predict µs/arch",
                "re-timed models: median change %",
                "re-built table: median change %",
            ],
            rows,
        ),
    ]
    for o in outcomes:
        worst = sorted(
            zip(o.predicted, o.measured, o.archs, strict=True),
            key=lambda t: -abs(t[0] - t[1]) / t[1],
        )[:3]
        lines += ["", f"Largest errors, {o.case.name}:", ""]
        lines += [f"- predicted {p:.3f} ms, measured {m:.3f} ms: `{a}`" for p, m, a in worst]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

"""Compression of searched networks: test accuracy against sparsity for imp, magnitude and random.

For each task and seed, a search finds an architecture, and ``nasforge.compress`` prunes its
best trial with every method to every sparsity (each method's trials, and the one dense
reference they share, in one compression experiment):

* ``gnn``: a NAS-Bench-Graph Cora search (table look-up, random search), its best
  architecture trained and pruned on the real Cora data under NAS-Bench-Graph's protocol (the
  raw Planetoid files under ``--data-root``);
* ``nb201``: a NAS-Bench-201-cell search trained on the scikit-learn digits images
  (``image:digits``);
* ``mlp``: an MLP search trained on the scikit-learn digits table (``tabular:digits``).

Reported: test accuracy (mean, standard deviation and the per-seed values) of the dense
reference and of each method at each sparsity; the goals of the issue "Compress the found
network": ``imp`` within 1 point of the dense model at 90% sparsity on every task, and
``random`` below ``imp`` at 90% (reported whatever it shows).

Example::

    python benchmarks/compress.py --seeds 3 --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import header, machine_lines, markdown_table, publish

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "compress.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
METHODS = ("imp", "magnitude", "random", "channels")
UNSTRUCTURED = ("imp", "magnitude", "random")
TASKS = ("gnn", "nb201", "mlp")
GOAL_LEVEL, GOAL_POINTS = 0.9, 1.0


@dataclass
class Case:
    """One task at one seed: the searched trial and what compression made of it."""

    task: str
    seed: int
    source: str = ""
    dense: float = float("nan")
    dense_latency: float = float("nan")
    accuracy: dict[tuple[str, float], float] = field(default_factory=dict)
    nonzero: dict[tuple[str, float], float] = field(default_factory=dict)
    latency: dict[tuple[str, float], float] = field(default_factory=dict)
    dense_batch_latency: float = float("nan")
    batch_latency: dict[tuple[str, float], float] = field(default_factory=dict)
    widths: dict[tuple[str, float], str] = field(default_factory=dict)
    flops: dict[tuple[str, float], float] = field(default_factory=dict)
    seconds: float = 0.0
    search_seconds: float = 0.0


def _search(task: str, seed: int, db: Path, args: argparse.Namespace) -> None:
    import nasforge

    common: dict[str, Any] = {"db": db, "name": "src", "seed": seed, "strategy": "random"}
    if task == "gnn":
        nasforge.search(benchmark="nas-bench-graph:cora", budget=args.gnn_budget, **common)
        return
    spec = "image:digits" if task == "nb201" else "tabular:digits"
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    nasforge.search(task=spec, budget=args.budget, executor="inline", **common, **extra)


def run_case(task: str, seed: int, args: argparse.Namespace, methods: Sequence[str]) -> Case:
    import nasforge

    case = Case(task, seed)
    with tempfile.TemporaryDirectory(prefix="nasforge-compress-") as tmp:
        db = Path(tmp) / "c.db"
        start = time.perf_counter()
        _search(task, seed, db, args)
        case.search_seconds = time.perf_counter() - start
        best = nasforge.best("src", db=db)
        assert best is not None
        case.source = f"trial {best.number}: {best.arch}"
        start = time.perf_counter()
        for method in methods:
            run = nasforge.compress(
                "src",
                method=method,
                sparsity=args.sparsity,
                db=db,
                data_root=args.data_root if task == "gnn" else None,
                prune_ratio=args.prune_ratio,
            )
            for row in run.trials:
                if row.method == "dense":
                    case.dense, case.dense_latency = row.test, row.latency_ms
                    dense_flops = row.flops
                elif row.level:
                    key = (method, row.sparsity)
                    case.accuracy[key] = row.test
                    case.nonzero[key] = row.nonzero_params / row.params
                    case.latency[key] = row.latency_ms
                    case.flops[key] = row.flops / dense_flops
                    if row.widths:
                        case.widths[key] = ", ".join(f"{k} {v}" for k, v in row.widths.items())
        case.seconds = time.perf_counter() - start
        if "channels" in methods:
            _time_again(case, db, Path(tmp), args)
    levels = " ".join(
        f"{m}@{s:.2f}={a:.3f}" for (m, s), a in sorted(case.accuracy.items(), key=str)
    )
    print(f"{task} seed {seed}: dense {case.dense:.3f} {levels} ({case.seconds:.0f} s)", flush=True)
    return case


def _time_again(case: Case, db: Path, tmp: Path, args: argparse.Namespace) -> None:
    """Latency of the dense model and of each ``channels`` model, exported and loaded as a
    user gets them, timed in turns: the lowest of several medians of 20 calls each, so that
    a burst of load on this shared machine does not decide a ratio."""
    import nasforge
    from nasforge.train.cost import measure_latency_ms

    models = {}
    for trial in nasforge.trials("src-compressed", db=db):
        method, _, rest = trial.key.partition(":")
        level = float(rest.rpartition(":s")[2]) if method == "channels" else 0.0
        if method not in ("dense", "channels") or trial.status.value != "COMPLETE":
            continue
        folder = nasforge.export(
            "src-compressed",
            trial=trial.number,
            out=tmp / f"m{trial.number}",
            db=db,
            data_root=args.data_root if case.task == "gnn" else None,
        )
        models[(method, level)] = nasforge.load(folder)
    record = nasforge.api.experiment("src-compressed", db=db)
    from nasforge.exporting.rebuild import rebuild

    inputs = rebuild(record, data_root=args.data_root if case.task == "gnn" else None)
    example = inputs.task.raw_inputs()
    one = example if case.task == "gnn" else tuple(x[:1] for x in example)
    best: dict[tuple[str, float, int], float] = {}
    shapes = {0: one} if case.task == "gnn" else {0: one, 1: example}
    for _ in range(args.latency_rounds):
        for (method, level), model in models.items():
            for which, given in shapes.items():
                ms = measure_latency_ms(lambda m=model, g=given: m(*g), warmup=3, repeats=20)
                key = (method, level, which)
                best[key] = min(best.get(key, float("inf")), ms)
    case.dense_latency = best.get(("dense", 0.0, 0), case.dense_latency)
    case.dense_batch_latency = best.get(("dense", 0.0, 1), float("nan"))
    for (method, level, which), ms in best.items():
        if method == "channels":
            (case.latency if which == 0 else case.batch_latency)[(method, level)] = ms


def _points(values: Sequence[float]) -> str:
    """``mean ± std`` in accuracy points, with the per-seed values."""
    shown = [100 * v for v in values]
    if not shown:
        return "-"
    spread = statistics.stdev(shown) if len(shown) > 1 else 0.0
    each = ", ".join(f"{v:.1f}" for v in shown)
    return f"{statistics.fmean(shown):.2f} ± {spread:.2f} ({each})"


def _channels_table(cases: list[Case], levels: Sequence[float]) -> list[str]:
    """Test accuracy against measured latency for ``channels``, per level, with each seed's
    widths."""
    dense_ms = [c.dense_latency for c in cases]
    batch = all(c.batch_latency for c in cases)
    rows: list[list[object]] = [
        ["dense", "100%", _points([c.dense for c in cases]), _ms(dense_ms), "1.00x"]
        + ([_ms([c.dense_batch_latency for c in cases]), "1.00x"] if batch else [])
        + ["-"]
    ]
    for s in levels:
        key = ("channels", s)
        got = [c for c in cases if key in c.accuracy]
        if not got:
            continue
        speedups = [c.dense_latency / c.latency[key] for c in got]
        extra: list[object] = []
        if batch:
            many = [c.dense_batch_latency / c.batch_latency[key] for c in got]
            extra = [_ms([c.batch_latency[key] for c in got]), _ratio(many)]
        rows.append(
            [
                f"channels, {s:.0%} of FLOPs removed",
                " / ".join(f"{100 * c.flops[key]:.0f}%" for c in got),
                _points([c.accuracy[key] for c in got]),
                _ms([c.latency[key] for c in got]),
                _ratio(speedups),
                *extra,
                "; ".join(c.widths.get(key, "-") for c in got),
            ]
        )
    one = "latency ms (graph)" if not batch else "latency ms (1 example)"
    head = ["model", "FLOPs kept (per seed)", "test acc", one, "speed-up"]
    head += ["latency ms (32 examples)", "speed-up"] if batch else []
    head.append("widths")
    return [
        "Structured pruning (`channels`): a width search on the trained network within each "
        "FLOPs budget, the narrower network trained from scratch with distillation from the "
        "dense one. Latency: the exported models (`nasforge export`, then `nasforge.load`) "
        "timed in turns on this machine, on the whole graph or on one example; each figure is "
        "the lowest of 7 medians of 20 calls. Speed-up = dense latency / compressed latency, "
        "same seed.",
        "",
        *markdown_table(head, rows),
    ]


def _channels_goals(task: str, cases: list[Case], levels: Sequence[float]) -> list[list[object]]:
    """The fastest level within 1 point of dense (mean over seeds), and its speed-up."""
    dense = statistics.fmean(c.dense for c in cases)
    best: tuple[float, float] | None = None
    for s in levels:
        got = [c for c in cases if ("channels", s) in c.accuracy]
        if not got:
            continue
        acc = statistics.fmean(c.accuracy[("channels", s)] for c in got)
        speed = statistics.fmean(c.dense_latency / c.latency[("channels", s)] for c in got)
        if all(("channels", s) in c.batch_latency for c in got):  # 32 examples: a batch
            speed = statistics.fmean(
                c.dense_batch_latency / c.batch_latency[("channels", s)] for c in got
            )
        if 100 * (dense - acc) <= GOAL_POINTS and (best is None or speed > best[1]):
            best = (s, speed)
    if best is None:
        return [[task, "channels within 1 point of dense", "no level within 1 point", "NOT met"]]
    verdict = "met" if best[1] >= 2.0 else "NOT met"
    return [
        [
            task,
            "channels: speed-up within 1 point of dense (goal 2x; the graph, or 32 examples)",
            f"{best[1]:.2f}x at {best[0]:.0%} of FLOPs removed",
            verdict,
        ]
    ]


def _ratio(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.2f}x ({min(values):.2f} to {max(values):.2f})"


def _ms(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.3g} ({min(values):.3g} to {max(values):.3g})"


def report(
    cases: list[Case],
    args: argparse.Namespace,
    methods: Sequence[str],
    wall: float,
    planned: int | None = None,
) -> str:
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = header("Compression of searched networks", started, wall, machine_lines())
    if planned is not None and len(cases) < planned:
        lines += [
            "",
            f"**Partial report**: {len(cases)} of {planned} cases (task x seed) done when it "
            "was written; the run was still going (each finished case rewrites this file).",
        ]
    levels = tuple(args.sparsity)
    lines += [
        "",
        "Test accuracy in points: mean ± standard deviation over seeds (each seed's value in "
        "parentheses). The dense row is the searched architecture trained again with the "
        "search's settings and seed (the reference every method starts from). `imp`: prune "
        f"ratio {args.prune_ratio} of the remaining weights per round, rewinding to 5% of the "
        "epochs; `magnitude`: one shot, then fine-tuned for the epochs after the rewind epoch; "
        "`random`: magnitude pruning's per-layer counts at random positions, trained from the "
        "rewind point as `imp`. Sparsity counts the weight matrices and kernels (biases and "
        "normalisation stay dense).",
    ]
    goals: list[list[object]] = []
    for task in TASKS:
        mine = [c for c in cases if c.task == task]
        if not mine:
            continue
        lines += ["", f"## {task}", ""]
        lines += [
            f"- seed {c.seed}: {c.source}; search {c.search_seconds:.0f} s, compression "
            f"{c.seconds:.0f} s"
            for c in mine
        ]
        lines.append("")
        dense = [c.dense for c in mine]
        rows: list[list[object]] = [["dense", _points(dense), *["" for _ in levels]]]
        for method in [m for m in methods if m in UNSTRUCTURED]:
            cells = [
                _points([c.accuracy[(method, s)] for c in mine if (method, s) in c.accuracy])
                for s in levels
            ]
            rows.append([method, "", *cells])
        head = ["method", "0%", *(f"{s:.0%}" for s in levels)]
        if len(rows) > 1:
            lines += markdown_table(head, rows)
        if "channels" in methods:
            lines += ["", *_channels_table(mine, levels)]
            goals += _channels_goals(task, mine, levels)
        if "imp" in methods and GOAL_LEVEL in levels:
            imp = [c.accuracy.get(("imp", GOAL_LEVEL), float("nan")) for c in mine]
            gap = 100 * (statistics.fmean(dense) - statistics.fmean(imp))
            goals.append(
                [
                    task,
                    f"imp {GOAL_LEVEL:.0%} vs dense",
                    f"{gap:+.2f} points below dense",
                    "met" if gap <= GOAL_POINTS else "NOT met",
                ]
            )
            if "random" in methods:
                rnd = [c.accuracy.get(("random", GOAL_LEVEL), float("nan")) for c in mine]
                diff = 100 * (statistics.fmean(imp) - statistics.fmean(rnd))
                per = ", ".join(f"{100 * (a - b):+.1f}" for a, b in zip(imp, rnd, strict=True))
                goals.append(
                    [
                        task,
                        f"random {GOAL_LEVEL:.0%} vs imp",
                        f"imp {diff:+.2f} points ({per})",
                        "random below imp" if diff > 0 else "random NOT below imp",
                    ]
                )
    if goals:
        lines += ["", "## Goals", ""]
        lines += markdown_table(["task", "comparison", "measured", "verdict"], goals)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="gnn,nb201,mlp")
    parser.add_argument("--methods", default=",".join(METHODS), help="imp,magnitude,random")
    parser.add_argument("--sparsity", default="0.5,0.8,0.9,0.95")
    parser.add_argument("--prune-ratio", type=float, default=0.5)
    parser.add_argument("--budget", type=int, default=6, help="trained trials per search")
    parser.add_argument("--gnn-budget", type=int, default=50, help="table look-ups on Cora")
    parser.add_argument(
        "--epochs", type=int, help="training epochs of the searches (default theirs)"
    )
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument(
        "--latency-rounds", type=int, default=7, help="channels: timing rounds (lowest median)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.sparsity = [float(s) for s in args.sparsity.split(",")]
    tasks = [t for t in args.tasks.split(",") if t]
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(tasks) - set(TASKS)) + sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown task or method: {', '.join(unknown)}")
    if "gnn" in tasks and not (args.data_root / "Cora" / "raw").is_dir():
        print(f"no Cora raw files under {args.data_root}: skipping gnn (pass --data-root)")
        tasks.remove("gnn")
    start = time.perf_counter()
    # seed by seed: a run stopped early has every task side by side on its first seeds
    planned = [(t, s) for s in range(args.seeds) for t in tasks]
    cases: list[Case] = []
    for task, seed in planned:
        cases.append(run_case(task, seed, args, methods))
        if len(cases) < len(planned):  # a run stopped early still leaves its figures
            partial = report(cases, args, methods, time.perf_counter() - start, len(planned))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(partial, encoding="utf-8")
    publish(report(cases, args, methods, time.perf_counter() - start), args.out)


if __name__ == "__main__":
    main()

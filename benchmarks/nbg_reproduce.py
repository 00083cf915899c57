"""Reproduce NAS-Bench-Graph's Cora numbers by training its anchor architectures for real.

Trains the 10 anchor architectures shipped by the ``nas-bench-graph`` package on Cora (public
Planetoid split, read offline from a local ``raw/`` folder) under the benchmark's Cora protocol
(``nasforge.benchmarks.nbg_protocol``: hidden 256, dropout 0.7, no pre-processing, one
post-processing layer, gat with 4 heads, plain SGD lr 0.1, weight decay 5e-4, 400 epochs, no
early stopping; test accuracy at the epoch of lowest validation loss, as the benchmark's own
training worker; PyTorch's reference ops, ``exact=True``, as the benchmark's code used), with
3 seeds each, and compares the mean with the table. Goal: mean absolute difference of test
accuracy <= 1.5 points.

Example::

    python benchmarks/nbg_reproduce.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from nas_bench_graph import anchors

from _report import header, machine_lines, markdown_table, publish
from nasforge.benchmarks.nas_bench_graph import load_table
from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.spaces.gnn import GnnSpace
from nasforge.tasks.node import NodeClassificationTask, load_planetoid

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "nbg_reproduce.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
GOAL_PP = 1.5


@dataclass(frozen=True, slots=True)
class Run:
    """One training run of one anchor."""

    index: int
    seed: int
    val: float
    val_max: float
    test: float
    seconds: float
    note: str | None
    early_losses: tuple[float, ...] = ()

    @property
    def diverged(self) -> bool:
        return self.note is not None


def train_one(root: str, index: int, seed: int, epochs: int) -> Run:
    """Train anchor ``index`` with ``seed`` under the Cora protocol."""
    import torch

    torch.set_num_threads(1)
    proto = PROTOCOLS["cora"]
    task = NodeClassificationTask("planetoid:Cora", load_planetoid("Cora", root))
    evaluator = TrainingEvaluator(
        task=task,
        space=GnnSpace(),
        hyper=proto.hyper(),
        # as the benchmark's loop: on a NaN loss, the best epoch before it; and its ops
        train=proto.train_config(seed=seed, epochs=epochs, on_divergence="keep_best", exact=True),
        latency=False,
    )
    anchor = anchors[index]
    result = evaluator.evaluate(evaluator.space.make(anchor.link, anchor.ops))
    if not result.ok:  # diverged in the first epoch: nothing to keep
        return Run(index, seed, math.nan, math.nan, math.nan, result.wall_time, result.reason)
    return Run(
        index,
        seed,
        result.metrics["val_acc"],
        max(point["val_acc"] for point in result.curve),
        result.test_metrics["test_acc"],
        result.wall_time,
        result.reason,
        tuple(point["train_loss"] for point in result.curve[:4]),
    )


def parse_indices(text: str) -> list[int]:
    """Anchor indices from ``"2"`` or ``"0,2,7"``."""
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected anchor indices such as 2 or 0,2,7, got {text!r}"
        ) from None
    bad = [i for i in indices if not 0 <= i < len(anchors)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"anchor indices run from 0 to {len(anchors) - 1}, got {bad[0]}"
        )
    return sorted(set(indices))


def abs_diffs(runs: Sequence[Run], test_of: dict[int, float]) -> list[float]:
    """|mean test of ``runs`` - table test| in points, of each anchor with a completed run."""
    return [
        abs(statistics.mean(r.test for r in mine) - test_of[i]) * 100
        for i in sorted(test_of)
        if (mine := [r for r in runs if r.index == i and math.isfinite(r.test)])
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--anchors", type=int, default=len(anchors), help="the first N anchors (default: all)"
    )
    parser.add_argument("--only", type=parse_indices, help="these anchors instead, e.g. 2 or 0,2,7")
    parser.add_argument("--epochs", type=int, default=PROTOCOLS["cora"].epochs)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_planetoid("Cora", args.data_root)  # fail early, and process once
    indices = args.only or list(range(args.anchors))
    jobs = [(i, s) for i in indices for s in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(train_one, args.data_root, i, s, args.epochs) for i, s in jobs]
        runs = [f.result() for f in futures]
    wall = time.perf_counter() - t0
    table = load_table("cora")
    rows, notes = [], []
    for i in indices:
        mine = [r for r in runs if r.index == i and math.isfinite(r.test)]
        notes += [
            f"- anchor {r.index} seed {r.seed}: {r.note}"
            + (
                f"; training loss of epochs 1-{len(r.early_losses)}: "
                + ", ".join(f"{x:.2f}" for x in r.early_losses)
                if r.early_losses
                else ""
            )
            for r in runs
            if r.index == i and r.diverged
        ]
        row = table[anchors[i].valid_hash()]
        if not mine:
            rows.append(
                [
                    str(i),
                    f"{anchors[i].link}",
                    ",".join(anchors[i].ops),
                    "-",
                    "-",
                    f"{row.valid * 100:.2f}",
                    "no run completed",
                    f"{row.test * 100:.2f}",
                    "-",
                    f"{args.seeds} of {args.seeds}",
                    "-",
                ]
            )
            continue
        val = statistics.mean(r.val for r in mine) * 100
        val_max = statistics.mean(r.val_max for r in mine) * 100
        test = statistics.mean(r.test for r in mine) * 100
        sd = statistics.stdev(r.test * 100 for r in mine) if len(mine) > 1 else 0.0
        rows.append(
            [
                str(i),
                f"{anchors[i].link}",
                ",".join(anchors[i].ops),
                f"{val:.2f}",
                f"{val_max:.2f}",
                f"{row.valid * 100:.2f}",
                f"{test:.2f} ± {sd:.2f} (n={len(mine)})",
                f"{row.test * 100:.2f}",
                f"{test - row.test * 100:+.2f}",
                f"{sum(r.diverged for r in runs if r.index == i)} of {args.seeds}",
                f"{statistics.mean(r.seconds for r in mine):.1f}",
            ]
        )
    test_of = {i: table[anchors[i].valid_hash()].test for i in indices}
    diffs = abs_diffs(runs, test_of)
    if not diffs:
        raise SystemExit("no run completed: nothing to compare with the table")
    mad = statistics.mean(diffs)
    steady_diffs = abs_diffs([r for r in runs if not r.diverged], test_of)
    lines = [
        *header("NAS-Bench-Graph anchors trained on Cora", started, wall, machine_lines()),
        "",
        "## Protocol",
        "",
        f"{len(diffs)} of {len(indices)} anchors compared. "
        f"Anchor{'s' if len(indices) > 1 else ''} {', '.join(map(str, indices))} of the "
        f"{len(anchors)} architectures of `nas_bench_graph.anchors` x {args.seeds} seeds, "
        "Cora public Planetoid split (140/500/1000) from local raw files; NB-Graph's Cora "
        f"protocol ({PROTOCOLS['cora']}), {args.epochs} epochs without early stopping; "
        "val/test = accuracy at the epoch of lowest validation loss (earliest on ties), as the "
        "benchmark's training worker reports a run; `val max` = the highest validation "
        "accuracy of any epoch, which is what the table's validation column matches; averaged "
        f"over seeds; {args.workers} worker processes with 1 torch thread each. The table's "
        "numbers are NB-Graph's own means over its 3 seeds.",
        "",
        "## Results (accuracy x100)",
        "",
        *markdown_table(
            [
                "#",
                "links",
                "ops",
                "val (ours)",
                "val max (ours)",
                "val (table)",
                "test (ours) ± sd",
                "test (table)",
                "diff",
                "diverged",
                "s/run",
            ],
            rows,
        ),
        "",
        f"**Mean absolute test difference: {mad:.2f} points** "
        f"(goal <= {GOAL_PP}: {'met' if mad <= GOAL_PP else 'NOT met'}); "
        f"max {max(diffs):.2f}.",
        "",
        "The same figure over the runs that did not diverge only (not the goal's criterion, "
        "which takes every run; shown to separate divergence from the other differences): "
        + (f"{statistics.mean(steady_diffs):.2f} points" if steady_diffs else "no such run")
        + ".",
        "",
        "Runs whose loss diverged (kept: the best epoch before it, as the benchmark's own loop "
        "did):",
        "",
        *(notes or ["- none"]),
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

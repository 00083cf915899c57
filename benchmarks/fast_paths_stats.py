"""Same statistics on images and tables: nasforge's fast training paths against ``exact``.

The fast paths of the supervised trainer (fused optimizers, images held channels last on a
CPU, dropout masks drawn as ``rand >= p``) change the rounding and the random streams, not
the distribution of what training gives. This script shows it: ``--seeds`` seeds of each
architecture trained with ``exact=True`` (PyTorch's reference ops and optimizers) and with the
fast paths, the task's own recipe; mean and spread of test accuracy, Welch's two-sample t-test
and the Mann-Whitney U test of the two samples (a small p-value would say the distributions
differ). Graphs: ``benchmarks/fast_ops.py``.

Example::

    python benchmarks/fast_paths_stats.py --seeds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from _report import header, machine_lines, markdown_table, publish
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Space
from nasforge.tasks.base import resolve_task
from nasforge.train.supervised import train_supervised

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fast_paths_stats.md"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--epochs-scale", type=float, default=1.0, help="times the recipes' epochs (20, 100)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t_all = time.perf_counter()
    nb201, mlp = Nb201Space(), MlpSpace()
    images, tables = resolve_task("image:digits"), resolve_task("tabular:digits")
    image = replace(images.train, epochs=max(1, round(20 * args.epochs_scale)))
    tab = replace(tables.train, epochs=max(1, round(100 * args.epochs_scale)))
    cases = [
        (
            f"nb201 `{nb201.canonical_key(a)}`, image:digits recipe",
            lambda a=a: nb201.build(a, images.task, images.hyper),
            images.task,
            image,
        )
        for a in (nb201.make(["nor_conv_3x3"] * 6), nb201.sample(np.random.default_rng(1)))
    ] + [
        (
            f"mlp `{mlp.canonical_key(a)}`, tabular:digits recipe",
            lambda a=a: mlp.build(a, tables.task),
            tables.task,
            tab,
        )
        for a in (
            mlp.make(hidden=[256, 256], activation="relu", dropout=0.2, norm="batch"),
            mlp.make(hidden=[128, 64], activation="gelu", dropout=0.5, norm="layer"),
        )
    ]
    rows: list[list[object]] = []
    for name, make, task, recipe in cases:
        acc: dict[bool, list[float]] = {True: [], False: []}
        seconds: dict[bool, float] = {True: 0.0, False: 0.0}
        for seed in range(args.seeds):
            for exact in (True, False):
                config = replace(recipe, seed=seed, exact=exact)
                torch.manual_seed(seed)
                model = make()
                start = time.perf_counter()
                acc[exact].append(train_supervised(model, task, config).test * 100)
                seconds[exact] += time.perf_counter() - start
        welch = stats.ttest_ind(acc[True], acc[False], equal_var=False).pvalue
        mwu = stats.mannwhitneyu(acc[True], acc[False]).pvalue
        rows.append(
            [
                name,
                f"{statistics.fmean(acc[True]):.2f} ± {statistics.stdev(acc[True]):.2f}",
                f"{statistics.fmean(acc[False]):.2f} ± {statistics.stdev(acc[False]):.2f}",
                f"{welch:.2f}",
                f"{mwu:.2f}",
                f"{seconds[True] / seconds[False]:.2f}",
            ]
        )
        print(rows[-1], flush=True)
    wall = time.perf_counter() - t_all
    lines = [
        *header(
            "Fast paths against exact training on images and tables", started, wall, machine_lines()
        ),
        f"- torch threads: {args.threads}",
        "",
        f"Test accuracy (%) over {args.seeds} seeds (0..{args.seeds - 1}; the seed fixes the "
        "initial weights, batch order and dropout), mean ± standard deviation, each path with "
        f"the task's recipe (images: {image.epochs} epochs; tables: up to {tab.epochs} epochs "
        "with patience 20, the best validation epoch's test accuracy); p-values of Welch's "
        "t-test and of the Mann-Whitney U test of the two samples; the summed training time of "
        "the exact path over the fast one.",
        "",
        *markdown_table(
            ["architecture", "exact", "fast", "Welch p", "Mann-Whitney p", "time exact / fast"],
            rows,
        ),
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

"""Where a training epoch goes: ``torch.profiler`` over nasforge's trainers, per task family.

For each family (a node GNN under NAS-Bench-Graph's Cora protocol, the PyG GCN example's
setting, ``nb201`` cells on digits, an ``mlp`` on a scikit-learn table) and each path
(``exact``: PyTorch's reference ops and optimizers; ``fast``: what a search runs), one
warm-up epoch, then ``--epochs`` profiled epochs of the real trainer. Printed and written:

* the epoch time, and its split into kinds of work: dense products and convolutions (the
  arithmetic the machine exists for), sparse products and message passing, random draws
  and masks, normalisation, the optimizer's update, and the rest;
* the top operators by self time (ms per epoch and share).

The share of the epoch spent in products and convolutions is the "distance from the limit":
a loop at the hardware's speed spends nearly all its time there.

Example::

    python benchmarks/train_profile.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from _report import header, machine_lines, markdown_table, publish
from nasforge.architecture import Architecture
from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.spaces.base import SPACES
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Space
from nasforge.tasks.base import resolve_task
from nasforge.tasks.node import NodeClassificationTask, load_planetoid
from nasforge.train.supervised import train_supervised
from nasforge.train.trainer import TrainConfig, train_node_classifier

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "train_profile.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"

KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "dense products, convolutions",
        (
            "aten::mm",
            "aten::addmm",
            "aten::bmm",
            "aten::baddbmm",
            "aten::addmv",
            "aten::mv",
            "aten::_addmm_activation",
            "aten::mkldnn_convolution",
            "aten::convolution_backward",
            "aten::_convolution",
            "aten::thnn_conv2d",
            "aten::_slow_conv2d_forward",
            "aten::_slow_conv2d_backward",
        ),
    ),
    (
        "sparse products, message passing",
        (
            "sparse",
            "csr",
            "aten::scatter",
            "aten::scatter_add_",
            "aten::scatter_reduce",
            "aten::index_add_",
            "aten::index_select",
            "aten::gather",
            "aten::segment_reduce",
            "torch_sparse",
        ),
    ),
    (
        "random draws, dropout masks",
        ("bernoulli", "aten::uniform_", "aten::rand", "aten::native_dropout", "aten::randperm"),
    ),
    ("normalisation", ("batch_norm", "layer_norm")),
    (
        "optimizer update",
        ("Optimizer", "_fused_adam", "_fused_sgd", "aten::_foreach", "aten::lerp", "aten::sqrt"),
    ),
)
"""Kinds of work, each named by substrings of operator names (first match wins)."""


def kind_of(name: str) -> str:
    for kind, marks in KINDS:
        if any(mark in name for mark in marks):
            return kind
    return "other"


Train = Callable[[TrainConfig], None]


def families(data_root: str) -> list[tuple[str, Train, TrainConfig]]:
    """(name, train for a config's epochs, base config) of each family."""
    cora = load_planetoid("Cora", data_root)
    node = NodeClassificationTask("planetoid:Cora", cora)
    gnn = GnnSpace()
    proto = PROTOCOLS["cora"]
    drawn = gnn.sample(np.random.default_rng(0))

    def node_family(arch: object, hyper: GnnHyper) -> Train:
        def run(config: TrainConfig) -> None:
            torch.manual_seed(0)
            model = gnn.build(arch, node, hyper)  # type: ignore[arg-type]
            train_node_classifier(model, cora, config)

        return run

    def batch_family(spec: str, arch: Architecture) -> tuple[Train, TrainConfig]:
        """Train ``arch`` on task ``spec`` with its space and recipe (no early stopping)."""
        setup = resolve_task(spec)
        space = SPACES.create(setup.space)

        def run(config: TrainConfig) -> None:
            torch.manual_seed(0)
            model = space.build(arch, setup.task, setup.hyper)
            train_supervised(model, setup.task, config)  # type: ignore[arg-type]

        return run, replace(setup.train, patience=None)

    cell = Nb201Space().make(["nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"] * 2)
    mlp = MlpSpace()
    wide = mlp.make(hidden=[256, 256], activation="relu", dropout=0.2, norm="batch")

    two_gcn = gnn.make([0, 1, 2, 3], ["gcn", "gcn", "skip", "skip"])
    nbg_config = TrainConfig(
        **{**proto.train_config().describe(), "patience": None, "on_divergence": "keep_best"}
    )
    return [
        (
            "gnn `gcn -> gcn`, NB-Graph Cora protocol",
            node_family(two_gcn, proto.hyper()),
            nbg_config,
        ),
        (
            f"gnn `{gnn.canonical_key(drawn)}` (drawn), NB-Graph Cora protocol",
            node_family(drawn, proto.hyper()),
            nbg_config,
        ),
        (
            "gnn `gcn -> gcn`, PyG GCN example (hidden 16, dropout 0.5, Adam)",
            node_family(two_gcn, GnnHyper(hidden=16, dropout=0.5, pre=0, post=0)),
            TrainConfig(lr=0.01, weight_decay=5e-4, optimizer="adam", patience=None),
        ),
        (
            f"nb201 `{Nb201Space().canonical_key(cell)}` on digits (C=8, N=1, SGD, batch 64)",
            *batch_family("image:digits", cell),
        ),
        (
            f"mlp `{mlp.canonical_key(wide)}` on the digits table (Adam, batch 64)",
            *batch_family("tabular:digits", wide),
        ),
    ]


def profile_one(
    train: Train, config: TrainConfig, epochs: int, top: int
) -> tuple[float, dict[str, float], list[tuple[str, float]]]:
    """(ms per epoch, ms per epoch by kind, top operators by self ms per epoch)."""
    train(replace(config, epochs=1))  # warm-up
    run = replace(config, epochs=epochs)
    start = time.perf_counter()
    train(run)
    wall = (time.perf_counter() - start) / epochs * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(run)
    by_op: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        by_op[event.key] += event.self_cpu_time_total / 1e3 / epochs
    by_kind: dict[str, float] = defaultdict(float)
    for name, ms in by_op.items():
        by_kind[kind_of(name)] += ms
    ranked = sorted(by_op.items(), key=lambda item: -item[1])[:top]
    return wall, dict(by_kind), ranked


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--epochs", type=int, default=5, help="profiled epochs per run")
    parser.add_argument("--top", type=int, default=8, help="operators listed per run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t_all = time.perf_counter()
    kinds = [kind for kind, _ in KINDS] + ["other"]
    summary: list[list[object]] = []
    details: list[str] = []
    for name, train, config in families(args.data_root):
        for path in ("exact", "fast"):
            cfg = replace(config, exact=path == "exact")
            wall, by_kind, ranked = profile_one(train, cfg, args.epochs, args.top)
            profiled = sum(by_kind.values()) or 1.0
            summary.append(
                [
                    name,
                    path,
                    f"{wall:.1f}",
                    *(f"{by_kind.get(kind, 0.0) / profiled * 100:.0f}" for kind in kinds),
                ]
            )
            details += [
                f"### {name}, {path}",
                "",
                f"{wall:.1f} ms per epoch unprofiled; {profiled:.1f} ms of operator self time "
                "per epoch profiled.",
                "",
                *markdown_table(
                    ["operator", "self ms / epoch", "share %", "kind"],
                    [
                        [f"`{op}`", f"{ms:.2f}", f"{ms / profiled * 100:.1f}", kind_of(op)]
                        for op, ms in ranked
                    ],
                ),
                "",
            ]
            print(summary[-1], flush=True)
    wall = time.perf_counter() - t_all
    lines = [
        *header("Where a training epoch goes", started, wall, machine_lines()),
        f"- torch threads: {args.threads}; {args.epochs} profiled epochs per run after one "
        "warm-up epoch",
        "",
        "One epoch = a training pass and the validation and test evaluation, in nasforge's "
        "trainers. Shares are of the operators' self time (CPU), by kind of work; the first "
        "kind is the arithmetic a loop at the hardware's speed spends its time on.",
        "",
        "## Summary",
        "",
        *markdown_table(["family", "path", "ms / epoch", *(f"{k} %" for k in kinds)], summary),
        "",
        "## Top operators by self time",
        "",
        *details,
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

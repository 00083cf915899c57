"""Training with nasforge's fast ops against PyTorch's reference ops, on the real Cora data.

Two questions, side by side in one run:

1. **Speed.** Under NAS-Bench-Graph's Cora protocol (hidden 256, dropout 0.7, no
   pre-processing layer, plain SGD; ``nasforge.benchmarks.nbg_protocol``), one two-layer
   architecture per op (the op on the raw features, then on the hidden representation), and
   the PyG GCN example's setting (hidden 16, dropout 0.5, Adam lr 0.01) as a ``gcn -> gcn``
   architecture, beside the example's own hand-written loop and model. Each is trained for
   ``--epochs`` epochs with ``exact=True`` (PyTorch's ops) and with the fast ops
   (``nasforge.train.fastops``: dropout drawn only for the features' non-zeros and kept
   sparse; ``nasforge.spaces.gnn_sparse``: layers that aggregate first project first),
   alternating, ``--repeats`` timed rounds after a warm-up. Figure: ratio of median epoch
   times (exact / fast).
2. **Same statistics.** ``--seeds`` seeds of ``--stats-ops`` architectures trained for the
   full protocol (400 epochs, the epoch of lowest validation loss reported) on each path: mean
   and spread of test accuracy, and Welch's two-sample t-test and the Mann-Whitney U test of
   the two samples (the fast path changes the random streams, not the distribution: a small
   p-value would say otherwise).

Example::

    python benchmarks/fast_ops.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from _report import header, machine_lines, markdown_table, publish
from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.tasks.node import NodeClassificationTask, load_planetoid
from nasforge.train.trainer import TrainConfig, train_node_classifier

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "fast_ops.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
OPS = ("gcn", "gat", "fc", "sage", "gin", "graph", "cheb", "arma")
SPACE = GnnSpace()


class ExampleGcn(nn.Module):
    """The two-layer GCN of PyG's examples/gcn.py, with its own dropout."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_dim, hidden)
        self.conv2 = GCNConv(hidden, out_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)  # type: ignore[no-any-return]


def bare_loop(model: nn.Module, data: Data, epochs: int) -> None:
    """The example's hand-written loop: a train step, then evaluation, every epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(dim=-1)
            int((pred[data.val_mask] == data.y[data.val_mask]).sum())


def two_layers(op: str) -> object:
    """``op`` on the raw features, then ``op`` on its output (a skip chain to the output)."""
    return SPACE.make([0, 1, 2, 3], [op, op, "skip", "skip"])


def train(
    task: NodeClassificationTask, arch: object, hyper: GnnHyper, config: TrainConfig
) -> tuple[float, float]:
    """(ms per epoch, test accuracy) of one training; a diverging loss ends it with the best
    epoch before, as NAS-Bench-Graph's loop did (gin on raw features under SGD lr 0.1)."""
    config = TrainConfig(**{**config.describe(), "on_divergence": "keep_best"})
    torch.manual_seed(config.seed)
    model = SPACE.build(arch, task, hyper)  # type: ignore[arg-type]
    start = time.perf_counter()
    out = train_node_classifier(model, task.data, config)
    return (time.perf_counter() - start) / out.epochs_run * 1e3, out.test_acc


def speed(task: NodeClassificationTask, epochs: int, repeats: int) -> list[list[object]]:
    proto = PROTOCOLS["cora"]
    settings: list[tuple[str, object, GnnHyper, TrainConfig]] = [
        (
            f"{op} -> {op} (NB-Graph Cora protocol)",
            two_layers(op),
            proto.hyper(),
            proto.train_config(),
        )
        for op in OPS
    ]
    example = TrainConfig(lr=0.01, weight_decay=5e-4, optimizer="adam", patience=None)
    settings.append(
        (
            "gcn -> gcn (PyG example: hidden 16, dropout 0.5, Adam)",
            two_layers("gcn"),
            GnnHyper(hidden=16, dropout=0.5, pre=0, post=0),
            example,
        )
    )
    rows: list[list[object]] = []
    for name, arch, hyper, base in settings:
        times: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(repeats + 1):  # round 0 warms up
            for exact in (True, False):
                config = TrainConfig(**{**base.describe(), "epochs": epochs, "exact": exact})
                ms, _ = train(task, arch, hyper, config)
                if round_:
                    times[exact].append(ms)
        ref, fast = statistics.median(times[True]), statistics.median(times[False])
        rows.append(
            [
                name,
                f"{ref:.1f} ({min(times[True]):.1f}-{max(times[True]):.1f})",
                f"{fast:.1f} ({min(times[False]):.1f}-{max(times[False]):.1f})",
                f"**{ref / fast:.2f}**",
            ]
        )
        print(rows[-1], flush=True)
    bare: list[float] = []
    for round_ in range(repeats + 1):
        torch.manual_seed(0)
        model = ExampleGcn(task.num_features, 16, task.num_classes)
        start = time.perf_counter()
        bare_loop(model, task.data, epochs)
        if round_:
            bare.append((time.perf_counter() - start) / epochs * 1e3)
    fast_example = float(str(rows[-1][2]).split()[0])
    rows.append(
        [
            "PyG example's own model and hand-written loop (reference ops)",
            f"{statistics.median(bare):.1f} ({min(bare):.1f}-{max(bare):.1f})",
            "-",
            f"bare / nasforge fast: **{statistics.median(bare) / fast_example:.2f}**",
        ]
    )
    print(rows[-1], flush=True)
    return rows


def statistics_rows(
    task: NodeClassificationTask, ops: Sequence[str], seeds: int, epochs: int | None
) -> list[list[object]]:
    proto = PROTOCOLS["cora"]
    rows: list[list[object]] = []
    for op in ops:
        accs: dict[bool, list[float]] = {True: [], False: []}
        for seed in range(seeds):
            for exact in (True, False):
                config = proto.train_config(seed=seed, exact=exact)
                if epochs:
                    config = TrainConfig(**{**config.describe(), "epochs": epochs})
                _, acc = train(task, two_layers(op), proto.hyper(), config)
                accs[exact].append(100 * acc)
        welch = stats.ttest_ind(accs[True], accs[False], equal_var=False)
        mwu = stats.mannwhitneyu(accs[True], accs[False])
        rows.append(
            [
                f"{op} -> {op}",
                f"{statistics.fmean(accs[True]):.2f} ± {statistics.stdev(accs[True]):.2f}",
                f"{statistics.fmean(accs[False]):.2f} ± {statistics.stdev(accs[False]):.2f}",
                f"{welch.pvalue:.2f}",
                f"{mwu.pvalue:.2f}",
            ]
        )
        print(rows[-1], flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--epochs", type=int, default=40, help="epochs per timed training")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--stats-ops", default="gcn,sage", help="comma-separated ops")
    parser.add_argument(
        "--stats-epochs", type=int, default=None, help="instead of the protocol's (smoke runs)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    task = NodeClassificationTask("planetoid:Cora", load_planetoid("Cora", args.data_root))
    speed_rows = speed(task, args.epochs, args.repeats)
    ops = [op for op in args.stats_ops.split(",") if op]
    stat_rows = statistics_rows(task, ops, args.seeds, args.stats_epochs) if args.seeds > 1 else []
    lines = [
        *header(
            "Fast ops against PyTorch's reference ops in real training (Cora)",
            started,
            time.perf_counter() - t0,
            machine_lines(),
        ),
        f"- torch threads: {torch.get_num_threads()}",
        "",
        "## Epoch time",
        "",
        f"ms per epoch (a training step and an evaluation), median (min-max) of {args.repeats} "
        f"trainings of {args.epochs} epochs after a warm-up, the two paths alternating; "
        "the same seed, model and data.",
        "",
        *markdown_table(
            ["architecture", "reference ops (exact)", "fast ops", "exact / fast"], speed_rows
        ),
    ]
    if stat_rows:
        lines += [
            "",
            "## Same statistics",
            "",
            f"Test accuracy (%) over {args.seeds} seeds (0..{args.seeds - 1}), NB-Graph's Cora "
            f"protocol ({args.stats_epochs or 400} epochs, the epoch of lowest validation loss; "
            "400 is the protocol's), mean ± standard "
            "deviation; p-values of Welch's t-test and of the Mann-Whitney U test of the two "
            "samples.",
            "",
            *markdown_table(
                ["architecture", "reference ops", "fast ops", "Welch p", "Mann-Whitney p"],
                stat_rows,
            ),
        ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

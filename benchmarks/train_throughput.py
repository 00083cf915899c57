"""nasforge's trainer against a bare PyG training loop: same GCN, same data, same work.

Both train the standard two-layer GCN of PyG's example (hidden 16, dropout 0.5, Adam lr 0.01,
weight decay 5e-4) on Cora for 200 epochs, evaluating validation and test accuracy after every
epoch, from the same initial weights. Runs alternate between the two, several times; the
figure is the ratio of median wall times (nasforge / bare). Goal: <= 1.05.

Example::

    python benchmarks/train_throughput.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from _report import header, machine_lines, markdown_table, publish
from nasforge.tasks.node import load_planetoid
from nasforge.train.trainer import TrainConfig, train_node_classifier

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "train_throughput.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
GOAL = 1.05


class GCN(nn.Module):
    """The two-layer GCN of PyG's examples/gcn.py."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_dim, hidden)
        self.conv2 = GCNConv(hidden, out_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)  # type: ignore[no-any-return]


def bare_loop(model: nn.Module, data: Data, epochs: int) -> float:
    """A hand-written loop: train step, then validation and test accuracy, every epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best_val = test_at_best = 0.0
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(dim=-1)
        val = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
        test = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
        if val > best_val:
            best_val, test_at_best = val, test
    return test_at_best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    data = load_planetoid("Cora", args.data_root)
    torch.manual_seed(0)
    initial = GCN(data.num_features, 16, int(data.y.max()) + 1)
    config = TrainConfig(
        epochs=args.epochs, lr=0.01, weight_decay=5e-4, optimizer="adam", patience=None
    )
    times: dict[str, list[float]] = {"nasforge": [], "bare": []}
    tests: dict[str, list[float]] = {"nasforge": [], "bare": []}
    t_all = time.perf_counter()
    for _ in range(args.repeats + 1):  # the first round warms up and is not counted
        for who in ("bare", "nasforge"):
            model = copy.deepcopy(initial)
            torch.manual_seed(1)
            start = time.perf_counter()
            if who == "bare":
                test = bare_loop(model, data, args.epochs)
            else:
                test = train_node_classifier(model, data, config).test_acc
            times[who].append(time.perf_counter() - start)
            tests[who].append(test)
    wall = time.perf_counter() - t_all
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    ratio = med["nasforge"] / med["bare"]
    rows = [
        [
            who,
            f"{med[who]:.3f}",
            f"{min(times[who][1:]):.3f}",
            f"{max(times[who][1:]):.3f}",
            f"{med[who] / args.epochs * 1e3:.2f}",
            f"{statistics.mean(tests[who][1:]) * 100:.2f}",
        ]
        for who in ("bare", "nasforge")
    ]
    lines = [
        *header("Training loop throughput: nasforge vs bare PyG", started, wall, machine_lines()),
        f"- torch threads: {args.threads}",
        "",
        "## Protocol",
        "",
        f"Two-layer GCN (PyG example: hidden 16, dropout 0.5, Adam lr 0.01, wd 5e-4) on Cora, "
        f"{args.epochs} epochs, validation and test accuracy after every epoch in both loops, "
        f"same initial weights and seed; {args.repeats} timed rounds alternating bare/nasforge "
        "after one warm-up round. nasforge = `train_node_classifier` (early stopping off).",
        "",
        *markdown_table(
            ["loop", "median s", "min s", "max s", "ms/epoch", "test acc (mean, x100)"], rows
        ),
        "",
        f"**Time ratio nasforge / bare (medians): {ratio:.3f}** "
        f"(goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'}).",
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

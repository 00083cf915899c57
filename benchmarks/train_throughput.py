"""nasforge's trainers against the training loop a user would write, for every task family.

For each family, side by side in one run, the same model (same initial weights), data, epochs
and work per epoch (a training pass, then validation and test metrics):

* **bare**: the hand-written loop, with PyTorch's (and PyG's) own ops (a space's model runs
  them under ``exact_ops``, as the same module written by a user would). Graphs: PyG's
  ``examples/gcn.py`` (its model and loop) for the example's setting; for NAS-Bench-Graph's
  Cora protocol, the space's own model (PyG layers) in an example-style loop. Images and
  tables: plain PyTorch, ``DataLoader(TensorDataset(...), shuffle=True)`` as its tutorials
  write it; beside it the same loop slicing a shuffled index instead (what an experienced
  user writes, to show how much of the gap is the data loader);
* **nasforge exact**: nasforge's trainer with ``exact=True`` (PyTorch's reference ops);
* **nasforge**: nasforge's trainer as a search runs it (``nasforge.train.fastops``: sparse
  feature dropout, ``rand >= p`` masks, layers that aggregate first project first; fused
  optimizers; images channels last on a CPU).

Runs alternate between the loops, ``--repeats`` timed rounds after a warm-up; figures are
median milliseconds per epoch (min-max) and ratios of medians. Goals (issue "Train at the
hardware's speed"): bare / nasforge >= 3 on the PyG GCN example, >= 1.5 under NAS-Bench-Graph's
Cora protocol, >= 1.3 for ``nb201`` on digits and for a tabular ``mlp``.

``--search-archs N`` adds an end-to-end search: ``nasforge search`` of N random architectures
on Cora, same seed, with ``--exact`` (what every search ran before the fast paths) and
without.

Example::

    python benchmarks/train_throughput.py --data-root ../shared/datasets/planetoid
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from _report import header, machine_lines, markdown_table, publish
from nasforge.architecture import Architecture
from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.spaces.base import SPACES
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Space
from nasforge.tasks.base import resolve_task
from nasforge.tasks.node import NodeClassificationTask, load_planetoid
from nasforge.tasks.supervised import SupervisedTask
from nasforge.train.fastops import exact_ops
from nasforge.train.supervised import train_supervised
from nasforge.train.trainer import (
    TrainConfig,
    make_optimizer,
    make_schedule,
    train_node_classifier,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "train_throughput.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
GOALS = {"gcn-example": 3.0, "nbg-cora": 1.5, "nb201-digits": 1.3, "mlp-table": 1.3}

Loop = Callable[[nn.Module], float]
"""Trains a fresh copy of a model for the case's epochs; returns the test metric."""


class ExampleGcn(nn.Module):
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


def reference(config: TrainConfig) -> TrainConfig:
    """``config`` with ``exact=True``: PyTorch's own ops and optimizer, as a user's loop has."""
    return replace(config, exact=True)


def graph_loop(data: Data, config: TrainConfig) -> Loop:
    """PyG's example loop: a full-batch step, then validation and test accuracy."""

    def run(model: nn.Module) -> float:
        opt = make_optimizer(model, reference(config))
        best_val = test_at_best = 0.0
        for _ in range(config.epochs):
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

    return run


def batch_loop(task: SupervisedTask, config: TrainConfig, *, loader: bool) -> Loop:
    """Plain PyTorch mini-batch training with ``config``'s optimizer and schedule, validation
    and test accuracy after every epoch; batches from a ``DataLoader`` or index slices."""

    def run(model: nn.Module) -> float:
        gen = torch.Generator().manual_seed(config.seed)
        opt = make_optimizer(model, reference(config))
        schedule = make_schedule(opt, config)
        data = TensorDataset(task.x_train, task.y_train)
        batches = DataLoader(data, batch_size=config.batch_size, shuffle=True, generator=gen)
        best_val = test_at_best = 0.0
        for _ in range(config.epochs):
            model.train()
            if loader:
                pairs: list[tuple[torch.Tensor, torch.Tensor]] | DataLoader = batches  # type: ignore[type-arg]
            else:
                perm = torch.randperm(len(task.x_train), generator=gen)
                pairs = [
                    (task.x_train[idx], task.y_train[idx]) for idx in perm.split(config.batch_size)
                ]
            for xb, yb in pairs:
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            if schedule is not None:
                schedule.step()
            model.eval()
            with torch.no_grad():
                val = float((model(task.x_val).argmax(-1) == task.y_val).float().mean())
                test = float((model(task.x_test).argmax(-1) == task.y_test).float().mean())
            if val > best_val:
                best_val, test_at_best = val, test
        return test_at_best

    return run


@dataclass
class Case:
    """One family: its models, its loops, and the protocol in words."""

    key: str
    title: str
    protocol: str
    epochs: int
    models: list[tuple[str, Callable[[], nn.Module]]]
    loops: dict[str, Loop]
    bare_model: Callable[[], nn.Module] | None = None
    """The model the bare loops train, if not the case's own (same layers, the user's code)."""


def nasforge_loops(
    train: Callable[[nn.Module, TrainConfig], float], config: TrainConfig
) -> dict[str, Loop]:
    return {
        "nasforge exact": lambda m: train(m, reference(config)),
        "nasforge": lambda m: train(m, config),
    }


def graph_cases(data_root: str, epochs: int) -> list[Case]:
    task = load_planetoid("Cora", data_root)
    node = NodeClassificationTask("planetoid:Cora", task)
    space = GnnSpace()

    def node_train(model: nn.Module, config: TrainConfig) -> float:
        return train_node_classifier(model, task, config).test_acc

    def gnn(arch: Architecture, hyper: GnnHyper) -> Callable[[], nn.Module]:
        return lambda: space.build(arch, node, hyper)

    example = TrainConfig(
        epochs=epochs, lr=0.01, weight_decay=5e-4, optimizer="adam", patience=None
    )
    two_gcn = space.make([0, 1, 2, 3], ["gcn", "gcn", "skip", "skip"])
    classes = int(task.y.max()) + 1
    gcn = Case(
        "gcn-example",
        "PyG GCN example on Cora",
        "PyG's examples/gcn.py: two GCN layers, hidden 16, dropout 0.5, Adam lr 0.01, weight "
        "decay 5e-4, full batch. bare: the example's own model and loop; nasforge: the gnn "
        "space's `gcn -> gcn` architecture in that setting (same layers, same work).",
        epochs,
        [("gcn -> gcn", gnn(two_gcn, GnnHyper(hidden=16, dropout=0.5, pre=0, post=0)))],
        {"bare": graph_loop(task, example), **nasforge_loops(node_train, example)},
        bare_model=lambda: ExampleGcn(task.num_features, 16, classes),
    )
    proto = PROTOCOLS["cora"]
    config = TrainConfig(
        **{
            **proto.train_config().describe(),
            "epochs": epochs,
            "patience": None,
            "on_divergence": "keep_best",
        }
    )
    rng = np.random.default_rng(0)
    archs = [("gcn -> gcn", two_gcn)] + [
        (space.canonical_key(a), a) for a in (space.sample(rng) for _ in range(3))
    ]
    nbg = Case(
        "nbg-cora",
        "NAS-Bench-Graph's Cora protocol",
        f"NAS-Bench-Graph's Cora protocol (hidden {proto.hidden}, dropout {proto.dropout}, "
        f"{proto.optimizer} lr {proto.lr}, full batch): `gcn -> gcn` and 3 architectures drawn "
        "from the space (seed 0). bare: the space's model (PyG layers, PyTorch's ops) in PyG's "
        "example loop; ratios are of the summed medians over the architectures.",
        epochs,
        [(name, gnn(a, proto.hyper())) for name, a in archs],
        {"bare": graph_loop(task, config), **nasforge_loops(node_train, config)},
    )
    return [gcn, nbg]


def batch_case(
    key: str, title: str, spec: str, models: str, archs: Sequence[Architecture], epochs: int
) -> Case:
    """A family trained in mini-batches: task ``spec`` with its own recipe (``epochs``
    epochs, no early stopping) and space, models ``archs`` (described by ``models``)."""
    setup = resolve_task(spec)
    task = setup.task
    assert isinstance(task, SupervisedTask)
    space = SPACES.create(setup.space)
    recipe = replace(setup.train, epochs=epochs, patience=None)

    def train(model: nn.Module, config: TrainConfig) -> float:
        return train_supervised(model, task, config).test

    return Case(
        key,
        title,
        f"The task's recipe (`{spec}`: {setup.protocol}; {recipe.optimizer} lr {recipe.lr}, "
        f"weight decay {recipe.weight_decay}, momentum {recipe.momentum}, {recipe.schedule} "
        f"schedule, batch {recipe.batch_size}, {epochs} epochs, no early stopping); {models}.",
        epochs,
        [(space.canonical_key(a), lambda a=a: space.build(a, task, setup.hyper)) for a in archs],
        {
            "bare": batch_loop(task, recipe, loader=True),
            "bare, index slices": batch_loop(task, recipe, loader=False),
            **nasforge_loops(train, recipe),
        },
    )


def batch_cases(epochs_scale: float) -> list[Case]:
    nb201, mlp = Nb201Space(), MlpSpace()
    return [
        batch_case(
            "nb201-digits",
            "nb201 cells on digits",
            "image:digits",
            "the all-3x3-convolution cell and one drawn from the space (seed 0)",
            [nb201.make(["nor_conv_3x3"] * 6), nb201.sample(np.random.default_rng(0))],
            max(1, round(20 * epochs_scale)),
        ),
        batch_case(
            "mlp-table",
            "mlp on a table (scikit-learn's digits, 64 features)",
            "tabular:digits",
            "a 2 x 256 ReLU MLP with batch norm and dropout 0.2, and one drawn from the space "
            "(seed 0)",
            [
                mlp.make(hidden=[256, 256], activation="relu", dropout=0.2, norm="batch"),
                mlp.sample(np.random.default_rng(0)),
            ],
            max(1, round(100 * epochs_scale)),
        ),
    ]


def measure(case: Case, repeats: int) -> dict[str, dict[str, list[float]]]:
    """{model: {loop: [ms per epoch of each timed round]}}; test metrics under key "test:"."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, make in case.models:
        torch.manual_seed(0)
        initial = make()
        torch.manual_seed(0)
        bare_initial = initial if case.bare_model is None else case.bare_model()
        times: dict[str, list[float]] = {loop: [] for loop in case.loops}
        for loop in case.loops:
            times["test:" + loop] = []
        for round_ in range(repeats + 1):  # round 0 warms up
            for loop, run in case.loops.items():
                bare = loop.startswith("bare")
                model = copy.deepcopy(bare_initial if bare else initial)
                torch.manual_seed(1)
                start = time.perf_counter()
                with exact_ops(bare):  # a user's own code runs PyTorch's ops
                    test = run(model)
                if round_:
                    times[loop].append((time.perf_counter() - start) / case.epochs * 1e3)
                    times["test:" + loop].append(test)
        out[name] = times
        print(
            case.key, name, {k: f"{statistics.median(v):.2f}" for k, v in times.items()}, flush=True
        )
    return out


def case_lines(case: Case, figures: dict[str, dict[str, list[float]]]) -> tuple[list[str], float]:
    loops = list(case.loops)
    rows = []
    for name, times in figures.items():
        row: list[object] = [name]
        for loop in loops:
            ms = times[loop]
            row.append(f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})")
        row.append(f"{statistics.median(times['bare']) / statistics.median(times['nasforge']):.2f}")
        row.append(
            " / ".join(f"{statistics.fmean(times['test:' + loop]) * 100:.1f}" for loop in loops)
        )
        rows.append(row)
    total = {loop: sum(statistics.median(t[loop]) for t in figures.values()) for loop in loops}
    ratio = total["bare"] / total["nasforge"]
    goal = GOALS[case.key]
    extra = [
        f"- bare / nasforge exact: {total['bare'] / total['nasforge exact']:.2f} "
        "(the trainer's own cost against the hand-written loop, same ops)",
        f"- nasforge exact / nasforge: {total['nasforge exact'] / total['nasforge']:.2f} "
        "(what the fast paths give)",
    ]
    if "bare, index slices" in total:
        extra.append(
            "- bare, index slices / nasforge: "
            f"{total['bare, index slices'] / total['nasforge']:.2f}"
        )
    lines = [
        f"### {case.title}",
        "",
        case.protocol,
        "",
        *markdown_table(
            [
                "model",
                *(f"{loop} ms/epoch" for loop in loops),
                "bare / nasforge",
                "test acc % (" + " / ".join(loops) + ")",
            ],
            rows,
        ),
        "",
        f"**bare / nasforge: {ratio:.2f}** "
        f"(goal >= {goal}: {'met' if ratio >= goal else 'NOT met'})",
        *extra,
        "",
    ]
    return lines, ratio


def search_figures(data_root: str, archs: int, epochs: int | None) -> list[str]:
    """``nasforge search`` of ``archs`` random architectures on Cora, same seed, with and
    without ``--exact``, each in a fresh process as a user runs it: wall time, the
    architectures tried and the best."""
    from nasforge.store.sql import open_store

    runs: dict[str, tuple[float, list[tuple[str, float, float, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("--exact", "default"):
            db = Path(tmp) / f"{label.strip('-')}.db"
            command = [
                *CLI,
                *("search", "--task", "planetoid:Cora", "--data-root", data_root),
                *("--strategy", "random", "--budget", str(archs), "--seed", "0"),
                *("--db", str(db), "--name", "cora"),
            ]
            command += ["--epochs", str(epochs)] if epochs is not None else []
            command += ["--exact"] if label == "--exact" else []
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if proc.returncode:
                raise SystemExit(f"nasforge search {label} failed: {proc.stderr[-2000:]}")
            store = open_store(db, create=False)
            try:
                records = store.trials(store.get_experiment("cora").id)
            finally:
                store.close()
            runs[label] = (
                seconds,
                [
                    (
                        t.key,
                        t.metrics.get("val_acc", float("nan")),
                        t.test_metrics.get("test_acc", float("nan")),
                        t.wall_time or 0.0,
                    )
                    for t in records
                ],
            )
            print(label, f"{seconds:.1f} s", flush=True)
    rows = []
    for label, (seconds, trials) in runs.items():
        best = max(trials, key=lambda t: t[1])
        rows.append(
            [
                label,
                len(trials),
                f"{seconds:.1f}",
                f"{sum(t[3] for t in trials):.1f}",
                f"`{best[0]}`",
                f"{best[1] * 100:.1f} / {best[2] * 100:.1f}",
            ]
        )
    exact_s, exact_trials = runs["--exact"]
    fast_s, fast_trials = runs["default"]
    same = [t[0] for t in exact_trials] == [t[0] for t in fast_trials]
    gaps = [abs(a[1] - b[1]) * 100 for a, b in zip(exact_trials, fast_trials, strict=False)]
    epochs_text = f"--epochs {epochs}" if epochs is not None else "the task's own epochs"
    return [
        "## End-to-end search",
        "",
        f"`nasforge search --task planetoid:Cora --strategy random --budget {archs} --seed 0` "
        f"({epochs_text}), each in a fresh process, with `--exact` (PyTorch's reference ops, "
        "as every search trained before the fast paths) and without.",
        "",
        *markdown_table(
            [
                "run",
                "trials",
                "wall s",
                "training s (sum)",
                "best (by validation)",
                "its val / test %",
            ],
            rows,
        ),
        "",
        f"**--exact / default wall time: {exact_s / fast_s:.2f}**; same architectures in the same "
        f"order: {'yes' if same else 'no'}; validation accuracy of the same architecture, "
        f"|exact - fast|: mean {statistics.fmean(gaps):.2f}, max {max(gaps):.2f} points.",
        "",
    ]


CLI = (sys.executable, "-c", "from nasforge.cli import main; main()")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--epochs", type=int, default=50, help="epochs of a graph training")
    parser.add_argument(
        "--batch-epochs",
        type=float,
        default=1.0,
        help="times the image (20) and table (100) recipes' epochs",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", default=",".join(GOALS), help="of " + ", ".join(GOALS))
    parser.add_argument("--search-archs", type=int, default=0)
    parser.add_argument("--search-epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    wanted = args.families.split(",")
    unknown = sorted(set(wanted) - set(GOALS))
    if unknown:
        parser.error(f"unknown families {unknown}; accepted: {', '.join(GOALS)}")
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t_all = time.perf_counter()
    cases = [
        case
        for case in [*graph_cases(args.data_root, args.epochs), *batch_cases(args.batch_epochs)]
        if case.key in wanted
    ]
    body: list[str] = []
    summary: list[list[object]] = []
    for case in cases:
        lines, ratio = case_lines(case, measure(case, args.repeats))
        body += lines
        goal = GOALS[case.key]
        summary.append(
            [case.title, f"**{ratio:.2f}**", f">= {goal}", "met" if ratio >= goal else "NOT met"]
        )
    if args.search_archs:
        body += search_figures(args.data_root, args.search_archs, args.search_epochs)
    wall = time.perf_counter() - t_all
    lines = [
        *header(
            "Training throughput: nasforge against the loop a user would write",
            started,
            wall,
            machine_lines(),
        ),
        f"- torch threads: {args.threads}",
        "",
        "Each loop trains the same model from the same initial weights on the same data for "
        "the same epochs, computing validation and test accuracy after every epoch; "
        f"{args.repeats} timed rounds after a warm-up, the loops alternating. ms per epoch: "
        "median (min-max). Test accuracy: mean over the rounds, in %. See the script's "
        "docstring for what each loop is.",
        "",
        "## Summary",
        "",
        *markdown_table(["family", "bare / nasforge", "goal", ""], summary),
        "",
        *body,
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

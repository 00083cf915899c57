"""Models built from gnn architectures: they run, learn, and match NAS-Bench-Graph's sizes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tests.graphs import sparse_features

from nasforge.benchmarks.nas_bench_graph import load_table
from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.errors import ConfigError
from nasforge.spaces.gnn import GNN_OPS, GnnHyper, GnnSpace
from nasforge.spaces.gnn_model import GnnModel, make_op
from nasforge.spaces.gnn_sparse import sparse_forward
from nasforge.tasks.node import NodeClassificationTask, planted_partition
from nasforge.train.fastops import exact_ops

SPACE = GnnSpace()
TASK = NodeClassificationTask("synthetic", planted_partition(nodes=120, features=12, seed=0))


@pytest.mark.parametrize("op", [op for op in GNN_OPS if op != "skip"])
def test_every_op_builds_runs_forward_and_backward(op: str) -> None:
    arch = SPACE.make([0, 1, 0, 3], [op, op, "skip", op])
    model = SPACE.build(arch, TASK, GnnHyper(hidden=16, pre=1, post=2))
    out = model(TASK.data.x, TASK.data.edge_index)
    assert out.shape == (TASK.num_nodes, TASK.num_classes)
    out.sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    # PyG's one-layer ARMAConv keeps a weight it only uses from the second layer on
    unused = r"layers\.\d+\.weight" if op == "arma" else "$^"
    assert all(re.fullmatch(unused, n) for n in no_grad), no_grad


@pytest.mark.parametrize("op", [op for op in GNN_OPS if op != "skip"])
def test_ops_on_sparse_features_compute_what_the_reference_ops_compute(op: str) -> None:
    """Mostly-zero features reach the ops on them as a sparse tensor (or densified, for ops
    that aggregate first): the same function as PyTorch's reference path, and it learns."""
    task = NodeClassificationTask("synthetic", sparse_features(nodes=120, features=40, seed=0))
    arch = SPACE.make([0, 1, 0, 3], [op, op, "skip", op])  # on the input, directly and by a skip
    torch.manual_seed(0)
    model = SPACE.build(arch, task, GnnHyper(hidden=16, dropout=0.5, post=1)).eval()
    x, edge_index = task.example_inputs()
    with torch.no_grad():
        fast = model(x, edge_index)
        with exact_ops():
            reference = model(x, edge_index)
    assert torch.allclose(fast, reference, atol=1e-5)
    model.train()
    grads = {}
    for exact in (False, True):
        model.zero_grad()
        with exact_ops(exact):
            model(x, edge_index).logsumexp(dim=1).mean().backward()
        grads[exact] = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads[False] == grads[True]


def test_random_architectures_build_with_every_layout() -> None:
    rng = np.random.default_rng(0)
    for pre, post in [(0, 0), (0, 1), (1, 0), (2, 2)]:
        hyper = GnnHyper(hidden=8, pre=pre, post=post, dropout=0.2)
        for _ in range(15):
            model = SPACE.build(SPACE.sample(rng), TASK, hyper)
            loss = model(TASK.data.x, TASK.data.edge_index).logsumexp(dim=1).mean()
            loss.backward()


def test_equivalent_architectures_build_the_same_model() -> None:
    a = SPACE.make([0, 1, 0, 0], ["skip", "gcn", "sage", "fc"])
    b = SPACE.make([0, 0, 0, 0], ["gcn", "sage", "fc", "skip"])
    assert SPACE.canonical_key(a) == SPACE.canonical_key(b)
    torch.manual_seed(0)
    ma = SPACE.build(a, TASK)
    torch.manual_seed(0)
    mb = SPACE.build(b, TASK)
    ma.eval()
    mb.eval()
    assert torch.equal(ma(TASK.data.x, TASK.data.edge_index), mb(TASK.data.x, TASK.data.edge_index))


@pytest.mark.parametrize(
    ("dataset", "features", "classes"),
    [("cora", 1433, 7), ("citeseer", 3703, 6), ("pubmed", 500, 3), ("arxiv", 128, 40)],
)
def test_parameter_counts_equal_the_benchmark_table(
    dataset: str, features: int, classes: int
) -> None:
    """The benchmark registers a BatchNorm per node even where none is applied; apart from
    those unused parameters our models have exactly the table's size."""
    proto, table = PROTOCOLS[dataset], load_table(dataset)
    hyper = proto.hyper()
    rng = np.random.default_rng(1)
    from nas_bench_graph import Arch

    for _ in range(30):
        arch = SPACE.canonicalize(SPACE.sample(rng))
        links, ops = GnnSpace.genes(arch)
        model = GnnModel(links, ops, features, classes, hyper)
        unused_norms = sum(1 for n in model.norms if not isinstance(n, torch.nn.BatchNorm1d))
        ours = sum(p.numel() for p in model.parameters()) + 2 * proto.hidden * unused_norms
        assert ours == round(table[Arch(list(links), list(ops)).valid_hash()].params_m * 1e6)


def test_hyper_rules() -> None:
    with pytest.raises(ConfigError, match="multiple of gat_heads"):
        GnnHyper(hidden=10, gat_heads=4)
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\)"):
        GnnHyper(dropout=1.0)


def test_the_benchmark_protocol_uses_its_gat_heads_and_selection_rule() -> None:
    """NAS-Bench-Graph's model code builds GAT with 4 heads, and its training worker reports
    the epoch of lowest validation loss; planetoid searches inherit both."""
    proto = PROTOCOLS["cora"]
    assert proto.hyper().gat_heads == 4
    config = proto.train_config(seed=3)
    assert (config.select, config.seed, config.patience) == ("loss", 3, None)
    assert (config.lr, config.optimizer, config.momentum, config.epochs) == (0.1, "sgd", 0.0, 400)
    gat = make_op("gat", 32, 256, gat_heads=proto.gat_heads)
    assert (gat.heads, gat.out_channels) == (4, 64)


def test_gcn_normalises_each_graph_once_and_computes_what_gcnconv_computes() -> None:
    torch.manual_seed(0)
    layer = make_op("gcn", 5, 3)
    x = torch.randn(6, 5)
    ring = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    star = torch.tensor([[0, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
    for edges in (ring, star, ring, ring.clone()):  # another graph, back, an equal copy
        assert torch.equal(sparse_forward("gcn", layer, x, edges), layer(x, edges))
    ring[1, 0] = 3  # changed in place: normalised again
    assert torch.equal(sparse_forward("gcn", layer, x, ring), layer(x, ring))
    with exact_ops():  # the layer's own forward pass
        assert torch.equal(sparse_forward("gcn", layer, x, star), layer(x, star))

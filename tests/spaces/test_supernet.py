"""Supernets built by the spaces: fixed to an architecture, a supernet computes exactly what
``space.build(arch)`` computes with the weights it hands over; mixtures and single paths run
and carry gradients to the architecture weights."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from tests.graphs import sparse_features

from nasforge.errors import ConfigError
from nasforge.spaces.base import SPACES
from nasforge.spaces.choice import ChoiceSpace
from nasforge.spaces.gnn import GnnHyper, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Hyper
from nasforge.spaces.supernet import PartialOp, Route, best_assignments
from nasforge.tasks.image import load_digits
from nasforge.tasks.node import NodeClassificationTask, planted_partition
from nasforge.tasks.tabular import load_builtin

GRAPH = NodeClassificationTask("synthetic", planted_partition(nodes=80, features=6, seed=1))
SPARSE_GRAPH = NodeClassificationTask("synthetic", sparse_features(nodes=80, features=40, seed=1))
DIGITS = load_digits(seed=0)
WINE = load_builtin("wine", seed=0)


def _perturb(module: torch.nn.Module) -> None:
    """Random BatchNorm statistics and affine weights, so that eval mode tests them too."""
    gen = torch.Generator().manual_seed(5)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def _assert_fixed_computes_model(net: Any, archs: list[Any], *inputs: torch.Tensor) -> None:
    """``net`` fixed to each architecture computes exactly what its subnet model computes,
    in eval and train mode (each drawing the same dropout masks)."""
    for arch in archs:
        model = net.subnet(arch)
        net.fix(arch)
        for train in (False, True):
            net.train(train)
            model.train(train)
            with torch.no_grad():
                torch.manual_seed(1)
                mine = net(*inputs)
                torch.manual_seed(1)
                assert torch.equal(mine, model(*inputs)), (arch, train)


@pytest.mark.parametrize(
    ("graph", "hyper"),
    [
        (GRAPH, GnnHyper(hidden=16, dropout=0.0)),
        (GRAPH, GnnHyper(hidden=16, pre=1, post=2, dropout=0.0)),
        (SPARSE_GRAPH, GnnHyper(hidden=16, dropout=0.0)),  # sparse features, taken sparse
        (SPARSE_GRAPH, GnnHyper(hidden=16, pre=1, dropout=0.0)),
    ],
)
def test_gnn_supernet_fixed_to_an_architecture_computes_its_model(
    graph: NodeClassificationTask, hyper: GnnHyper
) -> None:
    space = SPACES.create("gnn")
    torch.manual_seed(0)
    net = space.supernet(graph, hyper)
    _perturb(net)
    inputs = graph.example_inputs()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(25)]
    archs.append(space.make([0, 0, 1, 1], ["skip", "gcn", "skip", "gat"]))  # skips on the input
    archs.append(space.make([0, 1, 2, 3], ["skip", "skip", "skip", "fc"]))
    _assert_fixed_computes_model(net, archs, *inputs)


def test_nb201_supernet_fixed_to_an_architecture_computes_its_model() -> None:
    space = SPACES.create("nb201")
    hyper = Nb201Hyper(channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    net = space.supernet(DIGITS, hyper)
    _perturb(net)
    x = DIGITS.x_val[:16]
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(20)]
    archs.append(space.from_choices({f"edge_{t}_{s}": "none" for t, s in _EDGES}))  # zero cell
    _assert_fixed_computes_model(net, archs, x)


_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def test_mlp_supernet_fixed_to_an_architecture_computes_its_model() -> None:
    space = MlpSpace(widths=(8, 16, 32), dropouts=(0.0, 0.2), activations=("relu", "tanh", "gelu"))
    torch.manual_seed(0)
    net = space.supernet(WINE)
    _perturb(net)
    x = WINE.x_val[:16]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    archs.append(space.make(hidden=[32, 8, 16, 32], activation="relu", dropout=0.0, norm="batch"))
    archs.append(space.make(hidden=[8], activation="gelu", dropout=0.2, norm="layer"))
    _assert_fixed_computes_model(net, archs, x)
    # an architecture's unused widths do not matter: equal architectures, equal indices
    a = space.make(hidden=[16], activation="tanh", dropout=0.0, norm="none")
    assert net.arch_of(net.indices(a)) == space.canonicalize(a)


def test_mlp_supernet_has_no_partial_channels() -> None:
    with pytest.raises(ConfigError, match="no partial-channel supernet"):
        SPACES.create("mlp").supernet(WINE, partial=2)


@pytest.mark.parametrize("name", ["gnn", "gnn-sparse", "nb201", "mlp"])
def test_mixtures_and_single_paths_reach_the_architecture_weights(name: str) -> None:
    space = SPACES.create(name.removesuffix("-sparse"))
    if name == "mlp":
        task, hyper, inputs = WINE, None, (WINE.x_val[:8],)
    else:
        task, hyper, inputs = _setting(name)
    net = space.supernet(task, hyper)
    alphas = [torch.zeros(len(d.options), requires_grad=True) for d in net.decisions]
    probs = [a.softmax(0) for a in alphas]
    net.route([Route(p, tuple(range(len(p)))) for p in probs])
    net(*inputs).square().mean().backward()
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in alphas)
    # one option per decision, weights with a straight-through gradient
    rng = np.random.default_rng(0)
    indices = net.indices(space.sample(rng))
    for a in alphas:
        a.grad = None
    probs = [a.softmax(0) for a in alphas]
    hard = []
    for p, i in zip(probs, indices, strict=True):
        one = torch.zeros_like(p)
        one[i] = 1.0
        hard.append(one - p.detach() + p)
    net.route_indices(indices, hard)
    net(*inputs).square().mean().backward()
    assert any(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)


def _setting(name: str) -> tuple[object, object, tuple[torch.Tensor, ...]]:
    if name == "gnn":
        return GRAPH, GnnHyper(hidden=8, dropout=0.0), GRAPH.example_inputs()
    if name == "gnn-sparse":  # sparse features: the raw ops take them sparse
        return SPARSE_GRAPH, GnnHyper(hidden=8, dropout=0.5), SPARSE_GRAPH.example_inputs()
    return DIGITS, Nb201Hyper(4, 1), (DIGITS.x_val[:8],)


@pytest.mark.parametrize("name", ["gnn", "nb201"])
def test_two_computed_options_with_one_open_gate_compute_the_open_path(name: str) -> None:
    """ProxylessNAS's binary gates: both options of a pair are computed, the closed one adds
    nothing, and the gradient still reaches both through the straight-through weights."""
    space = SPACES.create(name)
    task, hyper, inputs = _setting(name)
    torch.manual_seed(0)
    net = space.supernet(task, hyper)
    net.eval()
    rng = np.random.default_rng(3)
    for _ in range(5):
        indices = net.indices(space.sample(rng))
        alphas = [torch.zeros(len(d.options), requires_grad=True) for d in net.decisions]
        routes = []
        for a, i in zip(alphas, indices, strict=True):
            k = len(a)
            other = (i + 1 + int(rng.integers(k - 1))) % k if k > 1 else i
            pair = sorted({i, other})
            p = a[pair].softmax(0)
            hard = torch.tensor([1.0 if j == i else 0.0 for j in pair])
            routes.append(
                Route(
                    torch.zeros(k).index_put((torch.tensor(pair),), hard - p.detach() + p),
                    tuple(pair),
                )
            )
        net.route(routes)
        gated = net(*inputs)
        net.route_indices(indices)
        with torch.no_grad():
            assert torch.allclose(gated, net(*inputs), atol=1e-5)
        gated.square().mean().backward()
        assert sum(float(a.grad.abs().sum()) for a in alphas if a.grad is not None) > 0


def test_partial_op_computes_one_channel_group_and_passes_the_rest() -> None:
    op = torch.nn.Conv2d(2, 2, 1)
    partial = PartialOp(op, 4, 5)  # group 5 mod 4 = 1: channels 2-3 of 8
    x = torch.randn(3, 8, 5, 5)
    y = partial(x)
    assert torch.equal(y[:, :2], x[:, :2]) and torch.equal(y[:, 4:], x[:, 4:])
    assert torch.allclose(y[:, 2:4], op(x[:, 2:4]))


@pytest.mark.parametrize("name", ["gnn", "nb201"])
def test_partial_channel_supernets_search_with_fewer_weights(name: str) -> None:
    space = SPACES.create(name)
    task, hyper, inputs = _setting(name)
    full, part = space.supernet(task, hyper), space.supernet(task, hyper, partial=2)
    assert sum(p.numel() for p in part.parameters()) < sum(p.numel() for p in full.parameters())
    alphas = [torch.zeros(len(d.options), requires_grad=True) for d in part.decisions]
    part.route([Route(a.softmax(0), tuple(range(len(a)))) for a in alphas])
    out = part(*inputs)
    full.route([Route(a.detach().softmax(0), tuple(range(len(a)))) for a in alphas])
    assert out.shape == full(*inputs).shape
    out.square().mean().backward()
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in alphas)
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="searches only"):
        part.subnet(arch)
    with pytest.raises(ConfigError, match="partial=3 must divide"):
        space.supernet(task, hyper, partial=3)


@pytest.mark.parametrize("pre", [0, 1])
def test_gnn_expected_latency_terms_are_the_expectation_over_every_architecture(pre: int) -> None:
    """Summed over every assignment of a small space, weighted by its probability, the
    table entries each model runs (``latency_terms``) are the supernet's expected counts; the
    output entry is interpolated at the exact expected number of leaves."""
    space = GnnSpace(ops=("gcn", "sage", "skip"), n_nodes=3)
    hyper = GnnHyper(hidden=8, pre=pre, dropout=0.0)
    net = space.supernet(GRAPH, hyper)
    gen = torch.Generator().manual_seed(pre)
    probs = [torch.rand(len(d.options), generator=gen).softmax(0) for d in net.decisions]
    expected: dict[str, float] = {}
    leaves = 0.0
    for indices in itertools.product(*(range(len(d.options)) for d in net.decisions)):
        p = float(np.prod([float(q[i]) for q, i in zip(probs, indices, strict=True)]))
        arch = net.arch_of(list(indices))
        if arch is None:  # the all-skip architecture: only "pre", no leaves
            expected["pre"] = expected.get("pre", 0.0) + p
            continue
        for name, count in space.latency_terms(arch, hyper).items():
            if name.startswith("out/"):
                leaves += p * int(name.removeprefix("out/"))
            else:
                expected[name] = expected.get(name, 0.0) + p * count
    terms = net.expected_terms(probs)
    assert terms is not None
    outs = {k: float(v) for k, v in terms.items() if k.startswith("out/")}
    assert sum(outs.values()) == pytest.approx(1.0)
    assert sum(int(k.removeprefix("out/")) * v for k, v in outs.items()) == pytest.approx(leaves)
    mine = {k: float(v) for k, v in terms.items() if not k.startswith("out/")}
    assert mine == pytest.approx({**{k: 0.0 for k in mine}, **expected})
    assert ("gcn/raw" in mine) == (pre == 0)
    # differentiable in the probabilities, as ProxylessNAS's latency loss needs
    alphas = [torch.zeros(len(d.options), requires_grad=True) for d in net.decisions]
    differentiable = net.expected_terms([a.softmax(0) for a in alphas])
    assert differentiable is not None
    sum(differentiable.values()).backward()
    assert all(a.grad is not None for a in alphas)


def test_spaces_without_a_supernet_say_which_have_one() -> None:
    custom = ChoiceSpace(name="custom", choices={"depth": (1, 2)})
    assert not custom.has_supernet and SPACES.create("mlp").has_supernet
    with pytest.raises(ConfigError, match=r"space 'custom' has no supernet.*gnn.*mlp.*nb201"):
        custom.supernet(DIGITS)


def test_best_assignments_come_in_decreasing_probability() -> None:
    probs = [[0.5, 0.3, 0.2], [0.6, 0.4], [0.9, 0.1]]
    found = list(best_assignments(probs, lambda ix: True))
    assert len(found) == 12
    scores = [np.prod([p[i] for p, i in zip(probs, ix, strict=True)]) for ix in found]
    assert scores == sorted(scores, reverse=True)
    assert next(best_assignments(probs, lambda ix: ix[0] != 0)) == [1, 0, 0]

"""Supernets built by the spaces: fixed to an architecture, a supernet computes exactly what
``space.build(arch)`` computes with the weights it hands over; mixtures and single paths run
and carry gradients to the architecture weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError
from nasforge.spaces.base import SPACES
from nasforge.spaces.gnn import GnnHyper
from nasforge.spaces.nb201 import Nb201Hyper
from nasforge.spaces.supernet import Route, best_assignments
from nasforge.tasks.image import load_digits
from nasforge.tasks.node import NodeClassificationTask, planted_partition

GRAPH = NodeClassificationTask("synthetic", planted_partition(nodes=80, features=6, seed=1))
DIGITS = load_digits(seed=0)


def _perturb(module: torch.nn.Module) -> None:
    """Random BatchNorm statistics and affine weights, so that eval mode tests them too."""
    gen = torch.Generator().manual_seed(5)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


@pytest.mark.parametrize(
    "hyper", [GnnHyper(hidden=16, dropout=0.0), GnnHyper(hidden=16, pre=1, post=2, dropout=0.0)]
)
def test_gnn_supernet_fixed_to_an_architecture_computes_its_model(hyper: GnnHyper) -> None:
    space = SPACES.create("gnn")
    torch.manual_seed(0)
    net = space.supernet(GRAPH, hyper)
    _perturb(net)
    inputs = GRAPH.example_inputs()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(25)]
    archs.append(space.make([0, 0, 1, 1], ["skip", "gcn", "skip", "gat"]))  # skips on the input
    archs.append(space.make([0, 1, 2, 3], ["skip", "skip", "skip", "fc"]))
    for arch in archs:
        model = net.subnet(arch)
        net.fix(arch)
        for train in (False, True):
            net.train(train)
            model.train(train)
            with torch.no_grad():
                assert torch.equal(net(*inputs), model(*inputs)), (arch, train)


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
    for arch in archs:
        model = net.subnet(arch)
        net.fix(arch)
        for train in (False, True):
            net.train(train)
            model.train(train)
            with torch.no_grad():
                assert torch.equal(net(x), model(x)), arch


_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


@pytest.mark.parametrize("name", ["gnn", "nb201"])
def test_mixtures_and_single_paths_reach_the_architecture_weights(name: str) -> None:
    space = SPACES.create(name)
    task, hyper = (GRAPH, GnnHyper(hidden=8)) if name == "gnn" else (DIGITS, Nb201Hyper(4, 1))
    net = space.supernet(task, hyper)
    inputs = task.example_inputs() if name == "gnn" else (DIGITS.x_val[:8],)
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


def test_spaces_without_a_supernet_say_which_have_one() -> None:
    with pytest.raises(ConfigError, match=r"spaces with one: gnn.*nb201"):
        SPACES.create("mlp").supernet(DIGITS)


def test_best_assignments_come_in_decreasing_probability() -> None:
    probs = [[0.5, 0.3, 0.2], [0.6, 0.4], [0.9, 0.1]]
    found = list(best_assignments(probs, lambda ix: True))
    assert len(found) == 12
    scores = [np.prod([p[i] for p, i in zip(probs, ix, strict=True)]) for ix in found]
    assert scores == sorted(scores, reverse=True)
    assert next(best_assignments(probs, lambda ix: ix[0] != 0)) == [1, 0, 0]

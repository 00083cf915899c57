"""Pruning masks: counts, global ranking, per-layer random masks, training under a mask, and
the plain state of a masked network (including PyG layers that write their own weight)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv

from nasforge.compression.masks import (
    apply_masks,
    density,
    magnitude_masks,
    plain_state,
    prunable,
    random_masks,
)
from nasforge.errors import ConfigError


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.norm = nn.LayerNorm(8)
        self.b = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.norm(self.a(x))))


def test_prunable_takes_weight_matrices_only() -> None:
    assert sorted(prunable(_Net())) == ["a.weight", "b.weight"]  # not biases, not the norm
    with pytest.raises(ConfigError, match="no weight matrix"):
        prunable(nn.LayerNorm(4))


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.99])
def test_magnitude_masks_keep_the_largest_weights_over_all_layers(sparsity: float) -> None:
    torch.manual_seed(0)
    weights = {"x": torch.randn(10, 7), "y": torch.randn(5, 3, 2) * 3}
    masks = magnitude_masks(weights, sparsity)
    kept, total = density(masks)
    assert total == 100
    assert kept == max(1, total - round(sparsity * total))
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    keep = torch.cat([m.flatten() for m in masks.values()]).bool()
    if 0 < kept < total:
        assert flat[keep].min() >= flat[~keep].max()  # global: one threshold for all layers


def test_higher_sparsity_of_pruned_weights_prunes_a_superset() -> None:
    torch.manual_seed(1)
    w = {"x": torch.randn(20, 20)}
    first = magnitude_masks(w, 0.5)
    pruned = {"x": w["x"] * first["x"]}
    second = magnitude_masks(pruned, 0.8)
    assert bool((second["x"] <= first["x"]).all())


def test_random_masks_keep_each_layers_count_and_depend_on_the_seed() -> None:
    torch.manual_seed(2)
    weights = {"x": torch.randn(30, 10), "y": torch.randn(10, 10)}
    reference = magnitude_masks(weights, 0.9)
    one = random_masks(reference, seed=3)
    for name in reference:
        assert int(one[name].sum()) == int(reference[name].sum())
    assert all(torch.equal(one[n], random_masks(reference, seed=3)[n]) for n in one)
    assert not all(torch.equal(one[n], random_masks(reference, seed=4)[n]) for n in one)


def test_training_under_masks_keeps_pruned_weights_zero() -> None:
    torch.manual_seed(0)
    net = _Net()
    masks = magnitude_masks({k: v.detach() for k, v in prunable(net).items()}, 0.75)
    apply_masks(net, masks)
    opt = torch.optim.Adam(net.parameters(), lr=0.1, weight_decay=0.1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    state = plain_state(net.state_dict(), masks)
    plain = _Net()
    plain.load_state_dict(state, strict=True)  # the names of a network without masks
    for name, mask in masks.items():
        assert bool((state[name][mask == 0] == 0).all())
        assert bool((state[name][mask == 1] != 0).all())
    assert torch.allclose(plain(x), net(x))


def test_plain_state_of_a_pyg_layer_that_writes_its_own_weight() -> None:
    torch.manual_seed(0)
    conv = GCNConv(5, 4)
    masks = magnitude_masks({k: v.detach() for k, v in prunable(conv).items()}, 0.5)
    apply_masks(conv, masks)
    state = plain_state(conv.state_dict(), masks)
    fresh = GCNConv(5, 4)
    fresh.load_state_dict(state, strict=True)
    x, edges = torch.randn(6, 5), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    assert torch.allclose(fresh(x, edges), conv(x, edges))


def test_apply_masks_refuses_masks_that_do_not_fit() -> None:
    net = _Net()
    with pytest.raises(ConfigError, match="not a prunable weight"):
        apply_masks(net, {"a.bias": torch.ones(8)})
    with pytest.raises(ConfigError, match="has shape"):
        apply_masks(net, {"a.weight": torch.ones(3, 3)})

"""The faster dropout ops: the reference ops' distribution, sparse features kept sparse, and
PyTorch's own ops, bit for bit, under ``exact_ops``."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from nasforge.train.fastops import (
    Dropout,
    dense,
    dropout,
    exact_ops,
    feature_dropout,
    image_layout,
    is_exact,
)


def _features(seed: int = 0, rows: int = 400, cols: int = 300) -> torch.Tensor:
    """A bag-of-words-like matrix: about 3% non-zero, positive values."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(rows, cols, generator=gen) < 0.03
    return mask * (torch.rand(rows, cols, generator=gen) + 0.5)


def test_dropout_keeps_each_entry_with_probability_one_minus_p_and_rescales() -> None:
    x = torch.full((500, 400), 2.0, requires_grad=True)
    torch.manual_seed(0)
    out = dropout(x, 0.7, True)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.3) < 0.005  # 200,000 draws: sd 0.001
    assert torch.allclose(out[kept], torch.tensor(2.0 / 0.3))
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad != 0, kept)  # the gradient passes where the value was kept
    assert torch.equal(dropout(x, 0.7, False), x)


def test_feature_dropout_draws_only_for_the_non_zeros_and_returns_a_sparse_tensor() -> None:
    x = _features()
    nonzero = x != 0
    torch.manual_seed(0)
    out = feature_dropout(x, 0.6, True)
    assert out.layout == torch.sparse_csr
    values = dense(out)
    kept = values != 0
    assert not (kept & ~nonzero).any()  # a zero stays a zero
    assert torch.allclose(values[kept], x[kept] / 0.4)
    share = kept.sum().item() / nonzero.sum().item()
    assert abs(share - 0.4) < 0.05  # about 3,600 non-zeros: sd 0.008
    evaluated = feature_dropout(x, 0.6, False)  # evaluation: the features themselves, sparse
    assert evaluated.layout == torch.sparse_csr and torch.equal(dense(evaluated), x)


def test_feature_dropout_sees_a_changed_tensor_and_leaves_dense_or_differentiated_ones() -> None:
    x = _features()
    assert torch.equal(dense(feature_dropout(x, 0.5, False)), x)
    x.mul_(2.0)  # changed in place: its non-zeros are read again
    assert torch.equal(dense(feature_dropout(x, 0.5, False)), x)
    full = torch.rand(50, 40) + 0.1  # no zeros: nothing to gain from a sparse layout
    assert feature_dropout(full, 0.5, True).layout == torch.strided
    assert torch.equal(feature_dropout(full, 0.5, False), full)
    wanted = _features().requires_grad_()
    assert feature_dropout(wanted, 0.5, True).layout == torch.strided


def test_exact_ops_are_pytorchs_own_bit_for_bit() -> None:
    x = _features() + 0.25
    with exact_ops():
        assert is_exact()
        torch.manual_seed(3)
        ours = (dropout(x, 0.3, True), feature_dropout(_features(), 0.7, True))
    assert not is_exact()
    with exact_ops(), exact_ops(False):  # an inner block keeps what an outer one asked for
        assert is_exact()
    torch.manual_seed(3)
    reference = (F.dropout(x, 0.3, True), F.dropout(_features(), 0.7, True))
    for a, b in zip(ours, reference, strict=True):
        assert a.layout == torch.strided and torch.equal(a, b)


def test_a_traced_model_uses_the_reference_ops() -> None:
    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return dense(feature_dropout(x, 0.5, self.training)) * 2

    net = Net().eval()
    traced = torch.jit.trace(net, (_features(),))
    other = _features(seed=1)
    assert torch.equal(traced(other), other * 2)  # traced, not frozen to the example's layout


def test_dropout_module_is_nn_dropout_with_the_faster_mask() -> None:
    layer = Dropout(0.25)
    assert isinstance(layer, torch.nn.Dropout) and repr(layer) == repr(torch.nn.Dropout(0.25))
    assert layer.state_dict() == {}
    x = torch.full((400, 500), 3.0)
    torch.manual_seed(0)
    out = layer(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005  # 200,000 draws: sd 0.001
    assert torch.allclose(out[kept], torch.tensor(4.0))
    assert torch.equal(layer.eval()(x), x)
    layer.train()
    with exact_ops():  # PyTorch's own, bit for bit
        torch.manual_seed(5)
        ours = layer(x)
    torch.manual_seed(5)
    assert torch.equal(ours, F.dropout(x, 0.25, True))


def test_images_train_channels_last_on_a_cpu_and_the_model_is_handed_back_contiguous() -> None:
    images, table = torch.zeros(8, 3, 5, 5), torch.zeros(8, 3)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    with image_layout(net, table) as layout:
        assert layout == torch.contiguous_format
        assert net[0].weight.is_contiguous()
    with exact_ops(), image_layout(net, images) as layout:
        assert layout == torch.contiguous_format
        assert net[0].weight.is_contiguous()
    with image_layout(net, images) as layout:
        assert layout == torch.channels_last
        weight = net[0].weight
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert not weight.is_contiguous()
    assert net[0].weight.is_contiguous()

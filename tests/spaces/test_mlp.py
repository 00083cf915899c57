"""The mlp space: genes, the canonical key, moves, size, and the models it builds."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.spaces.mlp import ACTIVATIONS, MlpSpace
from nasforge.spaces.mlp_model import ACTIVATION_LAYERS, MlpModel
from nasforge.train import fastops

SPACE = MlpSpace()
TINY = MlpSpace(
    name="mlp-tiny",
    depths=(1, 3),
    widths=(4, 8, 16),
    activations=("relu", "tanh"),
    dropouts=(0.0, 0.5),
    norms=("none", "layer"),
)


@dataclass(frozen=True)
class Shape:
    input_shape: tuple[int, ...]
    num_outputs: int


def _arch(**genes: Any) -> Architecture:
    base: dict[str, Any] = {
        "depth": 2,
        "widths": (64, 32, 16, 16),
        "activation": "relu",
        "dropout": 0.1,
        "norm": "batch",
    }
    return Architecture.create("mlp", **{**base, **genes})


# -- canonical key -----------------------------------------------------------------------------
def test_key_reads_like_the_network_and_ignores_unused_widths() -> None:
    a = _arch(widths=(64, 32, 16, 16))
    b = _arch(widths=(64, 32, 256, 128))
    assert SPACE.canonical_key(a) == SPACE.canonical_key(b) == "mlp[64-32 relu drop0.1 batch]"
    assert SPACE.canonical_key(_arch(widths=(32, 64, 16, 16))) != SPACE.canonical_key(a)
    assert SPACE.canonical_key(_arch(depth=3)) == "mlp[64-32-16 relu drop0.1 batch]"


def test_key_keeps_every_value_that_changes_the_network() -> None:
    edits: list[dict[str, Any]] = [
        {},
        {"dropout": 0.0},
        {"norm": "none"},
        {"norm": "layer"},
        {"activation": "gelu"},
        {"depth": 1},
    ]
    assert len({SPACE.canonical_key(_arch(**genes)) for genes in edits}) == 6
    # an integer 0 from JSON is the same dropout as 0.0
    assert SPACE.canonical_key(_arch(dropout=0)) == SPACE.canonical_key(_arch(dropout=0.0))


def test_key_names_the_network_not_the_registry_entry() -> None:
    arch = TINY.make(hidden=(8,), activation="tanh", dropout=0.5, norm="layer")
    assert TINY.canonical_key(arch) == "mlp[8 tanh drop0.5 layer]"


def test_canonicalize_and_make_give_the_enumerated_representative() -> None:
    arch = _arch(widths=(64, 32, 256, 128))
    rep = SPACE.canonicalize(arch)
    assert rep["widths"] == (64, 32, 16, 16)
    assert SPACE.canonical_key(rep) == SPACE.canonical_key(arch)
    made = SPACE.make(hidden=(64, 32), activation="relu", dropout=0.1, norm="batch")
    assert made == rep
    assert made in set(SPACE.enumerate())


# -- moves -------------------------------------------------------------------------------------
def test_depth_mutation_keeps_the_widths_so_a_network_can_grow_back() -> None:
    deep = _arch(depth=4, widths=(128, 64, 32, 16))
    rng = np.random.default_rng(0)
    depth_moves = 0
    for _ in range(200):
        child = SPACE.mutate(deep, rng)
        if child["depth"] != deep["depth"]:
            depth_moves += 1
            assert child["widths"] == deep["widths"]
            assert {k: child[k] for k in ("activation", "dropout", "norm")} == {
                k: deep[k] for k in ("activation", "dropout", "norm")
            }
    assert 20 < depth_moves < 80  # about one move in five changes the depth
    shallow = next(n for n in SPACE.neighbors(deep) if n["depth"] == 1)
    regrown = next(n for n in SPACE.neighbors(shallow) if n["depth"] == 4)
    assert SPACE.canonical_key(regrown) == SPACE.canonical_key(deep)


def test_mutate_changes_one_gene_and_only_used_widths() -> None:
    rng = np.random.default_rng(1)
    arch = _arch(depth=2, widths=(64, 32, 16, 16))
    changed: set[str] = set()
    for _ in range(300):
        child = SPACE.mutate(arch, rng)
        diff = [gene for gene in arch if child[gene] != arch[gene]]
        assert len(diff) == 1, diff
        if diff == ["widths"]:
            old, new = SPACE.genes(arch).widths, SPACE.genes(child).widths
            assert new[2:] == old[2:]
            assert sum(a != b for a, b in zip(new, old, strict=True)) == 1
        changed.update(diff)
    assert changed == {"depth", "widths", "activation", "dropout", "norm"}


def test_mutate_is_reproducible_for_a_seed() -> None:
    arch = _arch()
    first = [SPACE.mutate(arch, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(first)) == 1


def test_neighbors_are_every_single_gene_edit_of_the_network() -> None:
    for depth in SPACE.depths:
        arch = _arch(depth=depth)
        neighbors = SPACE.neighbors(arch)
        expected = (
            (len(SPACE.depths) - 1)
            + depth * (len(SPACE.widths) - 1)
            + (len(SPACE.activations) - 1)
            + (len(SPACE.dropouts) - 1)
            + (len(SPACE.norms) - 1)
        )
        assert len(neighbors) == expected
        unused = SPACE.genes(arch).widths[depth:]
        assert all(SPACE.genes(n).widths[depth:] == unused for n in neighbors)


def test_sample_uses_every_value_of_every_gene() -> None:
    rng = np.random.default_rng(0)
    archs = [TINY.sample(rng) for _ in range(400)]
    assert {a["depth"] for a in archs} == set(TINY.depths)
    assert {w for a in archs for w in TINY.genes(a).widths} == set(TINY.widths)
    assert {a["activation"] for a in archs} == set(TINY.activations)
    assert {a["dropout"] for a in archs} == set(TINY.dropouts)
    assert {a["norm"] for a in archs} == set(TINY.norms)


# -- size, enumeration, encoding ---------------------------------------------------------------
def _every_genotype(space: MlpSpace) -> list[Architecture]:
    return [
        Architecture.create(space.name, depth=d, widths=ws, activation=a, dropout=p, norm=n)
        for d in space.depths
        for ws in itertools.product(space.widths, repeat=space.max_depth)
        for a, p, n in itertools.product(space.activations, space.dropouts, space.norms)
    ]


def test_size_formula_equals_a_brute_force_count() -> None:
    genotypes = _every_genotype(TINY)
    keys = {TINY.canonical_key(a) for a in genotypes}
    assert TINY.size == len(keys) == (3 + 27) * 2 * 2 * 2
    assert {TINY.canonical_key(a) for a in TINY.enumerate()} == keys
    assert len(list(TINY.enumerate())) == TINY.size
    assert SPACE.size == (5 + 5**2 + 5**3 + 5**4) * 5 * 5 * 3


def test_encode_is_equal_exactly_for_equal_keys() -> None:
    by_code: dict[bytes, set[str]] = {}
    for arch in _every_genotype(TINY):
        by_code.setdefault(TINY.encode(arch).tobytes(), set()).add(TINY.canonical_key(arch))
    assert all(len(keys) == 1 for keys in by_code.values())
    assert len(by_code) == TINY.size
    code = SPACE.encode(_arch(depth=1, widths=(256, 16, 16, 16), dropout=0.3))
    assert code.shape == (4 + 4 + 5 + 1 + 3,)
    np.testing.assert_allclose(code[4:8], [1.0, 0.0, 0.0, 0.0])  # largest width -> 1, unused 0
    assert code[4 + 4 + 5] == pytest.approx(0.3)


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("genes", "message"),
    [
        ({"depth": 5}, r"gene 'depth' = 5 is not a depth of mlp; accepted: 1, 2, 3, 4"),
        ({"depth": True}, r"gene 'depth' = True"),
        ({"widths": (64, 32)}, r"gene 'widths' must list 4 layer widths"),
        ({"widths": (64, 32, 16, 12)}, r"gene 'widths\[3\]' = 12 is not a width.*16, 32"),
        ({"activation": "rleu"}, r"'rleu' is not among the activations of mlp; accepted: relu"),
        ({"dropout": 0.25}, r"gene 'dropout' = 0.25 .* accepted: 0.0, 0.1"),
        ({"norm": "group"}, r"'group' is not among the norms of mlp; accepted: none, batch"),
    ],
)
def test_validate_names_the_gene_the_value_and_the_accepted(
    genes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArchitectureError, match=message):
        SPACE.validate(_arch(**genes))


def test_validate_rejects_missing_genes() -> None:
    arch = Architecture.create("mlp", depth=1, widths=(16,) * 4, activation="relu", norm="none")
    with pytest.raises(InvalidArchitectureError, match="has genes activation, depth, dropout"):
        SPACE.validate(arch)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"activations": ("relu", "rleu")}, r"'rleu' is not a known activation; accepted: relu"),
        ({"activations": "relu"}, r"activations must be a sequence of choices, got 'relu'"),
        ({"norms": ("batch", "group")}, r"'group' is not a known norm; accepted: none, batch"),
        ({"depths": (0, 1)}, r"depths must be positive integers, got 0"),
        ({"widths": (16, 32.5)}, r"widths must be positive integers, got 32.5"),
        ({"widths": (16, 16)}, r"widths must be distinct"),
        ({"dropouts": (0.0, 1.0)}, r"dropouts must be probabilities in \[0, 1\), got 1.0"),
        ({"dropouts": ()}, r"dropouts must offer at least one choice"),
        ({"name": ""}, r"name must be a non-empty string"),
        (
            {
                "depths": (2,),
                "widths": (8,),
                "activations": ("relu",),
                "dropouts": (0.0,),
                "norms": ("none",),
            },
            r"single architecture",
        ),
    ],
)
def test_constructor_validates_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MlpSpace(**options)


def test_constructor_sorts_numeric_options() -> None:
    space = MlpSpace(depths=(3, 1), widths=(64, 8), dropouts=(0.5, 0))
    assert (space.depths, space.widths, space.dropouts) == ((1, 3), (8, 64), (0.0, 0.5))
    assert space.max_depth == 3


# -- choices -----------------------------------------------------------------------------------
def test_from_choices_builds_the_genotype_and_names_what_is_missing() -> None:
    params = {
        "depth": np.int64(2),
        "width_0": 64,
        "width_1": 32,
        "width_2": 16,
        "width_3": 16,
        "activation": "relu",
        "dropout": 0.1,
        "norm": "batch",
        "lr": 0.01,  # parameters of other components are ignored
    }
    assert set(SPACE.choices()) == set(params) - {"lr"}
    assert SPACE.from_choices(params) == _arch()
    with pytest.raises(InvalidArchitectureError, match="missing parameter 'width_3'"):
        SPACE.from_choices({k: v for k, v in params.items() if k != "width_3"})
    with pytest.raises(InvalidArchitectureError, match=r"gene 'dropout' = 0\.7"):
        SPACE.from_choices({**params, "dropout": 0.7})


# -- models ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outputs", "norm"), [(3, "batch"), (1, "none"), (2, "layer")], ids=["cls", "reg", "reg2"]
)
def test_build_maps_features_to_outputs_and_backpropagates(outputs: int, norm: str) -> None:
    arch = SPACE.make(hidden=(32, 16), activation="gelu", dropout=0.2, norm=norm)
    model = SPACE.build(arch, Shape((7,), outputs))
    x = torch.randn(10, 7)
    out = model(x)
    assert out.shape == (10, outputs)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_build_lays_out_linear_norm_activation_dropout_then_a_head() -> None:
    arch = SPACE.make(hidden=(32, 16), activation="tanh", dropout=0.1, norm="batch")
    model = SPACE.build(arch, Shape((5,), 4))
    kinds = [type(m) for m in model.modules() if not isinstance(m, MlpModel | nn.Sequential)]
    layer = [nn.Linear, nn.BatchNorm1d, nn.Tanh, fastops.Dropout]  # an nn.Dropout
    assert kinds == [*layer, *layer, nn.Linear]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 32), (32, 16), (16, 4)]
    plain = SPACE.build(
        SPACE.make(hidden=(16,), activation="relu", dropout=0.0, norm="none"), Shape((5,), 4)
    )
    assert sum(p.numel() for p in plain.parameters()) == (5 * 16 + 16) + (16 * 4 + 4)


def test_batch_norm_model_runs_on_a_single_example_in_eval_mode() -> None:
    arch = SPACE.make(hidden=(16, 16, 16), activation="relu", dropout=0.5, norm="batch")
    model = SPACE.build(arch, Shape((6,), 3))
    model(torch.randn(32, 6))  # one training step's worth of running statistics
    model.eval()
    x = torch.randn(1, 6)
    out = model(x)
    assert out.shape == (1, 3)
    assert torch.equal(out, model(x))  # eval mode: no dropout, fixed statistics


def test_equivalent_architectures_build_the_same_model() -> None:
    a = _arch(widths=(64, 32, 16, 16))
    b = _arch(widths=(64, 32, 256, 128))
    torch.manual_seed(0)
    ma = SPACE.build(a, Shape((4,), 2)).eval()
    torch.manual_seed(0)
    mb = SPACE.build(b, Shape((4,), 2)).eval()
    x = torch.randn(3, 4)
    assert torch.equal(ma(x), mb(x))


def test_every_known_activation_has_a_layer() -> None:
    assert set(ACTIVATION_LAYERS) == set(ACTIVATIONS)
    space = MlpSpace(depths=(1,), widths=(4,), activations=ACTIVATIONS, dropouts=(0.0,))
    for activation in ACTIVATIONS:
        arch = space.make(hidden=(4,), activation=activation, dropout=0.0, norm="none")
        assert space.build(arch, Shape((3,), 2))(torch.randn(2, 3)).shape == (2, 2)


def test_build_rejects_non_tabular_tasks_and_invalid_architectures() -> None:
    arch = _arch()
    with pytest.raises(ConfigError, match=r"input_shape must be \(features,\), got \(3, 8, 8\)"):
        SPACE.build(arch, Shape((3, 8, 8), 10))
    with pytest.raises(ConfigError, match="num_outputs must be a positive integer, got 0"):
        SPACE.build(arch, Shape((4,), 0))
    with pytest.raises(InvalidArchitectureError, match="gene 'depth' = 9"):
        SPACE.build(_arch(depth=9), Shape((4,), 2))


def test_importing_the_space_does_not_import_torch() -> None:
    code = "import sys, nasforge.spaces.mlp; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"

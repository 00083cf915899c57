"""The nb201 space: string form, canonical key, moves, encodings and the networks it builds."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.spaces.nb201 import (
    NB201_EDGES,
    NB201_OPS,
    PATH_ENCODING_LENGTH,
    STRING_FORM,
    Nb201Hyper,
    Nb201Space,
    prune_dead_edges,
)
from nasforge.spaces.nb201_model import Nb201Cell, Nb201Model

SPACE = Nb201Space()
ALL_OPS = list(itertools.product(NB201_OPS, repeat=6))
DIGITS = SimpleNamespace(input_shape=(1, 8, 8), num_outputs=10)
CIFAR10 = SimpleNamespace(input_shape=(3, 32, 32), num_outputs=10)
TINY = Nb201Hyper(channels=8, cells_per_stage=1)

ALL_CONV3 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
MIXED = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
ZERO = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
IDENTITY = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def cell(text: str) -> Architecture:
    return SPACE.from_string(text)


def key(text: str) -> str:
    return SPACE.canonical_key(cell(text))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- the string form -----------------------------------------------------------------------
def test_string_form_round_trips_for_every_cell() -> None:
    texts = set()
    for ops in ALL_OPS:
        arch = SPACE.make(ops)
        text = SPACE.to_string(arch)
        assert SPACE.from_string(text) == arch
        texts.add(text)
    assert len(texts) == 15_625
    # the gene follows the string's edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    assert cell(MIXED)["ops"] == (
        "nor_conv_3x3",
        "avg_pool_3x3",
        "nor_conv_1x1",
        "skip_connect",
        "nor_conv_3x3",
        "none",
    )


def test_from_string_accepts_inputs_in_any_order_and_outer_spaces() -> None:
    shuffled = (
        "  |nor_conv_3x3~0|+|nor_conv_1x1~1|avg_pool_3x3~0|"
        "+|none~2|skip_connect~0|nor_conv_3x3~1|\n"
    )
    assert cell(shuffled) == cell(MIXED)
    assert SPACE.to_string(cell(shuffled)) == MIXED


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "|nor_conv_3x3~0|+|none~0|none~1|",
            "it has 2 node group(s) separated by '+', a cell has 3",
        ),
        (ALL_CONV3 + "+|none~0|", "it has 4 node group(s)"),
        (
            "|conv3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "unknown op 'conv3x3' in edge 'conv3x3~0' of node 1",
        ),
        (
            "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
            "edge 'nor_conv_3x3~1' of node 1 has input '1'; node 1 takes inputs 0",
        ),
        (
            "|none~0|+|none~0|none~x|+|none~0|none~1|none~2|",
            "node 2 takes inputs 0, 1",
        ),
        (
            "|none~0|+|none~0|none~1|none~2|+|none~0|none~1|none~2|",
            "node 2 must list 2 edge(s), one per input 0..1, got 3",
        ),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must list 2 edge(s)"),
        (
            "|none~0|+|none~0|none~0|+|none~0|none~1|none~2|",
            "node 2 lists input 0 twice",
        ),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 'none' of node 1 is not of the"),
        ("", "it has 1 node group(s)"),
    ],
)
def test_malformed_strings_say_what_is_wrong_and_what_is_expected(text: str, reason: str) -> None:
    with pytest.raises(InvalidArchitectureError) as info:
        SPACE.from_string(text)
    message = str(info.value)
    assert reason in message
    assert f"expected {STRING_FORM!r}" in message
    assert "none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3" in message


def test_from_string_rejects_a_non_string() -> None:
    with pytest.raises(InvalidArchitectureError, match="a cell string is a str, got int"):
        SPACE.from_string(123)  # type: ignore[arg-type]


def test_validate_explains_the_rule() -> None:
    with pytest.raises(InvalidArchitectureError, match=r"'ops' must list 6 operations.*1<-0"):
        SPACE.make(["none"] * 5)
    with pytest.raises(
        InvalidArchitectureError,
        match=r"ops\[2\] \(edge 2<-1\) = 'conv' is not an operation of nb201; valid: none, ",
    ):
        SPACE.make(["none", "none", "conv", "none", "none", "none"])
    with pytest.raises(InvalidArchitectureError, match="one gene 'ops'; got \\['links', 'ops'\\]"):
        SPACE.validate(Architecture.create("nb201", ops=["none"] * 6, links=[0]))
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'gnn', not 'nb201'"):
        SPACE.validate(Architecture.create("gnn", ops=["none"] * 6))
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        Nb201Space(name="")


# -- the canonical key -----------------------------------------------------------------------
def test_key_count_over_all_cells() -> None:
    keys = Counter(SPACE.canonical_key(SPACE.make(ops)) for ops in ALL_OPS)
    assert len(keys) == SPACE.size == 5_044  # NAS-Bench-201's unique string gives 6,466
    assert keys["out=0"] == 341  # every cell whose output is unreachable
    # dead-edge pruning alone leaves 9,445 genotypes; the rest is skip/sum/pool algebra
    assert len({prune_dead_edges(ops) for ops in ALL_OPS}) == 9_445
    reps = list(SPACE.enumerate())
    assert len(reps) == 5_044
    assert {SPACE.canonical_key(r) for r in reps} == set(keys)
    for rep in reps:
        ops = SPACE.genes(rep)
        assert SPACE.canonicalize(rep) == rep
        assert prune_dead_edges(ops) == ops  # representatives have no dead edges


def test_dead_edges_count_as_none() -> None:
    dead_convs = [
        IDENTITY,
        # node 1 is unreachable, so 2<-1 reads zeros, and so does 3<-2
        "|none~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
        # node 2 does not reach the output
        "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|skip_connect~1|none~2|",
        "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|",
    ]
    assert {key(t) for t in dead_convs} == {"out=x"}
    assert {SPACE.to_string(SPACE.canonicalize(cell(t))) for t in dead_convs} == {IDENTITY}
    unreachable = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
    assert key(unreachable) == key(ZERO) == "out=0"
    assert SPACE.to_string(SPACE.canonicalize(cell(unreachable))) == ZERO


def test_key_merges_isomorphic_and_skip_and_pool_rewrites() -> None:
    # nodes 1 and 2 swap when no edge joins them
    assert key(
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"
    ) == key("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|")
    # a skip chain is the identity: conv3(x) however it is routed
    routes = [
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|",
        "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|",
        "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|",
    ]
    assert {key(t) for t in routes} == {"a=conv3(x);out=a"}
    # average pooling is linear: avg(x + a) = avg(x) + avg(a)
    pooled_sum = "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    sum_of_pools = "|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|avg_pool_3x3~1|none~2|"
    assert key(pooled_sum) == key(sum_of_pools) == "a=conv3(x);out=avg(a)+avg(x)"
    # the representative has the fewest edges, then the smallest op indices (node 2 first)
    assert SPACE.to_string(SPACE.canonicalize(cell(pooled_sum))) == (
        "|none~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|none~1|avg_pool_3x3~2|"
    )


def test_key_keeps_multiplicity_and_sharing_apart() -> None:
    assert (
        key("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|") == "out=2*x"
    )
    assert key(IDENTITY) == "out=x"
    # one conv reached through two skip paths vs two convs: NAS-Bench-201's unique string
    # gives both '#+#+(0)@nor_conv_3x3+(0)@nor_conv_3x3', but they differ in parameters
    shared = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|skip_connect~2|"
    separate = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    assert key(shared) == "a=conv3(x);out=2*a"
    assert key(separate) == "a=conv3(x);b=conv3(x);out=a+b"
    one, two = (SPACE.build(cell(t), DIGITS, TINY) for t in (shared, separate))
    assert n_params(two) - n_params(one) == TINY.cells_per_stage * sum(
        9 * c * c + 2 * c for c in (8, 16, 32)
    )  # one more 3x3 conv + BatchNorm per cell


def _raw_cell(ops: tuple[str, ...], x: torch.Tensor, layer: dict[str, Callable]) -> torch.Tensor:
    """A cell computed edge by edge as given, dead edges included."""
    nodes = [x]
    for node in (1, 2, 3):
        total = torch.zeros_like(x)
        for op, (target, source) in zip(ops, NB201_EDGES, strict=True):
            if target == node and op != "none":
                total = total + layer[op](nodes[source])
        nodes.append(total)
    return nodes[3]


def test_equal_keys_compute_equal_functions_for_every_cell() -> None:
    """Every class, run edge by edge with one weight set per conv kind, gives one function.

    BatchNorm is a per-channel scale here, without shift: with a shift, a conv reading a zero
    node would output the shift (the one documented approximation of dead-edge pruning).
    """
    gen = torch.Generator().manual_seed(0)
    w1, w3 = torch.randn(2, 2, 1, 1, generator=gen), torch.randn(2, 2, 3, 3, generator=gen)
    g1, g3 = torch.rand(1, 2, 1, 1, generator=gen) + 0.5, torch.rand(1, 2, 1, 1, generator=gen)
    layer: dict[str, Callable] = {
        "skip_connect": lambda v: v,
        "avg_pool_3x3": lambda v: F.avg_pool2d(v, 3, 1, 1, count_include_pad=False),
        "nor_conv_1x1": lambda v: F.conv2d(F.relu(v), w1.double()) * g1,
        "nor_conv_3x3": lambda v: F.conv2d(F.relu(v), w3.double(), padding=1) * g3,
    }
    x = torch.randn(1, 2, 5, 5, generator=gen, dtype=torch.float64)
    first: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for ops in ALL_OPS:
            out = _raw_cell(ops, x, layer)
            k = SPACE.canonical_key(SPACE.make(ops))
            if k in first:
                torch.testing.assert_close(out, first[k], rtol=1e-9, atol=1e-9)
            else:
                first[k] = out
    assert torch.equal(first["out=0"], torch.zeros_like(x))


def test_parameter_free_cells_have_one_key_per_function() -> None:
    """Among the 729 cells of none/skip/avg edges, keys and functions correspond exactly."""
    layer: dict[str, Callable] = {
        "skip_connect": lambda v: v,
        "avg_pool_3x3": lambda v: F.avg_pool2d(v, 3, 1, 1, count_include_pad=False),
    }
    x = torch.randn(1, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    by_key: dict[str, set[bytes]] = defaultdict(set)
    with torch.no_grad():
        for ops in itertools.product(("none", "skip_connect", "avg_pool_3x3"), repeat=6):
            out = _raw_cell(ops, x, layer)
            by_key[SPACE.canonical_key(SPACE.make(ops))].add(
                out.round(decimals=9).numpy().tobytes()
            )
    assert all(len(outputs) == 1 for outputs in by_key.values())  # equal key, equal function
    functions = [next(iter(outputs)) for outputs in by_key.values()]
    assert len(set(functions)) == len(functions) == 48  # different key, different function


# -- moves ---------------------------------------------------------------------------------------
def test_neighbours_are_one_edge_edits_with_new_keys() -> None:
    arch = cell(ALL_CONV3)
    neighbours = SPACE.neighbors(arch)
    # 24 edits; setting 1<-0 or 3<-2 to none both leave conv3(x) + conv3(conv3(x))
    assert len(neighbours) == 23
    own = SPACE.canonical_key(arch)
    for n in neighbours:
        assert sum(a != b for a, b in zip(SPACE.genes(n), SPACE.genes(arch), strict=True)) == 1
        assert SPACE.canonical_key(n) != own
    # only an edit of 3<-0 makes the zero cell compute something
    zero_neighbours = SPACE.neighbors(cell(ZERO))
    assert [SPACE.canonical_key(n) for n in zero_neighbours] == [
        "out=x",
        "a=conv1(x);out=a",
        "a=conv3(x);out=a",
        "out=avg(x)",
    ]


def test_mutate_reaches_every_neighbour_and_is_seeded() -> None:
    zero = cell(ZERO)
    rng = np.random.default_rng(0)
    children = [SPACE.mutate(zero, rng) for _ in range(60)]
    assert {SPACE.canonical_key(c) for c in children} == {
        SPACE.canonical_key(n) for n in SPACE.neighbors(zero)
    }
    again = np.random.default_rng(0)
    assert children == [SPACE.mutate(zero, again) for _ in range(60)]


def test_sample_is_seeded_and_uniform_over_cells() -> None:
    a = [SPACE.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng, other = np.random.default_rng(7), np.random.default_rng(8)
    first = [SPACE.sample(rng) for _ in range(2_000)]
    assert first != [SPACE.sample(other) for _ in range(2_000)]
    counts = Counter((e, SPACE.genes(arch)[e]) for arch in first for e in range(6))
    assert len(counts) == 30
    assert all(320 <= n <= 480 for n in counts.values())  # 400 expected per edge and op


# -- encodings and choices -----------------------------------------------------------------------
def test_encodings_are_of_the_canonical_cell() -> None:
    via_node_1 = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    via_node_2 = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    assert key(via_node_1) == key(via_node_2) == "a=conv3(x);b=conv1(a);out=b+x"
    code = SPACE.encode(cell(via_node_1))
    assert code.shape == (30,) and code.dtype == np.float32
    np.testing.assert_array_equal(code, SPACE.encode(cell(via_node_2)))
    assert code.reshape(6, 5).sum(axis=1).tolist() == [1.0] * 6

    paths = SPACE.path_encoding(cell(via_node_1))
    assert paths.shape == (PATH_ENCODING_LENGTH,) == (84,)
    np.testing.assert_array_equal(paths, SPACE.path_encoding(cell(via_node_2)))
    # skip (one edge: index 0); conv3 then conv1 (two edges: 4 + 2 * 4 + 1)
    assert np.flatnonzero(paths).tolist() == [0, 13]
    # all-conv3: paths of 1, 2 and 3 conv3 edges
    assert np.flatnonzero(SPACE.path_encoding(cell(ALL_CONV3))).tolist() == [2, 4 + 10, 20 + 42]
    assert not SPACE.path_encoding(cell(ZERO)).any()


def test_choices_name_the_edges() -> None:
    choices = SPACE.choices()
    assert list(choices) == ["edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2"]
    assert all(list(v) == list(NB201_OPS) for v in choices.values())
    params = dict(zip(choices, SPACE.genes(cell(MIXED)), strict=True))
    assert SPACE.from_choices(params) == cell(MIXED)
    with pytest.raises(InvalidArchitectureError, match="missing parameter 'edge_3_2'; expected"):
        SPACE.from_choices({k: v for k, v in params.items() if k != "edge_3_2"})
    with pytest.raises(InvalidArchitectureError, match="unknown parameter"):
        SPACE.from_choices({**params, "edge_4_3": "none"})
    with pytest.raises(InvalidArchitectureError, match="not an operation of nb201"):
        SPACE.from_choices({**params, "edge_2_1": "sep_conv_3x3"})


# -- the networks ------------------------------------------------------------------------------
def test_hyper_validates_and_serialises() -> None:
    assert Nb201Hyper().to_dict() == {"channels": 16, "cells_per_stage": 5}
    for bad in ({"channels": 0}, {"cells_per_stage": -1}, {"channels": 8.0}, {"channels": True}):
        with pytest.raises(ConfigError, match=r"must be an integer >= 1, got"):
            Nb201Hyper(**bad)  # type: ignore[arg-type]


def test_build_rejects_tasks_and_hypers_it_cannot_use() -> None:
    arch = cell(MIXED)
    with pytest.raises(ConfigError, match=r"input_shape must be \(channels, height, width\)"):
        SPACE.build(arch, SimpleNamespace(input_shape=(64,), num_outputs=3))
    with pytest.raises(ConfigError, match="num_outputs must be a positive integer, got 0"):
        SPACE.build(arch, SimpleNamespace(input_shape=(1, 8, 8), num_outputs=0))
    with pytest.raises(ConfigError, match="takes an Nb201Hyper"):
        SPACE.build(arch, DIGITS, {"channels": 8})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("task", "batch"),
    [(DIGITS, 4), (CIFAR10, 2), (SimpleNamespace(input_shape=(2, 7, 5), num_outputs=3), 3)],
    ids=["digits-8x8", "cifar-32x32", "odd-7x5"],
)
def test_build_runs_forward_and_backward(task: SimpleNamespace, batch: int) -> None:
    torch.manual_seed(0)
    model = SPACE.build(cell(MIXED), task, TINY)
    assert isinstance(model, Nb201Model)
    x = torch.randn(batch, *task.input_shape)
    out = model(x)
    assert out.shape == (batch, task.num_outputs)
    torch.nn.functional.cross_entropy(out, torch.arange(batch) % task.num_outputs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    assert model(x[:1]).shape == (1, task.num_outputs)


def test_benchmark_network_has_the_benchmarks_parameter_counts() -> None:
    """C=16, N=5 gives NAS-Bench-201's CIFAR figures exactly: 1,531,546 parameters for the
    all-conv3 cell (its largest network, "1.53 M") and 73,306 for cells without convs (its
    smallest). We count them by hand: every conv3 edge adds 9C^2 + 2C per cell."""
    big = SPACE.build(cell(ALL_CONV3), CIFAR10)
    assert n_params(big) == 1_531_546
    by_hand = 73_306 + 6 * 5 * sum(9 * c * c + 2 * c for c in (16, 32, 64))
    assert by_hand == 1_531_546
    for text in (
        ZERO,
        IDENTITY,
        "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|",
    ):
        assert n_params(SPACE.build(cell(text), CIFAR10)) == 73_306
    cifar100 = SimpleNamespace(input_shape=(3, 32, 32), num_outputs=100)
    assert n_params(SPACE.build(cell(ALL_CONV3), cifar100)) == 1_537_396
    out = big(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_equivalent_cells_build_the_same_network() -> None:
    with_dead = cell(
        "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
    )
    plain = cell("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|")
    via_node_2 = cell("|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    assert {SPACE.canonical_key(c) for c in (with_dead, plain, via_node_2)} == {
        "a=conv3(x);out=avg(a)+x"
    }
    base = n_params(SPACE.build(cell(ZERO), DIGITS, TINY))
    x = torch.randn(3, 1, 8, 8)
    outputs = []
    for arch in (with_dead, plain, via_node_2):
        torch.manual_seed(0)
        model = SPACE.build(arch, DIGITS, TINY).eval()
        # one conv3 + BatchNorm per cell; the dead conv1 costs nothing
        assert n_params(model) == base + sum(9 * c * c + 2 * c for c in (8, 16, 32))
        outputs.append(model(x))
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_a_cell_builds_only_its_live_edges() -> None:
    dead = Nb201Cell(
        SPACE.genes(
            cell("|none~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
        ),
        4,
    )
    assert n_params(dead) == 0 and list(dead.edges) == ["edge_3_0"]
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(dead(x), x)
    zero = Nb201Cell(SPACE.genes(cell(ZERO)), 4)
    assert torch.equal(zero(x), torch.zeros_like(x))


def test_importing_the_space_does_not_import_torch() -> None:
    code = "import sys, nasforge.spaces.nb201; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_keys_read_like_the_function() -> None:
    text = (
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    assert key(text) == "a=conv1(x);b=conv3(x);c=conv1(b);d=conv3(a+avg(b));out=c+d+x"
    assert key(MIXED) == "a=conv3(x);b=conv3(a);out=b+x"  # node 2 is dead
    assert key(ZERO) == "out=0"

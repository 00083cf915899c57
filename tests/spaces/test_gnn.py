"""The gnn space: genes, rules, and its canonical key against NAS-Bench-Graph's own hash."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
from nas_bench_graph import Arch, light_read

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.spaces.gnn import GNN_OPS, PROTEINS_OPS, GnnSpace

GNN = GnnSpace()
PROTEINS = GnnSpace(name="gnn-proteins", ops=PROTEINS_OPS)


def _all_genotypes(ops: tuple[str, ...]) -> list[tuple[tuple[int, ...], tuple[str, ...]]]:
    out = []
    for links in itertools.product(range(1), range(2), range(3), range(4)):
        for op in itertools.product(ops, repeat=4):
            if any(o != "skip" for o in op):
                out.append((links, op))
    return out


def test_validate_explains_the_rule() -> None:
    with pytest.raises(
        InvalidArchitectureError, match=r"links\[2\] must be an input index in 0..2"
    ):
        GNN.make([0, 0, 3, 0], ["gcn"] * 4)
    with pytest.raises(InvalidArchitectureError, match="not an operation of gnn; valid: gat"):
        GNN.make([0, 0, 0, 0], ["gcn", "gcn", "conv", "gcn"])
    with pytest.raises(InvalidArchitectureError, match="all-skip"):
        GNN.make([0, 1, 2, 3], ["skip"] * 4)
    with pytest.raises(InvalidArchitectureError, match="must list 4"):
        GNN.make([0, 0, 0], ["gcn"] * 3)
    with pytest.raises(InvalidArchitectureError, match="not an operation of gnn-proteins"):
        PROTEINS.make([0, 0, 0, 0], ["gat", "gcn", "gcn", "gcn"])


def test_key_merges_isomorphic_and_semantically_equal() -> None:
    # sibling order does not matter
    a = GNN.make([0, 1, 1, 2], ["gcn", "gin", "fc", "cheb"])
    b = GNN.make([0, 1, 2, 1], ["gcn", "gin", "cheb", "fc"])  # the README's example pair
    assert GNN.canonical_key(a) == GNN.canonical_key(b)
    # a skip with successors is the identity
    c = GNN.make([0, 1, 0, 0], ["skip", "gcn", "sage", "fc"])
    d = GNN.make([0, 0, 0, 0], ["gcn", "sage", "fc", "skip"])
    assert GNN.canonical_key(c) == GNN.canonical_key(d)
    # a skip leaf doubles its input's contribution: not the same as without it
    e = GNN.make([0, 0, 1, 1], ["gat", "gat", "skip", "skip"])
    f = GNN.make([0, 0, 0, 0], ["gat", "gat", "skip", "skip"])
    assert GNN.canonical_key(e) != GNN.canonical_key(f)
    # different ops are different
    assert GNN.canonical_key(a) != GNN.canonical_key(GNN.make([0, 1, 1, 2], ["gcn"] * 4))


def test_canonicalize_is_a_member_of_the_same_class() -> None:
    for links, ops in _all_genotypes(GNN_OPS)[::37]:
        arch = GNN.make(links, ops)
        rep = GNN.canonicalize(arch)
        GNN.validate(rep)
        assert GNN.canonical_key(rep) == GNN.canonical_key(arch)
        assert GNN.canonicalize(rep) == rep


@pytest.mark.parametrize(
    ("space", "dataset", "expected"),
    [(GNN, "cora", 26_206), (PROTEINS, "proteins", 2_021)],
    ids=["gnn", "gnn-proteins"],
)
def test_key_partition_equals_benchmark_hash_exhaustively(
    space: GnnSpace, dataset: str, expected: int
) -> None:
    """Over every genotype of the space, our key and NB-Graph's valid_hash agree exactly."""
    table = light_read(dataset)
    key_to_hashes: dict[str, set[int]] = defaultdict(set)
    hash_to_keys: dict[int, set[str]] = defaultdict(set)
    for links, ops in _all_genotypes(space.ops):
        key = space.canonical_key(Architecture.create(space.name, links=links, ops=ops))
        h = Arch(list(links), list(ops)).valid_hash()
        key_to_hashes[key].add(h)
        hash_to_keys[h].add(key)
    assert len(key_to_hashes) == expected
    assert all(len(v) == 1 for v in key_to_hashes.values())
    assert all(len(v) == 1 for v in hash_to_keys.values())
    assert set(hash_to_keys) == set(table)  # the table holds exactly these classes

    # and enumerate() yields one representative per key, whose own hash is in the table
    reps = list(space.enumerate())
    assert len(reps) == expected == space.size
    rep_hashes = set()
    for rep in reps:
        links, ops = GnnSpace.genes(rep)
        h = Arch(list(links), list(ops)).valid_hash()
        assert key_to_hashes[space.canonical_key(rep)] == {h}
        rep_hashes.add(h)
    assert rep_hashes == set(table)


def test_mutation_reaches_every_gene() -> None:
    rng = np.random.default_rng(0)
    arch = GNN.make([0, 1, 2, 3], ["gcn", "gat", "sage", "fc"])
    seen_links, seen_ops = set(), set()
    for _ in range(300):
        child = GNN.mutate(arch, rng)
        seen_links.add(child["links"])
        seen_ops.update(child["ops"])
    assert len(seen_links) == 7  # the original plus 6 single-link edits
    assert set(GNN_OPS) <= seen_ops


def test_neighbourhood_size_is_bounded_by_single_edits() -> None:
    arch = GNN.make([0, 1, 2, 3], ["gcn", "gat", "sage", "fc"])
    # 6 link edits + 4 x 8 op edits, all distinct for a chain of distinct ops
    assert len(GNN.neighbors(arch)) == 38

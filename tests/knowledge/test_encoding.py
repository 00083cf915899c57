"""The universal encoding: built models' computation graphs as vectors, for every space with
models (the README's custom space included) and no code of the space's own."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tests.readme_plugin import load_readme_module

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.knowledge.encoding import (
    DEFAULT_DIM,
    UniversalEncoder,
    computation_graph,
    wl_vector,
)
from nasforge.objective import Direction, Objective
from nasforge.result import Result, Status
from nasforge.spaces.base import SPACES, SearchSpace
from nasforge.strategies.bananas import Bananas


def _direct(space: SearchSpace, arch: Architecture) -> np.ndarray:
    """The encoding computed afresh (no cache)."""
    return wl_vector(computation_graph(space, arch))


def _equivalent_pair(space: SearchSpace) -> tuple[Architecture, Architecture]:
    """Two architectures with different genes and the same canonical key (drawn at random:
    the spaces hold many more genotypes than distinct networks)."""
    rng = np.random.default_rng(0)
    first: dict[str, Architecture] = {}
    for _ in range(20_000):
        arch = space.sample(rng)
        key = space.canonical_key(arch)
        if key in first and first[key].genes != arch.genes:
            return first[key], arch
        first.setdefault(key, arch)
    raise AssertionError(f"no two equivalent genotypes of {space.name} drawn")


@pytest.mark.parametrize("name", ["gnn", "nb201"])
def test_equivalent_architectures_get_equal_encodings(name: str) -> None:
    space = SPACES.create(name)
    a, b = _equivalent_pair(space)
    assert a.genes != b.genes
    assert np.array_equal(_direct(space, a), _direct(space, b))


@pytest.mark.parametrize("name", ["gnn", "nb201", "mlp"])
def test_different_architectures_get_different_fixed_size_encodings(name: str) -> None:
    space = SPACES.create(name)
    rng = np.random.default_rng(3)
    archs: dict[str, Architecture] = {}
    while len(archs) < 8:
        arch = space.sample(rng)
        archs.setdefault(space.canonical_key(arch), arch)
    codes = [_direct(space, a) for a in archs.values()]
    assert all(c.shape == (DEFAULT_DIM,) and np.isfinite(c).all() for c in codes)
    for (i, x), (j, y) in itertools.combinations(enumerate(codes), 2):
        assert not np.array_equal(x, y), (list(archs)[i], list(archs)[j])


def test_a_user_space_is_encoded_without_code_of_its_own() -> None:
    module = load_readme_module()
    space = module.WideMlp()
    encoder = UniversalEncoder(space)
    narrow = Architecture.create("wide-mlp", depth=2, width=16, activation="relu")
    wide = Architecture.create("wide-mlp", depth=2, width=256, activation="relu")
    deep = Architecture.create("wide-mlp", depth=3, width=16, activation="relu")
    codes = [encoder(a) for a in (narrow, wide, deep)]
    assert len({c.tobytes() for c in codes}) == 3
    assert encoder(narrow) is codes[0]  # cached by canonical key


def test_a_space_without_models_is_refused_in_one_line() -> None:
    from nasforge.spaces.choice import ChoiceSpace

    table_only = ChoiceSpace(name="table-only", choices={"a": (1, 2)})
    with pytest.raises(ConfigError, match="builds no models"):
        UniversalEncoder(table_only)
    with pytest.raises(ConfigError, match="builds no models"):
        Bananas(
            table_only, objective=Objective("val_acc", Direction.MAXIMIZE), encoding="universal"
        )


def test_bananas_searches_on_the_universal_encoding() -> None:
    space = SPACES.create("mlp")
    strategy = Bananas(
        space,
        objective=Objective("val_acc", Direction.MAXIMIZE),
        seed=0,
        encoding="universal",
        n_init=4,
        n_candidates=20,
    )
    keys = set()
    for _ in range(8):
        [arch] = strategy.ask(1)
        space.validate(arch)
        keys.add(space.canonical_key(arch))
        width_sum = float(sum(arch["widths"]))  # a signal the predictor can learn
        strategy.tell(arch, Result(status=Status.COMPLETE, metrics={"val_acc": width_sum / 1e3}))
    assert len(keys) == 8

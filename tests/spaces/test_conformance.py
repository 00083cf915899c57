"""The conformance suite every registered search space must pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge._builtins import SPACES
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.spaces.base import SearchSpace

SPACE_NAMES = SPACES.names()


@pytest.fixture(params=SPACE_NAMES)
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return SPACES.create(request.param)


def _samples(space: SearchSpace, n: int = 200, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_sample_is_valid_and_seeded(space: SearchSpace) -> None:
    archs = _samples(space)
    for arch in archs:
        space.validate(arch)
        assert arch.space == space.name
    assert archs == _samples(space)  # same seed, same samples
    assert archs != _samples(space, seed=1)


def test_mutate_is_valid_and_changes_the_key(space: SearchSpace) -> None:
    rng = np.random.default_rng(3)
    for arch in _samples(space, 100):
        child = space.mutate(arch, rng)
        space.validate(child)
        assert space.canonical_key(child) != space.canonical_key(arch)


def test_neighbors_are_valid_distinct_and_exclude_self(space: SearchSpace) -> None:
    for arch in _samples(space, 50):
        own = space.canonical_key(arch)
        keys = [space.canonical_key(n) for n in space.neighbors(arch)]
        assert keys, "every architecture has neighbours"
        assert own not in keys
        assert len(keys) == len(set(keys))
        for n in space.neighbors(arch):
            space.validate(n)


def test_encode_is_fixed_length_and_equal_for_equivalent(space: SearchSpace) -> None:
    archs = _samples(space, 100)
    codes = [space.encode(a) for a in archs]
    assert len({c.shape for c in codes}) == 1
    by_key: dict[str, np.ndarray] = {}
    for arch, code in zip(archs, codes, strict=True):
        assert np.isfinite(code).all()
        key = space.canonical_key(arch)
        if key in by_key:
            np.testing.assert_array_equal(by_key[key], code)
        by_key[key] = code


def test_choices_round_trip(space: SearchSpace) -> None:
    choices = space.choices()
    rng = np.random.default_rng(0)
    built = 0
    for _ in range(100):
        params = {k: v[int(rng.integers(len(v)))] for k, v in choices.items()}
        try:
            arch = space.from_choices(params)
        except InvalidArchitectureError:
            continue
        space.validate(arch)
        built += 1
    assert built > 50
    with pytest.raises(InvalidArchitectureError, match="missing parameter"):
        space.from_choices({})


def test_json_round_trip_keeps_identity(space: SearchSpace) -> None:
    for arch in _samples(space, 50):
        again = Architecture.from_json(json.dumps(arch.to_dict()))
        assert again == arch
        assert hash(again) == hash(arch)
        assert space.canonical_key(again) == space.canonical_key(arch)


def test_validate_rejects_foreign_and_malformed(space: SearchSpace) -> None:
    arch = _samples(space, 1)[0]
    with pytest.raises(InvalidArchitectureError, match="belongs to space"):
        space.validate(Architecture("not-" + space.name, arch.genes))
    with pytest.raises(InvalidArchitectureError):
        space.validate(Architecture.create(space.name, nonsense=[1, 2]))
    assert not space.is_valid(Architecture.create(space.name))


def test_enumerate_matches_size(space: SearchSpace) -> None:
    if space.size is None:
        pytest.skip(f"space {space.name} is unbounded")
    keys = [space.canonical_key(a) for a in space.enumerate()]
    assert len(keys) == len(set(keys)) == space.size

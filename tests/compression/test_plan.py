"""Compression plans: sparsities checked, imp rounds that reach every asked-for level."""

from __future__ import annotations

import pytest

from nasforge.compression.plan import CompressPlan, parse_sparsities, step_of_key
from nasforge.errors import ConfigError, UnknownNameError


def test_parse_sparsities_sorts_and_checks() -> None:
    assert parse_sparsities("0.9, 0.5,0.9") == (0.5, 0.9)
    assert parse_sparsities([0.8]) == (0.8,)
    for bad in ("1", "0", "-0.1", "1.5", "abc", "nan", ""):
        with pytest.raises(ConfigError, match=r"open interval \(0, 1\)|at least one"):
            parse_sparsities(bad)
    with pytest.raises(ConfigError):
        parse_sparsities([True])


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(
        UnknownNameError, match=r"valid: magnitude, imp, random, channels\. Did you mean 'imp'"
    ):
        CompressPlan("imps", (0.5,), 0)


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.8])
def test_imp_rounds_reach_each_level_exactly(ratio: float) -> None:
    levels = (0.5, 0.8, 0.9, 0.95)
    steps = CompressPlan("imp", levels, 3, prune_ratio=ratio).steps()
    reached = [s.sparsity for s in steps]
    assert reached == sorted(reached) and len(set(reached)) == len(reached)
    assert [s.sparsity for s in steps if s.level] == list(levels)
    assert [s.round for s in steps] == list(range(1, len(steps) + 1))
    for before, after in zip([0.0, *reached], reached, strict=False):
        assert after <= 1 - (1 - before) * (1 - ratio) + 1e-4  # never more than a round's share
    assert len({s.key for s in steps}) == len(steps)
    assert all(step_of_key(s.key) == ("imp", s.sparsity) for s in steps)


def test_one_shot_methods_have_one_step_per_level() -> None:
    plan = CompressPlan("random", (0.5, 0.9), 0, rewind_epoch=2)
    assert [(s.sparsity, s.level) for s in plan.steps()] == [(0.5, True), (0.9, True)]
    assert step_of_key(plan.dense().key) == ("dense", 0.0)
    assert step_of_key("gcn|gcn") is None
    assert plan.dense().key != CompressPlan("random", (0.5,), 0, rewind_epoch=3).dense().key


def test_bad_ratio_and_rewind_are_refused() -> None:
    with pytest.raises(ConfigError, match="prune_ratio"):
        CompressPlan("imp", (0.5,), 0, prune_ratio=1.0)
    with pytest.raises(ConfigError, match="rewind_epoch"):
        CompressPlan("imp", (0.5,), 0, rewind_epoch=-1)

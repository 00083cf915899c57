"""A training process's thread share: adopted between epochs, costs measured at the base."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from nasforge.train import threads


@pytest.fixture
def restore() -> Iterator[None]:
    before = (threads._base, threads._share, torch.get_num_threads())
    yield
    threads._base, threads._share = before[0], before[1]
    torch.set_num_threads(before[2])


def test_nothing_changes_where_nothing_is_configured(restore: None) -> None:
    threads._base, threads._share = None, None
    torch.set_num_threads(1)
    threads.between_epochs()
    with threads.at_base():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 1


def test_the_share_is_adopted_between_epochs_and_costs_use_the_base(restore: None) -> None:
    share = {"now": 2}
    threads.configure(1, lambda: share["now"])
    assert torch.get_num_threads() == 1
    threads.between_epochs()
    assert torch.get_num_threads() == 2
    with threads.at_base():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    share["now"] = 0  # unset: back to the base
    threads.between_epochs()
    assert torch.get_num_threads() == 1

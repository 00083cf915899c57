"""Knowledge distillation's loss (``Distill``) and training with it on real data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.tasks.base import resolve_task
from nasforge.train.trainer import Distill


def test_the_loss_mixes_the_hard_loss_and_the_teacher() -> None:
    teacher = nn.Linear(3, 4)
    hard = torch.tensor(2.0)
    student = torch.randn(5, 4)
    same = Distill(teacher, weight=1.0).loss(hard, student, student.clone(), regression=False)
    assert float(same) == pytest.approx(0.0, abs=1e-6)  # no divergence from itself
    only_hard = Distill(teacher, weight=0.0).loss(hard, student, -student, regression=False)
    assert float(only_hard) == pytest.approx(2.0)
    soft = Distill(teacher, weight=0.5).loss(hard, student, student + 1, regression=True)
    assert float(soft) == pytest.approx(0.5 * 2.0 + 0.5 * 1.0)
    with pytest.raises(ConfigError):
        Distill(teacher, weight=1.5)
    with pytest.raises(ConfigError):
        Distill(teacher, temperature=0)


@pytest.mark.parametrize("spec", ["tabular:wine", "synthetic"])
def test_a_student_learns_from_a_trained_teacher(spec: str) -> None:
    setup = resolve_task(spec)
    space_name = setup.space
    from nasforge.spaces.base import SPACES

    space = SPACES.create(space_name)
    arch = space.sample(__import__("numpy").random.default_rng(0))
    torch.manual_seed(0)
    teacher = space.build(arch, setup.task, setup.hyper)
    from dataclasses import replace

    config = replace(setup.train, epochs=10)
    setup.task.fit(teacher, config)
    torch.manual_seed(1)
    student = space.build(arch, setup.task, setup.hyper)
    fit = setup.task.fit(student, config, distill=Distill(teacher))
    assert fit.val > 0.5 and fit.curve

"""The conformance suite every registered task kind must pass: its specs parse, its example
loads offline into a task that its default space trains, scores, proxies and exports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nasforge.errors import ConfigError
from nasforge.spaces.base import MODALITIES, SPACES
from nasforge.tasks.base import (
    TASKS,
    ProxyBatch,
    Task,
    TaskKind,
    TaskSetup,
    register_task,
    resolve_task,
    task_forms,
    task_options,
)
from nasforge.train.trainer import TrainConfig

KIND_NAMES = TASKS.names()


@pytest.fixture(scope="module", params=KIND_NAMES)
def kind(request: pytest.FixtureRequest) -> type[TaskKind]:
    kind: type[TaskKind] = TASKS.get(request.param)  # type: ignore[assignment]
    return kind


@pytest.fixture(scope="module")
def setup(kind: type[TaskKind]) -> TaskSetup:
    return resolve_task(kind.example, seed=0)


def test_the_kind_declares_its_specs(kind: type[TaskKind]) -> None:
    assert kind.name in KIND_NAMES and kind.prefixes and kind.forms and kind.summary
    assert all(form.partition(":")[0] in kind.prefixes for form in kind.forms)
    assert kind.example.partition(":")[0] in kind.prefixes
    assert set(kind.options) <= set(task_options())
    assert set(kind.forms) <= set(task_forms())
    others = [TASKS.get(n) for n in KIND_NAMES if n != kind.name]
    assert not {p for k in others for p in k.prefixes} & set(kind.prefixes)  # type: ignore[attr-defined]


def test_a_taken_prefix_or_name_is_refused(kind: type[TaskKind]) -> None:
    class Copy(kind):  # type: ignore[valid-type, misc]
        name = "copy-of-" + kind.name

    with pytest.raises(ConfigError, match=f"task prefix '{kind.prefixes[0]}'"):
        register_task(Copy)
    with pytest.raises(ConfigError, match="already registered"):
        register_task(kind)
    assert TASKS.names() == KIND_NAMES


def test_unknown_specs_and_options_are_refused(kind: type[TaskKind]) -> None:
    prefix = kind.prefixes[0]
    with pytest.raises(ConfigError, match=r"unknown .*; valid(: | forms: )"):
        resolve_task(f"{prefix}:no-such-data-set-here")
    with pytest.raises(ConfigError, match=r"unknown task option\(s\) \['colour'\]"):
        resolve_task(kind.example, options={"colour": 1})
    foreign = [o for o in task_options() if o not in kind.options]
    for option in foreign:
        with pytest.raises(ConfigError, match=f"{option} applies to .* tasks, not"):
            resolve_task(kind.example, options={option: 1})


def test_the_example_loads_into_a_task_its_space_takes(setup: TaskSetup) -> None:
    task = setup.task
    assert isinstance(task, Task) and task.modality in MODALITIES
    assert task.kind in ("classification", "regression")
    assert task.default_space == setup.space
    assert task.objective.metric == f"val_{task.metric}"
    json.dumps(task.describe())
    space = SPACES.create(setup.space)
    space.check_task(task)
    assert space.settings_for(setup.hyper) == (
        setup.hyper if setup.hyper is not None else space.default_settings()
    )
    assert isinstance(setup.train, TrainConfig) and setup.protocol


def _model(setup: TaskSetup) -> Any:
    import torch

    torch.manual_seed(0)
    space = SPACES.create(setup.space)
    arch = space.sample(__import__("numpy").random.default_rng(0))
    return space.build(arch, setup.task, space.settings_for(setup.hyper))


def test_its_model_takes_the_example_inputs(setup: TaskSetup) -> None:
    import torch

    task = setup.task
    model = _model(setup).eval()
    with torch.no_grad():
        out = model(*task.example_inputs())
        raw = model(*task.raw_inputs())
    assert out.shape[-1] == task.num_outputs and raw.shape[-1] == task.num_outputs
    io = task.model_io()
    assert set(io) == {"graph", "inputs", "output", "input_shape", "outputs"}
    assert list(io["input_shape"]) == list(task.input_shape)
    assert io["outputs"] == task.num_outputs


def test_it_trains_scores_and_feeds_proxies(setup: TaskSetup) -> None:
    from dataclasses import replace

    task = setup.task
    model = _model(setup)
    fit = task.fit(model, replace(setup.train, epochs=2), keep_state=True)
    assert fit.metric == task.metric and fit.epochs_run == 2 and fit.state is not None
    assert [p["epoch"] for p in fit.curve] == [1.0, 2.0]
    model.load_state_dict(fit.state)
    scores = task.score(model.eval())
    assert set(scores) == {f"val_{task.metric}", f"test_{task.metric}"}
    assert scores[f"val_{task.metric}"] == pytest.approx(fit.val)
    batch = task.proxy_batch(seed=0, batch_size=16, max_rows=16)
    assert isinstance(batch, ProxyBatch)
    loss = batch.loss(model.train()(*batch.inputs))
    assert loss.dim() == 0 and bool(loss.isfinite())
    statistics = task.input_statistics
    assert statistics is None or len(statistics) == 2

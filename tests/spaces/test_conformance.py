"""The conformance suite every registered search space must pass, search side and model side
(and the README's custom space, built on ``ChoiceSpace``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from tests.readme_plugin import load_readme_module

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.spaces.base import MODALITIES, SPACES, SearchSpace

README_SPACE = "wide-mlp (README)"
SPACE_NAMES = [*SPACES.names(), README_SPACE]


@pytest.fixture(params=SPACE_NAMES)
def space(request: pytest.FixtureRequest) -> SearchSpace:
    if request.param == README_SPACE:
        space: SearchSpace = load_readme_module().WideMlp()
        return space
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


def test_to_choices_inverts_from_choices(space: SearchSpace) -> None:
    choices = space.choices()
    for arch in _samples(space, 60):
        params = space.to_choices(arch)
        assert set(params) == set(choices)
        for name, value in params.items():
            assert value in list(choices[name]), (name, value)
        assert space.from_choices(params) == arch


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


def _tiny_tasks() -> dict[str, Any]:
    """Small real data of each kind a space's models may take, by modality."""
    from nasforge.tasks.image import image_task
    from nasforge.tasks.node import NodeClassificationTask, planted_partition
    from nasforge.tasks.tabular import tabular_task

    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    return {
        "graph": NodeClassificationTask("tiny", planted_partition(nodes=40, features=6, classes=3)),
        "image": image_task(rng.normal(size=(30, 1, 8, 8)), labels, name="tiny"),
        "tabular": tabular_task(rng.normal(size=(30, 5)), labels, name="tiny"),
    }


def _tiny_task(space: SearchSpace) -> Any:
    """Small real data of the kind ``space`` builds models for."""
    assert space.modality in MODALITIES, f"{space.name} has no models (modality None)"
    return _tiny_tasks()[space.modality]


def test_build_forward_and_backward(space: SearchSpace) -> None:
    import torch

    task = _tiny_task(space)
    graph = hasattr(task, "data")
    for arch in _samples(space, 6, seed=5):
        torch.manual_seed(0)
        model = space.build(arch, task)
        model.train()
        if graph:
            out = model(task.data.x, task.data.edge_index)
            expected = (task.num_nodes, task.num_classes)
        else:
            out = model(task.x_train[:8])
            expected = (8, task.num_outputs)
        assert tuple(out.shape) == expected
        out.logsumexp(dim=-1).mean().backward()
        params = [p for p in model.parameters() if p.requires_grad]
        reached = [p for p in params if p.grad is not None]
        assert all(torch.isfinite(p.grad).all() for p in reached)  # type: ignore[arg-type]
        # PyG's ARMAConv with one layer keeps an unused `weight`: most, not all, get gradients
        assert sum(p.numel() for p in reached) >= 0.5 * sum(p.numel() for p in params)


def test_settings_round_trip_through_json(space: SearchSpace) -> None:
    default = space.default_settings()
    if default is None:  # the genes fix every setting
        assert space.settings_from_dict({"hidden": 3}) is None
        assert space.setting_fields() == {} and space.settings_for(None) is None
        return
    stored = json.loads(json.dumps(default.to_dict()))
    assert space.settings_from_dict(stored) == default
    assert space.settings_from_dict(None) is None
    assert set(space.setting_fields()) == set(stored)
    assert space.settings_for(default) is default
    assert space.settings_for(object()) == default  # another space's settings do not apply
    with pytest.raises(ConfigError, match=f"bad hyperparameters .* for space '{space.name}'"):
        space.settings_from_dict({**stored, "no_such_setting": 1})


def test_build_uses_the_default_settings_and_is_seeded(space: SearchSpace) -> None:
    import torch

    task = _tiny_task(space)
    for arch in _samples(space, 4, seed=2):
        torch.manual_seed(0)
        first = space.build(arch, task).state_dict()
        torch.manual_seed(0)
        again = space.build(arch, task, space.default_settings()).state_dict()
        assert list(first) == list(again)
        assert all(torch.equal(first[k], again[k]) for k in first)


def test_a_space_refuses_data_its_models_do_not_take(space: SearchSpace) -> None:
    for modality, task in _tiny_tasks().items():
        if modality == space.modality:
            space.check_task(task)
        else:
            with pytest.raises(ConfigError, match=f"space '{space.name}'"):
                space.check_task(task)


def test_export_round_trip(space: SearchSpace, tmp_path: Any) -> None:
    """A model saved as an export folder loads into the same network: its space rebuilds it
    from the stored architecture and settings."""
    import torch

    from nasforge.exporting.torch import FORMAT, FORMAT_VERSION, ExportedModel, load, save

    task = _tiny_task(space)
    settings = space.default_settings()
    for i, arch in enumerate(_samples(space, 3, seed=4)):
        torch.manual_seed(i)
        net = space.build(arch, task, settings).eval()
        io = task.model_io()
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "space": space.name,
            "architecture": arch.to_dict(),
            "hyper": None if settings is None else settings.to_dict(),
            "model": io,
        }
        folder = tmp_path / f"model-{i}"
        folder.mkdir()
        save(ExportedModel(net, graph=bool(io["graph"]), metadata=metadata), folder)
        if space.name == README_SPACE.split()[0]:
            continue  # not registered here: load() looks the space up by name
        loaded = load(folder)
        inputs = task.example_inputs()
        with torch.no_grad():
            assert torch.equal(loaded.net(*inputs), net(*inputs))


def test_latency_decomposition_covers_every_part(space: SearchSpace) -> None:
    settings = space.default_settings()
    if not space.predicts_latency:
        with pytest.raises(ConfigError, match="latency tables exist for the"):
            space.latency_names(settings)
        return
    import torch

    task = _tiny_task(space)
    names = space.latency_names(settings)
    entries = list(space.latency_entries(task, settings))
    assert [e.name for e in entries] and {e.name for e in entries} == names
    assert all(e.minus is None or e.minus in names for e in entries)
    json.dumps(space.latency_shape(task, settings))
    with torch.no_grad():
        for entry in entries:
            entry.module.eval()(*entry.inputs)
    for arch in _samples(space, 50):
        terms = space.latency_terms(arch, settings)
        assert terms and set(terms) <= names and min(terms.values()) >= 1


def test_widths_narrow_the_network_and_name_where_their_channels_run(
    space: SearchSpace,
) -> None:
    """Every width a space offers to structured pruning: the narrowest options build, a site's
    channel axis holds ``blocks * scale * width`` channels in the model built with any option,
    and unknown names or values are refused."""
    import torch

    from nasforge.errors import ConfigError

    task = _tiny_task(space)
    graph = hasattr(task, "data")
    settings = space.default_settings()
    for arch in _samples(space, 6, seed=3):
        options = space.width_options(arch, settings)
        if not options:
            continue
        assert all(list(v) == sorted(set(v)) for v in options.values())
        narrow = {name: values[0] for name, values in options.items()}
        for widths in (narrow, {name: values[-1] for name, values in options.items()}):
            narrow_arch, narrow_settings = space.with_widths(arch, settings, widths)
            space.validate(narrow_arch)
            net = space.build(narrow_arch, task, narrow_settings).eval()
            seen: list[tuple[int, int]] = []
            sites = space.width_sites(net, narrow_arch, narrow_settings)
            assert set(sites) == set(options)
            hooks = []
            for name, group in sites.items():
                for site in group:
                    want = site.blocks * site.scale * widths[name]

                    def check(
                        tensor: Any, site: Any = site, want: int = want, seen: list = seen
                    ) -> None:
                        seen.append((tensor.shape[site.axis], want))

                    if site.inputs:
                        hooks.append(
                            site.module.register_forward_pre_hook(
                                lambda _m, args, check=check: check(args[0])
                            )
                        )
                    else:
                        hooks.append(
                            site.module.register_forward_hook(
                                lambda _m, _a, out, check=check: check(out)
                            )
                        )
            with torch.no_grad():
                if graph:
                    net(task.data.x, task.data.edge_index)
                else:
                    net(task.x_train[:4])
            for hook in hooks:
                hook.remove()
            assert seen and all(got == want for got, want in seen), seen
        name = next(iter(options))
        with pytest.raises(ConfigError, match="cannot be"):
            space.with_widths(arch, settings, {name: options[name][-1] + 1})
        with pytest.raises(ConfigError, match="has no width"):
            space.with_widths(arch, settings, {"nonexistent": 1})

"""Score architectures by zero-cost proxies instead of training, and rank samples by them."""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.config import check_seed
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.evaluators.base import Evaluator
from nasforge.objective import Direction, Objective
from nasforge.proxies import PROXIES, check_proxies, make_batch, score
from nasforge.result import Result
from nasforge.spaces.base import SearchSpace
from nasforge.tasks.base import ProxyBatch, Task, task_setup
from nasforge.train.cost import count_flops, count_params
from nasforge.train.device import check_device, device_name, resolve_device

__all__ = ["ProxyEvaluator", "ProxyRow", "rank_by_proxy", "rank_sample"]


class ProxyEvaluator(Evaluator):
    """Scores each architecture by zero-cost proxies of its untrained model; never trains.

    Proxies from Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021),
    and Mellor et al., "Neural Architecture Search without Training" (ICML 2021); see
    :mod:`nasforge.proxies` for each definition, its loss and its batch. The model is built
    as :class:`~nasforge.evaluators.training.TrainingEvaluator` builds it
    (``space.build(arch, task, hyper)``), its weights initialised from ``seed``; the batch is
    drawn from the training split by ``seed`` too, so a result depends only on the
    architecture and the seed.

    Reports every requested proxy as the validation metric ``proxy_<name>`` (larger is
    better; the objective maximises the first one, or ``objective``), and the costs
    ``params`` and ``flops`` (as ``TrainingEvaluator``: dense FLOPs of one forward pass of
    the whole graph, or of one example) unless ``costs=False``. There are no test metrics
    and no fidelity: the ``budget`` of :meth:`evaluate` is ignored. A proxy that raises or
    is not finite fails the trial with the reason.

    Args:
        task: The data (a :class:`~nasforge.tasks.base.Task`).
        space: A space whose models take the task's kind of data.
        hyper: Model hyperparameters of the space (its defaults if ``None``).
        proxies: Names among :data:`nasforge.proxies.PROXIES`.
        objective: The proxy searched on (default: the first of ``proxies``).
        seed: Seed of the weights and of the batch.
        batch_size: Training examples of an image or tabular batch.
        max_rows: Training nodes of a graph that ``jacov`` correlates (at most).
        costs: Report ``params`` and ``flops`` (counting FLOPs takes one more forward pass
            when ``flops`` is not among the proxies).
        device: Where the proxies run (``auto``, ``cpu``, ``cuda``, ``cuda:N``; see
            :mod:`nasforge.train.device`); the weights are drawn on the CPU from the seed,
            so a result is the same architecture's up to the device's rounding.

    Raises:
        ConfigError: If the space cannot build models for the task, or for an unknown or
            repeated proxy, or an objective that is not among the proxies.
    """

    def __init__(
        self,
        *,
        task: Task,
        space: SearchSpace,
        hyper: Any = None,
        proxies: Sequence[str] = ("synflow",),
        objective: str | None = None,
        seed: int = 0,
        batch_size: int = 64,
        max_rows: int = 256,
        costs: bool = True,
        device: str = "auto",
    ) -> None:
        space.check_task(task)
        self.device = check_device(device)
        self.proxies = check_proxies(proxies)
        objective = self.proxies[0] if objective is None else objective
        if objective not in self.proxies:
            raise ConfigError(
                f"the objective proxy {objective!r} must be among the proxies computed, "
                f"{list(self.proxies)}; add it to proxies"
            )
        check_seed(seed)
        self.task = task
        self.space = space
        self.space_name = space.name
        self.hyper = hyper if hyper is not None else space.default_settings()
        self.seed = seed
        self.batch_size = batch_size
        self.max_rows = max_rows
        self.costs = costs
        self.batch = make_batch(task, seed=seed, batch_size=batch_size, max_rows=max_rows)
        self.objective_proxy = objective
        self.objectives = (Objective(f"proxy_{objective}", Direction.MAXIMIZE),)
        cost_names = ("params", "flops") if costs else ()
        self.metrics = (*(f"proxy_{name}" for name in self.proxies), *cost_names)

    def build_model(self, arch: Architecture) -> nn.Module:
        """The untrained model of ``arch``, its weights drawn from the seed.

        Leaves torch's global random state as it was.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.space.build(arch, self.task, self.hyper)
        return model

    def evaluate(self, arch: Architecture, budget: int | None = None) -> Result:
        if arch.space != self.space_name:
            raise InvalidArchitectureError(
                f"this evaluator scores space {self.space_name!r}, got {arch.space!r}"
            )
        start = time.perf_counter()
        device = resolve_device(self.device)
        batch = self.batch.to(device)
        try:
            model = self.build_model(arch).to(device)
            values = score(lambda: copy.deepcopy(model), batch, self.proxies)
            costs: dict[str, float] = {}
            if self.costs:
                costs["params"] = values.get("params", float(count_params(model)))
                costs["flops"] = values["flops"] if "flops" in values else self._flops(model, batch)
        except InvalidArchitectureError:
            raise
        except Exception as exc:  # a proxy that cannot run on this model fails the trial
            reason = f"{type(exc).__name__}: {exc}"
            return Result.failed(reason, wall_time=time.perf_counter() - start)
        bad = [f"{name} is {value}" for name, value in values.items() if not math.isfinite(value)]
        if bad:
            return Result.failed(f"proxy {', '.join(bad)}", wall_time=time.perf_counter() - start)
        return Result(
            metrics={f"proxy_{name}": value for name, value in values.items()},
            costs=costs,
            wall_time=time.perf_counter() - start,
            device=str(device),
            device_name=device_name(device),
        )

    def _flops(self, model: nn.Module, batch: ProxyBatch) -> float:
        model.eval()
        inputs = batch.one_pass()
        return float(count_flops(lambda: model(*inputs)))

    def describe(self) -> dict[str, Any]:
        hyper = self.hyper.to_dict() if hasattr(self.hyper, "to_dict") else None
        return {
            "kind": "proxies",
            "task": self.task.describe(),
            "hyper": hyper,
            "proxies": list(self.proxies),
            "objective": self.objective_proxy,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "max_rows": self.max_rows,
            "costs": self.costs,
        }


# -- ranking samples -------------------------------------------------------------------------
def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def rank_by_proxy(
    space: SearchSpace,
    source: Evaluator | Task,
    *,
    n_samples: int,
    proxy: str = "synflow",
    seed: int = 0,
    exclude: Iterable[Architecture | str] = (),
    hyper: Any = None,
) -> list[tuple[Architecture, float]]:
    """Sample architectures not evaluated yet and rank them by one proxy, best first.

    Meant for warm starts: a strategy's first candidates are the top of this list.

    Args:
        space: The space to sample (with a generator seeded by ``seed``).
        source: Where the data and model settings come from: a task, a
            :class:`ProxyEvaluator`, or any evaluator with ``task`` and ``hyper`` attributes
            (a :class:`~nasforge.evaluators.training.TrainingEvaluator`).
        n_samples: Distinct architectures (by canonical key) to draw and score.
        proxy: One of :data:`nasforge.proxies.PROXIES`.
        seed: Seed of the sample, of the weights and of the batch.
        exclude: Architectures (or their canonical keys) already seen; never drawn.
        hyper: Model settings when ``source`` is a task (default: the space's).

    Returns:
        ``(architecture, score)`` pairs sorted by decreasing score (ties in draw order).
        Architectures whose proxy fails are left out, so the list may be shorter than
        ``n_samples``; it is also shorter when the space runs out of unseen architectures.

    Raises:
        ConfigError: For an unknown proxy, a source without data (a table look-up), or a
            space that cannot build models for the task.
    """
    _check_count("n_samples", n_samples)
    check_proxies([proxy])
    data = getattr(source, "task", None)
    if isinstance(source, Task):
        task, model_hyper = source, hyper
    elif isinstance(data, Task):
        task, model_hyper = data, getattr(source, "hyper", None)
    else:
        raise ConfigError(
            f"proxies need data: pass a task or an evaluator that trains on one, not a "
            f"{type(source).__name__} (a table look-up has no data)"
        )
    evaluator = ProxyEvaluator(
        task=task,
        space=space,
        hyper=model_hyper,
        proxies=[proxy],
        seed=seed,
        costs=False,
        device=getattr(source, "device", "auto"),  # where the source evaluator trains
    )
    candidates = space.sample_distinct(n_samples, np.random.default_rng(seed), exclude)
    scored: list[tuple[Architecture, float]] = []
    for arch in candidates:
        result = evaluator.evaluate(arch)
        if result.ok:
            scored.append((arch, result.metrics[f"proxy_{proxy}"]))
    return sorted(scored, key=lambda pair: -pair[1])  # stable: ties keep draw order


@dataclass(frozen=True, slots=True)
class ProxyRow:
    """One architecture of :func:`rank_sample`.

    Attributes:
        rank: 1-based rank by the first proxy (failed architectures come last).
        arch: The architecture.
        key: Its canonical key.
        scores: Proxy name -> value; empty when the proxies failed.
        costs: ``params`` and ``flops``.
        seconds: Time all its proxies took.
        reason: Why the proxies failed, or ``None``.
    """

    rank: int
    arch: Architecture
    key: str
    scores: Mapping[str, float]
    costs: Mapping[str, float]
    seconds: float
    reason: str | None = None


def rank_sample(
    task: str | Task,
    space: str | SearchSpace | None = None,
    *,
    n: int = 100,
    proxies: Sequence[str] = PROXIES,
    seed: int = 0,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    hyper: Any = None,
    task_options: Mapping[str, Any] | None = None,
    device: str = "auto",
) -> list[ProxyRow]:
    """Draw ``n`` distinct architectures, compute ``proxies`` for each, rank by the first.

    What ``nasforge proxies`` prints.

    Args:
        task: A task spec (``"planetoid:Cora"``, ``"image:digits"``, ``"tabular:diabetes"``,
            see :func:`nasforge.tasks.task_forms`) or a task object.
        space: A registered space name or a space; default: the task's (``gnn``, ``nb201``
            or ``mlp``).
        n: Distinct architectures to draw.
        proxies: Proxy names; the first one ranks.
        seed: Seed of the sample, of the weights and of the batch.
        data_root: Folder holding ``<Name>/raw/`` for Planetoid tasks.
        download: Allow downloading missing Planetoid files.
        hyper: Model settings; default: the task's protocol (e.g. NAS-Bench-Graph's for
            Planetoid, a small network for images) when ``space`` is the task's kind of
            space, else the space's defaults.
        task_options: Options of the task spec (see :func:`~nasforge.tasks.resolve_task`).
        device: Where the proxies run (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Raises:
        ConfigError: For an unknown task, space, proxy or device, or a space that does not
            fit the task.
    """
    _check_count("n", n)
    names = check_proxies(proxies)
    setup = task_setup(
        task, space, data_root=data_root, download=download, seed=seed, options=task_options
    )
    task_obj, space_obj = setup.task, setup.space
    if hyper is None:
        hyper = setup.hyper
    evaluator = ProxyEvaluator(
        task=task_obj, space=space_obj, hyper=hyper, proxies=names, seed=seed, device=device
    )
    archs = space_obj.sample_distinct(n, np.random.default_rng(seed))
    results = [(arch, evaluator.evaluate(arch)) for arch in archs]
    first = f"proxy_{names[0]}"
    order = sorted(
        range(len(results)),
        key=lambda i: (not results[i][1].ok, -results[i][1].metrics.get(first, 0.0), i),
    )
    rows: list[ProxyRow] = []
    for rank, i in enumerate(order, start=1):
        arch, result = results[i]
        rows.append(
            ProxyRow(
                rank=rank,
                arch=arch,
                key=space_obj.canonical_key(arch),
                scores={name: result.metrics[f"proxy_{name}"] for name in names}
                if result.ok
                else {},
                costs=dict(result.costs),
                seconds=result.wall_time,
                reason=result.reason,
            )
        )
    return rows

"""The strategy contract: ask for architectures, tell their results."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from nasforge.architecture import Architecture
from nasforge.config import check_seed
from nasforge.errors import ConfigError
from nasforge.objective import Objective
from nasforge.registry import Registry
from nasforge.result import Result, Status
from nasforge.spaces.base import SearchSpace

__all__ = [
    "STRATEGIES",
    "Strategy",
    "black_box_strategies",
    "make_strategy",
    "register_strategy",
    "strategy_options",
]

_MAX_SAMPLE_TRIES = 200


class Strategy(ABC):
    """A black-box search strategy driven by ``ask`` / ``tell``.

    Contract:
        * Options are keyword-only and validated in the constructor; the constructor does no
          search work. ``seed`` fixes every random choice: the same seed and the same
          sequence of ``tell`` calls give the same proposals.
        * ``ask`` returns valid architectures of ``space``; an empty list means the strategy
          has nothing left to propose (e.g. the space is exhausted).
        * ``tell`` accepts results in any order, including results of architectures the
          strategy never proposed: that is how an experiment is resumed (its stored trials are
          told to a fresh strategy) and how duplicates are answered from the store.
        * Strategies see only validation metrics (``Result.visible()``); they never get test
          metrics. They are not thread-safe: one experiment loop drives one strategy.

    Hooks (no-ops by default): ``on_exhausted``; ``fidelity_for`` (multi-fidelity strategies
    say at which budget, e.g. how many epochs, a proposed architecture is to be evaluated).

    Multi-objective: strategies with ``multi_objective = True`` accept several objectives
    (a sequence for ``objective``); ``self.objectives`` holds them, ``self.objective`` the first,
    and ``last_scores`` the told result's oriented scores, one per objective, while
    ``_observe`` runs. The others refuse more than one objective.

    Args:
        space: The search space.
        objective: The metric and direction to optimise, or several (multi-objective
            strategies only).
        seed: Seed of the strategy's own ``numpy.random.Generator``.
    """

    name: ClassVar[str]
    multi_objective: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
    ) -> None:
        if seed is not None:
            check_seed(seed)
        self.space = space
        self.objectives = check_objectives(objective, type(self))
        self.objective = self.objectives[0]
        self.last_scores: tuple[float, ...] = ()
        self.seed = seed
        self._entropy = seed if seed is not None else int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        self.rng = np.random.default_rng(self._entropy)
        self.history: list[tuple[Architecture, float]] = []
        self._seen: set[str] = set()  # keys told or proposed
        self._in_flight: Counter[str] = Counter()  # proposed, not yet told
        self._unseen_pool: list[tuple[str, Architecture]] | None = None

    # -- the interface ------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Architecture]:
        """Propose up to ``n`` architectures to evaluate next."""
        if n < 1:
            raise ConfigError(f"ask(n) needs n >= 1, got {n}")
        out: list[Architecture] = []
        for _ in range(n):
            # The n-th proposal draws from stream n of the seed, n counting results told plus
            # proposals in flight: the same whether trials run one at a time or in parallel,
            # and a strategy rebuilt from its history continues instead of repeating itself.
            index = len(self.history) + self._in_flight.total()
            self.rng = np.random.default_rng([self._entropy, index])
            arch = self._propose()
            if arch is None:
                self.on_exhausted()
                break
            key = self.space.canonical_key(arch)
            self._seen.add(key)
            self._in_flight[key] += 1
            out.append(arch)
        return out

    def tell(self, arch: Architecture, result: Result) -> None:
        """Record the (validation-only) ``result`` of ``arch``."""
        key = self.space.canonical_key(arch)
        self._seen.add(key)
        if self._in_flight[key] > 0:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
        self.last_scores = self.objective_scores(result)
        score = self.last_scores[0]
        self.history.append((arch, score))
        self._observe(arch, key, score)

    # -- for subclasses ---------------------------------------------------------------------
    @abstractmethod
    def _propose(self) -> Architecture | None:
        """The next architecture, or ``None`` when there is nothing left to propose."""

    def _observe(self, arch: Architecture, key: str, score: float) -> None:  # noqa: B027
        """React to a told result; ``score`` is oriented so that larger is better."""

    def on_exhausted(self) -> None:  # noqa: B027
        """Hook: called when ``_propose`` has nothing more to offer."""

    def bind(  # noqa: B027
        self,
        store: str,
        experiment: str,
        task: str | None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        """Hook: called once before a search runs, with its store (path or URL), its
        experiment's name and its task (benchmark or task text, ``None`` if unknown); ``note``
        hears what the strategy wants said before the first proposal (e.g. the knowledge a
        transfer strategy found). Nothing by default."""

    @classmethod
    def option_defaults(cls, *, max_fidelity: int | None) -> dict[str, Any]:
        """Hook: option defaults that depend on what the search evaluates (none by default).

        Args:
            max_fidelity: The fidelity of a full evaluation (a training's epochs), or
                ``None`` for an evaluator without fidelities.
        """
        return {}

    def fidelity_for(self, arch: Architecture) -> int | None:
        """Hook: the fidelity (e.g. epochs) at which to evaluate ``arch``, just proposed.

        ``None`` (the default) leaves it to the experiment. The loop calls this once per
        proposal, right after ``ask``; it deduplicates on (canonical key, fidelity), so a
        multi-fidelity strategy may propose one architecture again at a higher fidelity.
        """
        return None

    def score(self, result: Result) -> float:
        """The objective (a metric or a cost) oriented so that larger is better.

        -inf for failed results and missing or non-finite values.
        """
        complete = result.status is Status.COMPLETE
        return self.objective.score_of(complete, result.metrics, result.costs)

    def objective_scores(self, result: Result) -> tuple[float, ...]:
        """Every objective oriented so that larger is better (-inf as in :meth:`score`)."""
        complete = result.status is Status.COMPLETE
        return tuple(o.score_of(complete, result.metrics, result.costs) for o in self.objectives)

    def sample_unseen(self) -> Architecture | None:
        """A random architecture not proposed or told before (``None`` when none is left).

        Samples from the space; when that keeps hitting seen keys (a finite space nearly
        exhausted), draws uniformly from the enumerated remainder instead, so random search is
        without replacement to the last architecture.
        """
        space = self.space
        if self._unseen_pool is None:
            for _ in range(_MAX_SAMPLE_TRIES):
                arch = space.sample(self.rng)
                if space.canonical_key(arch) not in self._seen:
                    return arch
            if space.size is None:
                return None
            self._unseen_pool = [(space.canonical_key(a), a) for a in space.enumerate()]
        pool = self._unseen_pool
        while pool:  # drop seen entries lazily: amortised O(1) per draw
            i = int(self.rng.integers(len(pool)))
            key, arch = pool[i]
            if key not in self._seen:
                return arch
            pool[i] = pool[-1]
            pool.pop()
        return None

    def is_seen(self, arch: Architecture) -> bool:
        """Whether ``arch``'s key was proposed or told already."""
        return self.space.canonical_key(arch) in self._seen

    def options(self) -> dict[str, Any]:
        """The strategy's options (stored with the experiment)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts}{', ' if opts else ''}seed={self.seed})"


def check_objectives(
    objective: Objective | Sequence[Objective], strategy: type[Strategy]
) -> tuple[Objective, ...]:
    """The objectives as a tuple; more than one only for a multi-objective strategy.

    Raises:
        ConfigError: For no objective, a repeated metric, or several objectives given to a
            single-objective strategy (the message lists the multi-objective ones).
    """
    objectives = (objective,) if isinstance(objective, Objective) else tuple(objective)
    if not objectives or not all(isinstance(o, Objective) for o in objectives):
        raise ConfigError(f"a strategy needs one or more Objective instances, got {objective!r}")
    metrics = [o.metric for o in objectives]
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"each metric may be one objective only, got {metrics}")
    if len(objectives) > 1 and not strategy.multi_objective:
        capable = [
            n for n in STRATEGIES.names() if getattr(STRATEGIES.get(n), "multi_objective", False)
        ]
        raise ConfigError(
            f"strategy {strategy.name!r} optimises one objective, got {len(objectives)} "
            f"({', '.join(map(str, objectives))}); multi-objective strategies: "
            f"{', '.join(capable)}"
        )
    return objectives


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Validate an integer option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


STRATEGIES: Registry[Strategy] = Registry("strategy")
"""The registered strategies, by name."""


def register_strategy(name: str, factory: Callable[..., Strategy], *, summary: str = "") -> None:
    """Make a strategy available by ``name`` (``--strategy NAME``).

    Args:
        name: The strategy's name.
        factory: A :class:`Strategy` subclass (or a callable with its signature):
            ``factory(space=..., objective=..., seed=..., **options)``; its keyword-only
            arguments are the strategy's ``-o KEY=VALUE`` options.
        summary: One line for ``nasforge list strategies``, citing the method's paper.

    Raises:
        ConfigError: If the name is taken.
    """
    STRATEGIES.register(name, factory, summary=summary)


def black_box_strategies() -> list[str]:
    """The registered strategies driven by ``ask`` and ``tell`` alone: every one but the
    one-shot strategies, which train a supernet on a task first (and so need a training
    evaluator, not a table look-up)."""
    return [n for n in STRATEGIES.names() if not getattr(STRATEGIES.get(n), "one_shot", False)]


_RESERVED = {"space", "objective", "seed"}


def strategy_options(name: str) -> dict[str, Any]:
    """The options the registered strategy ``name`` accepts, with their defaults: the
    keyword-only parameters of its constructor and, where that passes ``**options`` on, of
    its parents' constructors.

    Raises:
        UnknownNameError: For an unknown strategy.
    """
    factory = STRATEGIES.get(name)
    inits = (
        [k.__dict__["__init__"] for k in factory.__mro__ if "__init__" in k.__dict__]
        if isinstance(factory, type)
        else [factory]
    )
    out: dict[str, Any] = {}
    for init in inits:
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _RESERVED:
                out.setdefault(p.name, p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return out


def make_strategy(
    name: str,
    space: SearchSpace,
    *,
    objective: Objective | Sequence[Objective],
    seed: int | None,
    options: Mapping[str, Any] | None = None,
) -> Strategy:
    """Build a registered strategy, checking its options by name first.

    Raises:
        UnknownNameError: For an unknown strategy.
        ConfigError: For an option the strategy does not have, or a value it refuses.
    """
    accepted = strategy_options(name)
    for key in options or {}:
        if key not in accepted:
            listed = ", ".join(f"{k} (default {v!r})" for k, v in accepted.items()) or "none"
            raise ConfigError(f"strategy {name!r} has no option {key!r}; its options: {listed}")
    return STRATEGIES.create(name, space=space, objective=objective, seed=seed, **(options or {}))

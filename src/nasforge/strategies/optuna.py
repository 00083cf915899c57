"""Optuna samplers as nasforge strategies (Akiba et al., "Optuna: A Next-generation
Hyperparameter Optimization Framework", KDD 2019).

Optuna is an optional dependency (the ``optuna`` extra): this module imports it only when a
strategy is built, so ``nasforge`` itself imports without it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int

if TYPE_CHECKING:
    import optuna

__all__ = [
    "SAMPLERS",
    "OptunaGP",
    "OptunaNSGA2",
    "OptunaRandom",
    "OptunaStrategy",
    "OptunaTPE",
]

SAMPLERS: dict[str, dict[str, Any]] = {
    "tpe": {"n_startup_trials": 10, "multivariate": True},
    "gp": {"n_startup_trials": 10},
    "nsga2": {"population_size": 20},
    "random": {},
}
"""The samplers offered, each with its options and their defaults."""

_CMAES_REFUSAL = (
    "sampler 'cmaes' does not apply to nasforge spaces: CMA-ES (Optuna's CmaEsSampler) samples "
    "numerical parameters only, and a space reaches Optuna as categorical choices, so every "
    "parameter would fall back to independent random sampling (a slower random search under "
    "another name); accepted samplers: {accepted}"
)

_MAX_TRIES = 5
"""Optuna samples per proposal before falling back to ``sample_unseen``.

On NAS-Bench-Graph most proposals succeed at the first sample; once a sampler has converged
(TPE after a few hundred results on cora) most never do, and each try costs a sampler call.
"""

_SEED_BOUND = 2**31 - 1


def _require_optuna() -> None:
    """Raise a ConfigError saying how to install optuna if it is missing."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError(
            "Optuna strategies need the optuna package: pip install 'nasforge[optuna]'"
        ) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's INFO messages (study created, trial finished) for the calls inside.

    Warnings still show; the user's verbosity is restored on exit, so this changes nothing
    outside the strategy's own calls into Optuna.
    """
    import optuna

    level = optuna.logging.get_verbosity()
    if level >= optuna.logging.WARNING:
        yield
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """Limit native thread pools (OpenMP, BLAS) to one thread for the calls inside.

    Optuna's GPSampler advises it (``OMP_NUM_THREADS=1``): its many small torch and BLAS
    operations gain nothing from threads, and on a busy machine competing pools made each
    proposal about ten times slower. The previous limits are restored on exit.
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn (core)
        yield
        return
    with threadpool_limits(limits=1):
        yield


# -- the strategy ------------------------------------------------------------------------------
class OptunaStrategy(Strategy):
    """Any of Optuna's samplers proposing architectures through Optuna's ask/tell interface.

    The space reaches Optuna as independent categorical parameters (``space.choices()``), and
    a sample becomes an architecture through ``space.from_choices``. The study lives in memory
    (nasforge's store is the durable record) and holds one trial per told result, in the order
    told, plus a running trial per proposal in flight; its direction is ``maximize`` on the
    strategy's score (larger is better whatever the objective's direction), failed results are
    FAIL trials. A result the strategy did not propose (a resumed experiment's history, results
    from another source) enters the study as its own proposals do: a running trial, with the
    parameters ``space.to_choices`` recovers from the architecture, told its score at once.

    A proposal that ``from_choices`` refuses (e.g. the all-skip gnn) or whose canonical key was
    proposed or told before is not returned: it stays a running trial while the sampler tries
    again, so samplers that account for running trials (TPE's constant liar, GP's q-batch
    acquisition) steer away from it, and is closed as FAIL once the proposal is made. Samplers
    ignore FAIL trials, so these retries leave no trace in what they learn from. After
    ``_MAX_TRIES`` such samples the proposal is a random unseen architecture (a running trial
    of the study like any other proposal); ``ask`` returns nothing once the space is exhausted.

    Determinism: every proposal uses a fresh sampler seeded from the strategy's per-proposal
    ``rng`` (seed and index of the proposal, see :meth:`Strategy.ask`), so what a sampler
    proposes depends only on the seed and the study, and the study only on the results told.
    A strategy rebuilt from its history therefore proposes what the original would have when
    trials run one at a time (the resumed study holds the same trials in the same order). With
    trials in parallel the sampler sees other running trials, and results told out of order
    change the study's order, so the sequence is deterministic for a seed and an order of
    events, not across degrees of parallelism.

    Samplers (``sampler``):
        * ``"tpe"`` — Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for
          Hyper-Parameter Optimization", NeurIPS 2011), multivariate by default (Falkner et
          al., "BOHB: Robust and Efficient Hyperparameter Optimization at Scale", ICML 2018):
          the genes of an architecture interact (an op's worth depends on the node it reads),
          which the independent TPE cannot model, and Optuna reports the multivariate TPE
          better on single-objective problems. Constant liar is on (running trials count as
          bad), so parallel proposals spread out.
        * ``"gp"`` — Gaussian-process Bayesian optimisation with log expected improvement
          (Ament et al., "Unexpected Improvements to Expected Improvement for Bayesian
          Optimization", NeurIPS 2023); Optuna's GPSampler handles categorical parameters
          (needs torch and scipy, core dependencies of nasforge). Each proposal fits a GP and
          searches its acquisition function: about 0.3 s at 50 results and 3 s at 600 on the
          gnn space (2 busy cores), so it suits expensive evaluations (training), not tables.
        * ``"nsga2"`` — NSGA-II (Deb et al., "A Fast and Elitist Multiobjective Genetic
          Algorithm: NSGA-II", IEEE TEC 2002); with one objective a generational genetic
          algorithm with uniform crossover. ``population_size`` defaults to 20 rather than
          Optuna's 50: at NAS budgets of ~100 architectures, 50 would spend half the budget
          on the random first generation.
        * ``"random"`` — Optuna's RandomSampler (without repeats, as every proposal here).
        * ``"cmaes"`` is refused: CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial",
          2016) samples numerical parameters only, so on categorical choices Optuna would run
          it as independent random sampling.

    Args:
        space: The search space; it must provide ``to_choices``.
        objective: The metric and direction to optimise.
        seed: Seed of the proposals.
        sampler: One of ``tpe``, ``gp``, ``nsga2``, ``random``.
        n_startup_trials: Results before the model is used (``tpe``, ``gp``; default 10).
        multivariate: Joint instead of per-parameter densities (``tpe``; default True).
        population_size: Individuals per generation (``nsga2``; default 20).

    Raises:
        ConfigError: For an unknown sampler, an option the sampler does not take, a value
            outside an option's rule, a space without ``to_choices``, or when optuna is not
            installed.
    """

    name = "optuna"
    multi_objective = True
    _fixed_sampler: ClassVar[str | None] = None

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
        sampler: str = "tpe",
        n_startup_trials: int | None = None,
        multivariate: bool | None = None,
        population_size: int | None = None,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.sampler = _check_sampler(sampler)
        given = {
            "n_startup_trials": n_startup_trials,
            "multivariate": multivariate,
            "population_size": population_size,
        }
        self.sampler_options = _check_options(sampler, given)
        if type(space).to_choices is SearchSpace.to_choices:
            raise ConfigError(
                f"Optuna strategies read architectures back as choices (to learn from results "
                f"they did not propose, e.g. when resuming), and space {space.name!r} "
                f"({type(space).__name__}) does not provide SearchSpace.to_choices"
            )
        _require_optuna()
        import optuna

        self._distributions: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.CategoricalDistribution(tuple(values))
            for name, values in space.choices().items()
        }
        with _quiet():
            self._study: optuna.Study = optuna.create_study(
                directions=["maximize"] * len(self.objectives),
                sampler=self._make_sampler(self._entropy % _SEED_BOUND),
            )
        self._open: dict[str, int] = {}  # canonical key -> number of its running trial

    # -- proposals ------------------------------------------------------------------------------
    def _propose(self) -> Architecture | None:
        import optuna

        study = self._study
        study.sampler = self._make_sampler(int(self.rng.integers(_SEED_BOUND)))
        retried: list[int] = []
        with _quiet(), _single_threaded() if self.sampler == "gp" else contextlib.nullcontext():
            try:
                for _ in range(_MAX_TRIES):
                    trial = study.ask(self._distributions)
                    arch = self._fresh(trial.params)
                    if arch is not None:
                        self._open[self.space.canonical_key(arch)] = trial.number
                        return arch
                    retried.append(trial.number)
            finally:  # close the retries: FAIL trials are invisible to the samplers
                for number in retried:
                    study.tell(number, state=optuna.trial.TrialState.FAIL)
            arch = self.sample_unseen()
            if arch is not None:  # a proposal like the others: a running trial of the study
                self._open[self.space.canonical_key(arch)] = self._add_running(arch)
            return arch

    def _fresh(self, params: Mapping[str, Any]) -> Architecture | None:
        """The architecture ``params`` describe, unless it is invalid or seen already."""
        try:
            arch = self.space.from_choices(params)
        except InvalidArchitectureError:
            return None
        return None if self.is_seen(arch) else arch

    def _make_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        from optuna import samplers

        opts = self.sampler_options
        if self.sampler == "tpe":
            return samplers.TPESampler(
                seed=seed,
                n_startup_trials=opts["n_startup_trials"],
                multivariate=opts["multivariate"],
                constant_liar=True,
            )
        if self.sampler == "gp":
            return samplers.GPSampler(seed=seed, n_startup_trials=opts["n_startup_trials"])
        if self.sampler == "nsga2":
            return samplers.NSGAIISampler(seed=seed, population_size=opts["population_size"])
        return samplers.RandomSampler(seed=seed)

    # -- results --------------------------------------------------------------------------------
    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        import optuna

        fail = optuna.trial.TrialState.FAIL
        scores = self.last_scores
        values = list(scores) if all(math.isfinite(s) for s in scores) else None
        with _quiet():
            number = self._open.pop(key, None)
            if number is None:  # a result the strategy did not propose
                number = self._add_running(arch)
            if values is None:
                self._study.tell(number, state=fail)
            else:
                self._study.tell(number, values[0] if len(values) == 1 else values)

    def _add_running(self, arch: Architecture) -> int:
        """Add ``arch`` to the study as a running trial, as if the sampler had proposed it."""
        import optuna

        study = self._study
        study.add_trial(
            optuna.trial.create_trial(
                params=self.space.to_choices(arch),
                distributions=self._distributions,
                state=optuna.trial.TrialState.RUNNING,
            )
        )
        added = study.get_trials(deepcopy=False)[-1]
        sampler = study.sampler
        if isinstance(sampler, optuna.samplers.BaseGASampler):
            # Join the current generation and select (and cache) its parents, as asking would:
            # a resumed search then orders parents as the uninterrupted one does.
            sampler.get_parent_population(study, sampler.get_trial_generation(study, added))
        return int(added.number)

    def options(self) -> dict[str, Any]:
        if self._fixed_sampler is not None:
            return dict(self.sampler_options)
        return {"sampler": self.sampler, **self.sampler_options}


def _check_sampler(sampler: object) -> str:
    accepted = ", ".join(SAMPLERS)
    if sampler == "cmaes":
        raise ConfigError(_CMAES_REFUSAL.format(accepted=accepted))
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ConfigError(f"sampler must be one of {accepted}; got {sampler!r}")
    return sampler


def _check_options(sampler: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The sampler's options: ``given`` values (``None`` = default) checked against their rule."""
    defaults = SAMPLERS[sampler]
    for option, value in given.items():
        if value is not None and option not in defaults:
            takes = ", ".join(defaults) or "no options"
            raise ConfigError(
                f"option {option!r} does not apply to sampler {sampler!r} (it takes: {takes}); "
                f"samplers that take it: "
                f"{', '.join(s for s, opts in SAMPLERS.items() if option in opts)}"
            )
    out = {
        option: default if given[option] is None else given[option]
        for option, default in defaults.items()
    }
    if "n_startup_trials" in out:
        check_positive_int("n_startup_trials", out["n_startup_trials"])
    if "population_size" in out:
        check_positive_int("population_size", out["population_size"], 2)
    if "multivariate" in out and not isinstance(out["multivariate"], bool):
        raise ConfigError(f"multivariate must be True or False, got {out['multivariate']!r}")
    return out


# -- one class per sampler, for the strategy registry (their signatures list their options) --
class OptunaTPE(OptunaStrategy):
    """:class:`OptunaStrategy` with Optuna's TPESampler (multivariate, constant liar).

    Args:
        n_startup_trials: Random results before the Parzen estimators are used.
        multivariate: Joint densities over all parameters instead of one per parameter.
    """

    name = "optuna-tpe"
    _fixed_sampler = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
        n_startup_trials: int = 10,
        multivariate: bool = True,
    ) -> None:
        super().__init__(
            space,
            objective=objective,
            seed=seed,
            sampler="tpe",
            n_startup_trials=n_startup_trials,
            multivariate=multivariate,
        )


class OptunaGP(OptunaStrategy):
    """:class:`OptunaStrategy` with Optuna's GPSampler (Gaussian process, log EI).

    Args:
        n_startup_trials: Random results before the Gaussian process is used.
    """

    name = "optuna-gp"
    _fixed_sampler = "gp"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
        n_startup_trials: int = 10,
    ) -> None:
        super().__init__(
            space, objective=objective, seed=seed, sampler="gp", n_startup_trials=n_startup_trials
        )


class OptunaNSGA2(OptunaStrategy):
    """:class:`OptunaStrategy` with Optuna's NSGAIISampler (a genetic algorithm).

    Args:
        population_size: Individuals per generation.
    """

    name = "optuna-nsga2"
    _fixed_sampler = "nsga2"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
        population_size: int = 20,
    ) -> None:
        super().__init__(
            space,
            objective=objective,
            seed=seed,
            sampler="nsga2",
            population_size=population_size,
        )


class OptunaRandom(OptunaStrategy):
    """:class:`OptunaStrategy` with Optuna's RandomSampler (a peer baseline)."""

    name = "optuna-random"
    _fixed_sampler = "random"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed, sampler="random")

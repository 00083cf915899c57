"""Weight-sharing (one-shot) strategies: DARTS, PC-DARTS, GDAS, SPOS, ENAS and ProxylessNAS.

Each trains the space's supernet (:meth:`~nasforge.spaces.base.SearchSpace.supernet`) on the
task's training split, with architecture decisions learned or scored on its validation
split, in a *supernet phase* that the experiment runs before its loop
(:mod:`nasforge.oneshot.phase`); then it proposes the derived architecture(s), which the
task's evaluator trains from scratch as ordinary trials. The phase's epochs, architecture
weights and validation curve are stored with the experiment, and a checkpoint of the supernet
and optimisers is written every few epochs beside the store, so that a search killed in the
phase resumes from its last checkpoint.

torch is imported when a phase runs, not with this module (the registry imports every
strategy at start-up; table look-ups must not pay for torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int
from nasforge.strategies.reinforce import _check_real

__all__ = [
    "SELECTIONS",
    "Darts",
    "Enas",
    "Gdas",
    "OneShotStrategy",
    "PcDarts",
    "ProxylessNas",
    "Spos",
]

SELECTIONS = ("argmax", "perturbation")
"""How DARTS derives its architecture from the trained supernet."""


def _arch_options(arch_lr: float, arch_weight_decay: float) -> tuple[float, float]:
    """The checked Adam settings of architecture parameters (DARTS, GDAS)."""
    return (
        _check_real("arch_lr", arch_lr, "a positive number", lambda v: v > 0),
        _check_real("arch_weight_decay", arch_weight_decay, "a number >= 0", lambda v: v >= 0),
    )


class OneShotStrategy(Strategy):
    """Base of the weight-sharing strategies (see the module docstring).

    Options (``-o KEY=VALUE``):
        epochs: Supernet epochs (default: the task's training epochs, so that the phase costs
            about one training of the supernet).
        top_k: Architectures derived and trained from scratch (the k most probable under
            the learned weights, or the k best subnets found).
        checkpoint_every: Epochs between checkpoints of the supernet phase.
        phase_share: Share of a wall-time budget the phase may use; the rest is left to the
            final trainings.
    """

    one_shot: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective | Sequence[Objective],
        seed: int | None = None,
        epochs: int | None = None,
        top_k: int = 1,
        checkpoint_every: int = 5,
        phase_share: float = 0.5,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.epochs = None if epochs is None else check_positive_int("epochs", epochs)
        self.top_k = check_positive_int("top_k", top_k)
        self.checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
        self.phase_share = _check_real(
            "phase_share", phase_share, "a number in (0, 1]", lambda v: 0 < v <= 1
        )
        if not space.has_supernet:
            space.supernet(None)  # raises, naming the spaces that have one
        self.evaluator: Any = None
        self.derived: list[Architecture] | None = None
        self.summary: dict[str, Any] = {}

    # -- set-up ------------------------------------------------------------------------------
    def attach(self, evaluator: Any) -> None:
        """Check that ``evaluator`` trains on a task this strategy can search, and keep it.

        Raises:
            ConfigError: For a table look-up (nothing to train a supernet on), a task that is
                not classification, or an objective other than the task's validation metric.
        """
        task = getattr(evaluator, "task", None)
        if task is None or not hasattr(evaluator, "train"):
            raise ConfigError(
                f"strategy {self.name!r} trains a supernet on the task's data, so it needs a "
                "training task (--task), not a table look-up (--benchmark); table look-ups "
                "take the black-box strategies (nasforge list strategies)"
            )
        if task.kind != "classification":
            raise ConfigError(
                f"strategy {self.name!r} searches classification tasks; {task.name!r} is "
                f"{task.kind}"
            )
        wanted = task.objective
        if self.objective != wanted:
            raise ConfigError(
                f"strategy {self.name!r} optimises the task's validation metric "
                f"({wanted}); got objective {self.objective}"
            )
        # the supernet this search will train: refuses settings it cannot be built with
        evaluator.space.supernet(task, evaluator.hyper, **self.supernet_options())
        self.evaluator = evaluator

    # -- the phase ---------------------------------------------------------------------------
    def take_phase(self, summary: dict[str, Any]) -> None:
        """Take the result of the supernet phase (:func:`nasforge.oneshot.phase.run_phase`,
        which the experiment runs before asking): the derived architectures to propose."""
        self.summary = summary
        self.derived = [Architecture.from_dict(a) for a in summary["derived"]]

    def _propose(self) -> Architecture | None:
        if self.derived is None:
            raise ConfigError(
                f"strategy {self.name!r} proposes after its supernet phase; run it through an "
                "Experiment (nasforge search), which runs the phase first"
            )
        while self.derived:
            arch = self.derived.pop(0)
            if not self.is_seen(arch):
                return arch
        return None

    def options(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "top_k": self.top_k,
            "checkpoint_every": self.checkpoint_every,
            "phase_share": self.phase_share,
            **self.method_options(),
        }

    def method_options(self) -> dict[str, Any]:
        """The method's own options (stored with the experiment)."""
        return {}

    def supernet_options(self) -> dict[str, Any]:
        """Keyword arguments of the space's ``supernet()`` for this method."""
        return {}


class Darts(OneShotStrategy):
    """DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019).

    A softmax over every decision's options mixes them; the weights are trained on the
    training split and the architecture parameters on the validation split, alternately
    (first order by default; ``order=2`` is the paper's finite-difference second-order
    approximation of the unrolled gradient). The derived architecture takes each decision's
    highest weight, or, with ``selection="perturbation"`` (DARTS-PT: Wang et al., "Rethinking
    Architecture Selection in Differentiable NAS", ICLR 2021), each decision in turn (in a
    random order) the option whose removal from the mixture lowers the supernet's validation
    accuracy most, the supernet being tuned ``tune_epochs`` epochs after each choice.

    Options: ``arch_lr`` and ``arch_weight_decay`` (Adam, betas 0.5/0.999, as the paper),
    ``order`` (1 or 2), ``selection`` (``argmax`` or ``perturbation``), ``tune_epochs``.
    """

    name = "darts"

    def __init__(
        self,
        space: SearchSpace,
        *,
        order: int = 1,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        selection: str = "argmax",
        tune_epochs: int = 5,
        **common: Any,
    ) -> None:
        super().__init__(space, **common)
        if isinstance(order, bool) or order not in (1, 2):
            raise ConfigError(
                f"order must be 1 (first-order DARTS) or 2 (the finite-difference "
                f"second-order approximation), got {order!r}"
            )
        self.order = order
        if selection not in SELECTIONS:
            raise ConfigError(
                f"selection must be one of {', '.join(SELECTIONS)} (the highest weight, or "
                f"DARTS-PT's perturbation), got {selection!r}"
            )
        self.selection = selection
        self.tune_epochs = check_positive_int("tune_epochs", tune_epochs, 0)
        self.arch_lr, self.arch_weight_decay = _arch_options(arch_lr, arch_weight_decay)

    def method_options(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "arch_lr": self.arch_lr,
            "arch_weight_decay": self.arch_weight_decay,
            "selection": self.selection,
            "tune_epochs": self.tune_epochs,
        }


class PcDarts(Darts):
    """PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient
    Architecture Search", ICLR 2020): DARTS on a partial-channel supernet.

    Each mixed op computes ``1/partial`` of its channels and passes the rest by (the space's
    ``supernet(partial=...)``), which cuts the supernet's memory and time about ``partial``
    times; edge normalisation weighs the edges that a node sums with their own softmax
    parameters, learned with the op weights (in spaces whose nodes read one chosen input,
    that choice's weights already are this normalisation). The derived architecture takes
    each decision's highest op weight, or DARTS-PT's perturbation choice
    (``selection=perturbation``).

    Options: those of ``darts``, and ``partial`` (channels' share 1/partial computed; it
    must divide the widths of the supernet's layers).
    """

    name = "pc-darts"

    def __init__(self, space: SearchSpace, *, partial: int = 4, **options: Any) -> None:
        super().__init__(space, **options)
        self.partial = check_positive_int("partial", partial)

    def method_options(self) -> dict[str, Any]:
        return {**super().method_options(), "partial": self.partial}

    def supernet_options(self) -> dict[str, Any]:
        return {"partial": self.partial}


class Gdas(OneShotStrategy):
    """GDAS (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours",
    CVPR 2019).

    Every step samples one option per decision with the Gumbel-softmax at temperature
    ``tau`` (decaying linearly from ``tau_max`` to ``tau_min`` over the epochs) and computes
    only that path; its one-hot weights pass the gradient to the architecture parameters
    straight through. Weights and architecture parameters are updated alternately on the
    training and validation splits; the derived architecture takes each decision's highest
    parameter.

    Options: ``tau_max``, ``tau_min``, ``arch_lr``, ``arch_weight_decay``.
    """

    name = "gdas"

    def __init__(
        self,
        space: SearchSpace,
        *,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        **common: Any,
    ) -> None:
        super().__init__(space, **common)
        self.tau_max = _check_real("tau_max", tau_max, "a positive number", lambda v: v > 0)
        self.tau_min = _check_real(
            "tau_min",
            tau_min,
            f"a positive number <= tau_max ({tau_max})",
            lambda v: 0 < v <= self.tau_max,
        )
        self.arch_lr, self.arch_weight_decay = _arch_options(arch_lr, arch_weight_decay)

    def method_options(self) -> dict[str, Any]:
        return {
            "tau_max": self.tau_max,
            "tau_min": self.tau_min,
            "arch_lr": self.arch_lr,
            "arch_weight_decay": self.arch_weight_decay,
        }


class Spos(OneShotStrategy):
    """SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform
    Sampling", ECCV 2020).

    The supernet is trained one uniformly sampled valid path per step; then an evolutionary
    search (``population`` subnets, ``generations`` rounds; the best ``parents`` breed by
    mutation and crossover) scores subnets by their validation metric on the shared weights,
    after recalibrating each subnet's BatchNorm statistics on ``calibration_batches``
    training batches. The ``top_k`` best subnets are proposed.
    """

    name = "spos"

    def __init__(
        self,
        space: SearchSpace,
        *,
        population: int = 20,
        generations: int = 10,
        parents: int = 5,
        mutation_prob: float = 0.1,
        calibration_batches: int = 4,
        **common: Any,
    ) -> None:
        super().__init__(space, **common)
        self.population = check_positive_int("population", population, 2)
        self.generations = check_positive_int("generations", generations, 0)
        self.parents = check_positive_int("parents", parents, 1)
        if self.parents > self.population:
            raise ConfigError(f"parents must be at most population ({population}), got {parents}")
        self.mutation_prob = _check_real(
            "mutation_prob", mutation_prob, "a number in (0, 1]", lambda v: 0 < v <= 1
        )
        self.calibration_batches = check_positive_int("calibration_batches", calibration_batches)

    def method_options(self) -> dict[str, Any]:
        return {
            "population": self.population,
            "generations": self.generations,
            "parents": self.parents,
            "mutation_prob": self.mutation_prob,
            "calibration_batches": self.calibration_batches,
        }


class Enas(OneShotStrategy):
    """ENAS (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML
    2018), the controller of GraphNAS and Auto-GNN on a shared supernet.

    Each training step trains the shared weights on one path sampled from the controller (the
    LSTM policy of ``reinforce``); after each epoch the controller takes
    ``controller_steps`` REINFORCE steps, each rewarded with a sampled path's validation
    accuracy on the shared weights (minus a moving-average baseline, plus an entropy bonus).
    At the end ``derive_samples`` paths drawn from the controller are scored on the whole
    validation split (BatchNorm recalibrated) and the ``top_k`` best are proposed.

    Options: ``controller_lr``, ``controller_steps``, ``hidden_size``, ``baseline_decay``,
    ``entropy_weight``, ``temperature``, ``tanh_constant``, ``derive_samples``,
    ``calibration_batches``.
    """

    name = "enas"

    def __init__(
        self,
        space: SearchSpace,
        *,
        controller_lr: float = 0.005,
        controller_steps: int = 10,
        hidden_size: int = 64,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-4,
        temperature: float = 5.0,
        tanh_constant: float = 2.5,
        derive_samples: int = 50,
        calibration_batches: int = 4,
        **common: Any,
    ) -> None:
        super().__init__(space, **common)
        self.controller_lr = _check_real(
            "controller_lr", controller_lr, "a positive number", lambda v: v > 0
        )
        self.controller_steps = check_positive_int("controller_steps", controller_steps)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.baseline_decay = _check_real(
            "baseline_decay", baseline_decay, "a number in [0, 1)", lambda v: 0 <= v < 1
        )
        self.entropy_weight = _check_real(
            "entropy_weight", entropy_weight, "a number >= 0", lambda v: v >= 0
        )
        self.temperature = _check_real(
            "temperature", temperature, "a positive number", lambda v: v > 0
        )
        self.tanh_constant = _check_real(
            "tanh_constant", tanh_constant, "a positive number", lambda v: v > 0
        )
        self.derive_samples = check_positive_int("derive_samples", derive_samples)
        self.calibration_batches = check_positive_int("calibration_batches", calibration_batches)

    def method_options(self) -> dict[str, Any]:
        return {
            "controller_lr": self.controller_lr,
            "controller_steps": self.controller_steps,
            "hidden_size": self.hidden_size,
            "baseline_decay": self.baseline_decay,
            "entropy_weight": self.entropy_weight,
            "temperature": self.temperature,
            "tanh_constant": self.tanh_constant,
            "derive_samples": self.derive_samples,
            "calibration_batches": self.calibration_batches,
        }


class ProxylessNas(OneShotStrategy):
    """ProxylessNAS (Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on
    Target Task and Hardware", ICLR 2019): binarised paths, with a latency loss.

    Each weight step trains one path sampled from the architecture distribution (a softmax
    per decision). Each architecture step samples two options per decision, opens one of
    them (its gate 1, the other's 0: the other is computed but adds nothing) and updates the
    two options' parameters with the BinaryConnect gradient of the validation loss plus
    ``latency_weight`` times the expected latency relative to ``latency_ref_ms``. The
    expected latency comes from the space's per-operation latency table, measured once on
    this machine (what ``latency_pred_ms`` reports): where the supernet gives the expected
    count of each table entry under the distribution (``Supernet.expected_terms``; ``gnn``,
    whose ops cost more on the raw features than on a hidden representation, so that an op's
    latency depends on the input and skip decisions before it), the expectation itself;
    elsewhere each option's latency is the table's prediction for the current most probable
    architecture with that option swapped in, refreshed every epoch (exact where the latency
    is a sum over decisions, as in ``nb201``'s cells). The derived architecture takes each
    decision's highest parameter.

    Options: ``latency_weight`` (0: accuracy only), ``latency_ref_ms`` (default: the
    expected latency under the initial, uniform distribution), ``arch_lr``,
    ``arch_weight_decay``.
    """

    name = "proxylessnas"

    def __init__(
        self,
        space: SearchSpace,
        *,
        latency_weight: float = 0.2,
        latency_ref_ms: float | None = None,
        arch_lr: float = 1e-3,
        arch_weight_decay: float = 0.0,
        **common: Any,
    ) -> None:
        super().__init__(space, **common)
        if not space.predicts_latency:
            raise ConfigError(
                f"strategy {self.name!r} needs a space with a per-operation latency table; "
                f"space {space.name!r} has none"
            )
        self.latency_weight = _check_real(
            "latency_weight", latency_weight, "a number >= 0", lambda v: v >= 0
        )
        self.latency_ref_ms = (
            None
            if latency_ref_ms is None
            else _check_real(
                "latency_ref_ms", latency_ref_ms, "a positive number of ms", lambda v: v > 0
            )
        )
        self.arch_lr, self.arch_weight_decay = _arch_options(arch_lr, arch_weight_decay)

    def method_options(self) -> dict[str, Any]:
        return {
            "latency_weight": self.latency_weight,
            "latency_ref_ms": self.latency_ref_ms,
            "arch_lr": self.arch_lr,
            "arch_weight_decay": self.arch_weight_decay,
        }

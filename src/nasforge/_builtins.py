"""The registries and what nasforge ships in them, registered explicitly."""

from __future__ import annotations

from typing import Any

from nasforge.benchmarks.nas_bench_201 import DATASETS as NB201_DATASETS
from nasforge.benchmarks.nas_bench_graph import DATASETS
from nasforge.evaluators.base import Evaluator
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.evaluators.nb201_table import NasBench201Evaluator
from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.gnn import GNN_OPS, PROTEINS_OPS, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Space
from nasforge.strategies.bananas import Bananas
from nasforge.strategies.base import Strategy
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.local import LocalSearch
from nasforge.strategies.multifidelity import Asha, Hyperband, SuccessiveHalving
from nasforge.strategies.optuna import OptunaGP, OptunaNSGA2, OptunaRandom, OptunaTPE
from nasforge.strategies.random import RandomSearch
from nasforge.strategies.reinforce import Reinforce

__all__ = ["BENCHMARKS", "SPACES", "STRATEGIES"]

SPACES: Registry[SearchSpace] = Registry("space")
STRATEGIES: Registry[Strategy] = Registry("strategy")
BENCHMARKS: Registry[Evaluator] = Registry("benchmark")

SPACES.register(
    "gnn",
    lambda: GnnSpace(name="gnn", ops=GNN_OPS),
    summary="NAS-Bench-Graph macro space: 4 nodes, 9 ops (26,206 distinct architectures)",
)
SPACES.register(
    "gnn-proteins",
    lambda: GnnSpace(name="gnn-proteins", ops=PROTEINS_OPS),
    summary="the gnn space on the 5 ops of the ogbn-proteins table (2,021 architectures)",
)
SPACES.register(
    "nb201",
    lambda: Nb201Space(name="nb201"),
    summary="NAS-Bench-201 cell: 6 edges x 5 ops, 15,625 cells (5,044 distinct functions)",
)
SPACES.register(
    "mlp",
    lambda: MlpSpace(name="mlp"),
    summary="MLPs for tabular data: depth, widths, activation, dropout, norm "
    "(58,500 distinct architectures)",
)

STRATEGIES.register("random", RandomSearch, summary="random search without replacement")
STRATEGIES.register(
    "evolution",
    RegularizedEvolution,
    summary="regularized (aging) evolution, Real et al. 2019",
)
STRATEGIES.register(
    "local",
    LocalSearch,
    summary="local search with restarts, White et al. 2021",
)
STRATEGIES.register(
    "bananas",
    Bananas,
    summary="BANANAS: predictor-guided search (MLP + GBT ensemble, Thompson sampling), "
    "White et al. 2021",
)
STRATEGIES.register(
    "reinforce",
    Reinforce,
    summary="LSTM controller trained with REINFORCE, Zoph & Le 2017 / GraphNAS, Gao et al. 2020",
)
STRATEGIES.register(
    "optuna-tpe",
    OptunaTPE,
    summary="Optuna's multivariate TPE sampler, Bergstra et al. 2011 (needs nasforge[optuna])",
)
STRATEGIES.register(
    "optuna-gp",
    OptunaGP,
    summary="Optuna's Gaussian-process sampler with log EI, Ament et al. 2023; seconds per "
    "proposal, for training searches (needs nasforge[optuna])",
)
STRATEGIES.register(
    "optuna-nsga2",
    OptunaNSGA2,
    summary="Optuna's NSGA-II genetic algorithm, Deb et al. 2002 (needs nasforge[optuna])",
)
STRATEGIES.register(
    "optuna-random",
    OptunaRandom,
    summary="Optuna's random sampler, without repeats (needs nasforge[optuna])",
)
STRATEGIES.register(
    "successive-halving",
    SuccessiveHalving,
    summary="successive halving over epochs, Jamieson & Talwalkar 2016 (multi-fidelity)",
)
STRATEGIES.register(
    "hyperband",
    Hyperband,
    summary="Hyperband over epochs, Li et al. 2018 (multi-fidelity)",
)
STRATEGIES.register(
    "asha",
    Asha,
    summary="asynchronous successive halving over epochs, Li et al. 2020 (multi-fidelity)",
)


def _nbg(dataset: str) -> NasBenchGraphEvaluator:
    return NasBenchGraphEvaluator(dataset=dataset)


for _dataset in DATASETS:
    BENCHMARKS.register(
        f"nas-bench-graph:{_dataset}",
        lambda _d=_dataset: _nbg(_d),
        summary=f"NAS-Bench-Graph table of {_dataset} "
        f"(space {'gnn-proteins' if _dataset == 'proteins' else 'gnn'})",
    )


def _nb201(dataset: str, **options: Any) -> NasBench201Evaluator:
    return NasBench201Evaluator(dataset=dataset, **options)


for _dataset in NB201_DATASETS:
    BENCHMARKS.register(
        f"nas-bench-201:{_dataset}",
        lambda _d=_dataset, **options: _nb201(_d, **options),
        summary=f"NAS-Bench-201 / NATS-Bench topology results on {_dataset} (space nb201; "
        "the file you downloaded: --table PATH or $NASFORGE_NB201_PATH)",
    )

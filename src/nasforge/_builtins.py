"""What nasforge ships, registered explicitly: spaces, strategies, benchmarks, task kinds and
executors. :mod:`nasforge` imports this module first, so that the registries are full
whichever nasforge module a program imports; plugins add theirs when a registry is first read.
"""

from __future__ import annotations

from functools import partial

from nasforge.benchmarks.nas_bench_201 import DATASETS as NB201_DATASETS
from nasforge.benchmarks.nas_bench_graph import DATASETS
from nasforge.evaluators.base import register_benchmark
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.evaluators.nb201_table import NasBench201Evaluator
from nasforge.execution.base import InlineExecutor, register_executor
from nasforge.execution.process import ProcessExecutor
from nasforge.execution.ray import RayExecutor
from nasforge.spaces.base import register_space
from nasforge.spaces.gnn import GNN_OPS, PROTEINS_OPS, GnnSpace
from nasforge.spaces.mlp import MlpSpace
from nasforge.spaces.nb201 import Nb201Space
from nasforge.strategies.bananas import Bananas
from nasforge.strategies.base import register_strategy
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.local import LocalSearch
from nasforge.strategies.multifidelity import Asha, Hyperband, SuccessiveHalving
from nasforge.strategies.oneshot import Darts, Enas, Gdas, PcDarts, ProxylessNas, Spos
from nasforge.strategies.optuna import OptunaGP, OptunaNSGA2, OptunaRandom, OptunaTPE
from nasforge.strategies.random import RandomSearch
from nasforge.strategies.reinforce import Reinforce
from nasforge.strategies.transfer import Transfer
from nasforge.tasks.base import register_task
from nasforge.tasks.image import ImageKind
from nasforge.tasks.node import NodeKind
from nasforge.tasks.tabular import TabularKind

__all__: list[str] = []

register_space(
    "gnn",
    lambda: GnnSpace(name="gnn", ops=GNN_OPS),
    summary="NAS-Bench-Graph macro space: 4 nodes, 9 ops (26,206 distinct architectures)",
)
register_space(
    "gnn-proteins",
    lambda: GnnSpace(name="gnn-proteins", ops=PROTEINS_OPS),
    summary="the gnn space on the 5 ops of the ogbn-proteins table (2,021 architectures)",
)
register_space(
    "nb201",
    lambda: Nb201Space(name="nb201"),
    summary="NAS-Bench-201 cell: 6 edges x 5 ops, 15,625 cells (5,044 distinct functions)",
)
register_space(
    "mlp",
    lambda: MlpSpace(name="mlp"),
    summary="MLPs for tabular data: depth, widths, activation, dropout, norm "
    "(58,500 distinct architectures)",
)

register_strategy("random", RandomSearch, summary="random search without replacement")
register_strategy(
    "evolution",
    RegularizedEvolution,
    summary="regularized (aging) evolution, Real et al. 2019",
)
register_strategy(
    "local",
    LocalSearch,
    summary="local search with restarts, White et al. 2021",
)
register_strategy(
    "bananas",
    Bananas,
    summary="BANANAS: predictor-guided search (MLP + GBT ensemble, Thompson sampling), "
    "White et al. 2021",
)
register_strategy(
    "transfer",
    Transfer,
    summary="learns from earlier searches and NAS-Bench-Graph's tables: probes, task matching "
    "by ranking, then BANANAS with the known tasks' rankings as features",
)
register_strategy(
    "reinforce",
    Reinforce,
    summary="LSTM controller trained with REINFORCE, Zoph & Le 2017 / GraphNAS, Gao et al. 2020",
)
register_strategy(
    "optuna-tpe",
    OptunaTPE,
    summary="Optuna's multivariate TPE sampler, Bergstra et al. 2011 (needs nasforge[optuna])",
)
register_strategy(
    "optuna-gp",
    OptunaGP,
    summary="Optuna's Gaussian-process sampler with log EI, Ament et al. 2023; seconds per "
    "proposal, for training searches (needs nasforge[optuna])",
)
register_strategy(
    "optuna-nsga2",
    OptunaNSGA2,
    summary="Optuna's NSGA-II genetic algorithm, Deb et al. 2002 (needs nasforge[optuna])",
)
register_strategy(
    "optuna-random",
    OptunaRandom,
    summary="Optuna's random sampler, without repeats (needs nasforge[optuna])",
)
register_strategy(
    "successive-halving",
    SuccessiveHalving,
    summary="successive halving over epochs, Jamieson & Talwalkar 2016 (multi-fidelity)",
)
register_strategy(
    "hyperband",
    Hyperband,
    summary="Hyperband over epochs, Li et al. 2018 (multi-fidelity)",
)
register_strategy(
    "asha",
    Asha,
    summary="asynchronous successive halving over epochs, Li et al. 2020 (multi-fidelity)",
)

register_strategy(
    "darts",
    Darts,
    summary="DARTS: differentiable search on the space's supernet, Liu et al. 2019 "
    "(one-shot; first order, -o order=2 for second; -o selection=perturbation: DARTS-PT, "
    "Wang et al. 2021)",
)
register_strategy(
    "pc-darts",
    PcDarts,
    summary="PC-DARTS: DARTS with partial channel connections and edge normalisation, "
    "Xu et al. 2020 (one-shot; -o partial=K)",
)
register_strategy(
    "gdas",
    Gdas,
    summary="GDAS: Gumbel-softmax single-path sampling on the supernet, Dong & Yang 2019 "
    "(one-shot)",
)
register_strategy(
    "enas",
    Enas,
    summary="ENAS: an LSTM controller (REINFORCE) sampling paths of a shared supernet, "
    "Pham et al. 2018 / GraphNAS (one-shot)",
)
register_strategy(
    "spos",
    Spos,
    summary="SPOS: uniform single-path supernet training, then evolution on shared weights, "
    "Guo et al. 2020 (one-shot)",
)
register_strategy(
    "proxylessnas",
    ProxylessNas,
    summary="ProxylessNAS: binarised path sampling with a latency loss from the per-operation "
    "latency table, Cai et al. 2019 (one-shot; -o latency_weight=W)",
)

for _dataset in DATASETS:
    register_benchmark(
        f"nas-bench-graph:{_dataset}",
        partial(NasBenchGraphEvaluator, dataset=_dataset),
        summary=f"NAS-Bench-Graph table of {_dataset} "
        f"(space {'gnn-proteins' if _dataset == 'proteins' else 'gnn'})",
    )


for _dataset in NB201_DATASETS:
    register_benchmark(
        f"nas-bench-201:{_dataset}",
        partial(NasBench201Evaluator, dataset=_dataset),
        summary=f"NAS-Bench-201 / NATS-Bench topology results on {_dataset} (space nb201; "
        "the file you downloaded: --table PATH or $NASFORGE_NB201_PATH)",
    )

register_task(NodeKind)
register_task(ImageKind)
register_task(TabularKind)

register_executor(InlineExecutor, summary="this process, one trial at a time")
register_executor(
    ProcessExecutor,
    summary="local worker processes (spawn): a crash, an out-of-memory kill or a timeout "
    "costs one trial",
)
register_executor(RayExecutor, summary="a Ray cluster (--ray-address), or a private local Ray")

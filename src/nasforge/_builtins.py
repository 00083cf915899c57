"""The registries and what nasforge ships in them, registered explicitly."""

from __future__ import annotations

from nasforge.benchmarks.nas_bench_graph import DATASETS
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.gnn import GNN_OPS, PROTEINS_OPS, GnnSpace
from nasforge.strategies.base import Strategy
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.local import LocalSearch
from nasforge.strategies.random import RandomSearch

__all__ = ["BENCHMARKS", "SPACES", "STRATEGIES"]

SPACES: Registry[SearchSpace] = Registry("space")
STRATEGIES: Registry[Strategy] = Registry("strategy")
BENCHMARKS: Registry[NasBenchGraphEvaluator] = Registry("benchmark")

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


def _nbg(dataset: str) -> NasBenchGraphEvaluator:
    return NasBenchGraphEvaluator(dataset=dataset)


for _dataset in DATASETS:
    BENCHMARKS.register(
        f"nas-bench-graph:{_dataset}",
        lambda _d=_dataset: _nbg(_d),
        summary=f"NAS-Bench-Graph table of {_dataset} "
        f"(space {'gnn-proteins' if _dataset == 'proteins' else 'gnn'})",
    )

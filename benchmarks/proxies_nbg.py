"""Zero-cost proxies on real graphs against NAS-Bench-Graph: Spearman rho with the table.

For each NB-Graph dataset whose graph is available offline (Cora ships in
``../shared/datasets/planetoid``; CiteSeer and PubMed when ``--data-root`` holds their raw
files; the other six have no offline loader and are skipped with the reason), draws
``--samples`` independent samples of ``--archs`` distinct architectures of the ``gnn`` space
(canonical keys, sample ``s`` drawn with seed ``s``), computes every proxy of
:mod:`nasforge.proxies` on the real graph for each of them (weights from seed 0), and reports
Spearman's rho between each proxy and the table's validation and test accuracy: mean and
standard deviation over the samples. The architectures of the first ``--seed-samples``
samples are also scored with seeds ``1..--seeds - 1``, to report rho of the seed-averaged
proxies and how much a proxy's ranking depends on the seed. Models are built with the dataset's
NB-Graph protocol (``nasforge.benchmarks.nbg_protocol``: Cora hidden 256, no pre-processing,
one post-processing layer). No published figure exists for graphs: these are our
measurements. Time per architecture is measured per proxy alone (``--timing-archs``
architectures, seed 0) and for all proxies through ``ProxyEvaluator.evaluate``.

Example (tiny run)::

    python benchmarks/proxies_nbg.py --datasets cora --archs 10 --samples 1 --seeds 2 \
        --timing-archs 2 --out /tmp/proxies_nbg.md
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import math
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from _report import header, machine_lines, markdown_table, publish
from nasforge.architecture import Architecture
from nasforge.benchmarks.nas_bench_graph import DATASETS, load_table
from nasforge.benchmarks.nbg_protocol import PROTOCOLS
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.evaluators.proxies import ProxyEvaluator
from nasforge.proxies import PROXIES, check_proxies, proxy_function, score
from nasforge.spaces.gnn import GnnSpace
from nasforge.tasks.node import PLANETOID, NodeClassificationTask, load_planetoid

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "proxies_nbg.md"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "planetoid"
PLANETOID_NAMES = {name.lower(): name for name in PLANETOID}
SEED_FREE = ("params", "flops")  # proxies that do not depend on the seed

Genes = tuple[tuple[int, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Scored:
    """The proxies of one architecture under one seed."""

    values: dict[str, float]
    seconds: float
    cpu: float
    reason: str | None


# -- worker side -----------------------------------------------------------------------------
_EVALUATORS: dict[tuple[str, int], ProxyEvaluator] = {}


def _evaluator(root: str, dataset: str, seed: int) -> ProxyEvaluator:
    """The ProxyEvaluator of ``dataset`` and ``seed`` in this process (built once)."""
    key = (dataset, seed)
    if key not in _EVALUATORS:
        name = PLANETOID_NAMES[dataset]
        proto = PROTOCOLS[dataset]
        _EVALUATORS[key] = ProxyEvaluator(
            task=NodeClassificationTask(f"planetoid:{name}", load_planetoid(name, root)),
            space=GnnSpace(),
            hyper=proto.hyper(),
            proxies=PROXIES,
            seed=seed,
        )
    return _EVALUATORS[key]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def score_arch(
    root: str, dataset: str, genes: Genes, seeds: Sequence[int], proxies: Sequence[str]
) -> list[Scored]:
    """``proxies`` of one architecture under each seed.

    Seed ``seeds[0]`` goes through ``ProxyEvaluator.evaluate`` (every proxy and the costs, the
    path a search takes); later seeds compute the seed-dependent proxies only.
    """
    out: list[Scored] = []
    arch = Architecture.create("gnn", links=genes[0], ops=genes[1])
    for i, seed in enumerate(seeds):
        ev = _evaluator(root, dataset, seed)
        start, cpu = time.perf_counter(), time.process_time()
        if i == 0:
            result = ev.evaluate(arch)
            values = {p: result.metrics[f"proxy_{p}"] for p in proxies} if result.ok else {}
            cpu = time.process_time() - cpu
            out.append(Scored(values, result.wall_time, cpu, result.reason))
            continue
        wanted = [p for p in proxies if p not in SEED_FREE]
        try:
            model = ev.build_model(arch)
            values = score(lambda m=model: copy.deepcopy(m), ev.batch, wanted)
            reason = next((f"{p} is {v}" for p, v in values.items() if not math.isfinite(v)), None)
        except Exception as exc:
            values, reason = {}, f"{type(exc).__name__}: {exc}"
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        out.append(Scored(values if reason is None else {}, wall, cpu, reason))
    return out


def time_arch(
    root: str, dataset: str, genes: Genes, proxies: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds each proxy takes alone on one architecture (seed 0, fresh
    model each)."""
    ev = _evaluator(root, dataset, 0)
    arch = Architecture.create("gnn", links=genes[0], ops=genes[1])
    model = ev.build_model(arch)
    seconds: dict[str, tuple[float, float]] = {}
    for name in proxies:
        fresh = copy.deepcopy(model)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            proxy_function(name)(fresh, ev.batch)
        except Exception:
            seconds[name] = (math.nan, math.nan)
            continue
        seconds[name] = (time.perf_counter() - start, time.process_time() - cpu)
    return seconds


# -- main side -------------------------------------------------------------------------------
def draw(space: GnnSpace, n: int, seed: int) -> list[Architecture]:
    """``n`` architectures of distinct canonical keys, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[Architecture] = []
    while len(out) < n:
        arch = space.sample(rng)
        key = space.canonical_key(arch)
        if key not in seen:
            seen.add(key)
            out.append(arch)
    return out


def rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho, NaN with fewer than 3 pairs or a constant side."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(spearmanr(x, y).statistic)


def _stats(values: Sequence[float]) -> list[str]:
    """Mean and median to 3 decimals, or dashes."""
    if not values:
        return ["-", "-"]
    return [f"{statistics.mean(values):.3f}", f"{statistics.median(values):.3f}"]


def mean_sd(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    if len(finite) == 1:
        return f"{finite[0]:+.3f}"
    return f"{statistics.mean(finite):+.3f} ± {statistics.stdev(finite):.3f}"


def _correlations(
    samples: Sequence[Sequence[Architecture]],
    value: dict[str, float],
    keys: dict[Architecture, str],
    accuracy: dict[str, tuple[float, float]],
) -> tuple[list[float], list[float], int]:
    """Per sample: rho of ``value`` with validation and with test accuracy; archs left out."""
    vals, tests, missing = [], [], 0
    for sample in samples:
        x, val, test = [], [], []
        for arch in sample:
            v = value.get(keys[arch], math.nan)
            if not math.isfinite(v):
                missing += 1
                continue
            x.append(v)
            val.append(accuracy[keys[arch]][0])
            test.append(accuracy[keys[arch]][1])
        vals.append(rho(x, val))
        tests.append(rho(x, test))
    return vals, tests, missing


def run_dataset(
    args: argparse.Namespace, dataset: str, proxies: tuple[str, ...], pool: ProcessPoolExecutor
) -> list[str]:
    """The report section of one dataset (or the reason it was skipped)."""
    title = f"## {dataset}"
    if dataset not in PLANETOID_NAMES:
        return [
            title,
            "",
            f"Skipped: no offline loader for {dataset} (nasforge reads Planetoid graphs — "
            "Cora, CiteSeer, PubMed — from raw files only).",
        ]
    try:
        load_planetoid(PLANETOID_NAMES[dataset], args.data_root)  # fail early, process once
    except ConfigError as exc:
        return [title, "", f"Skipped: {exc}"]
    space = GnnSpace()
    lookup = NasBenchGraphEvaluator(dataset=dataset)
    table = load_table(dataset)
    samples = [draw(space, args.archs, s) for s in range(args.samples)]
    seeded = samples[: args.seed_samples]
    keys = {arch: space.canonical_key(arch) for sample in samples for arch in sample}
    unique: dict[str, Architecture] = {}
    for arch, key in keys.items():
        unique.setdefault(key, arch)
    seeded_keys = {keys[arch] for sample in seeded for arch in sample}
    all_seeds, first_seed = list(range(args.seeds)), [0]
    rows_of = {k: table[lookup.arch_hash(a)] for k, a in unique.items()}
    accuracy = {k: (row.valid, row.test) for k, row in rows_of.items()}

    t0 = time.perf_counter()
    futures = {
        k: pool.submit(
            score_arch,
            args.data_root,
            dataset,
            GnnSpace.genes(a),
            all_seeds if k in seeded_keys else first_seed,
            proxies,
        )
        for k, a in unique.items()
    }
    scored = {k: f.result() for k, f in futures.items()}
    proxy_wall = time.perf_counter() - t0
    timing_archs = samples[0][: args.timing_archs]
    timing_futures = [
        pool.submit(time_arch, args.data_root, dataset, GnnSpace.genes(a), proxies)
        for a in timing_archs
    ]
    timing = [f.result() for f in timing_futures]

    def seed0(proxy: str) -> dict[str, float]:
        return {k: runs[0].values.get(proxy, math.nan) for k, runs in scored.items()}

    def seed_mean(proxy: str) -> dict[str, float]:
        out = {}
        for k in seeded_keys:
            values = [r.values.get(proxy, math.nan) for r in scored[k]]
            if proxy in SEED_FREE:
                values = values[:1]
            out[k] = statistics.mean(values) if all(map(math.isfinite, values)) else math.nan
        return out

    n_seeds = args.seeds
    rows = []
    for proxy in proxies:
        val0, test0, missing = _correlations(samples, seed0(proxy), keys, accuracy)
        if proxy in SEED_FREE or n_seeds == 1:
            val_m = test_m = ["-"]
            between = "(seed-free)" if proxy in SEED_FREE else "-"
        else:
            vm, tm, _ = _correlations(seeded, seed_mean(proxy), keys, accuracy)
            val_m, test_m = [mean_sd(vm)], [mean_sd(tm)]
            pairs = [
                (scored[k][0].values[proxy], scored[k][1].values[proxy])
                for k in seeded_keys
                if proxy in scored[k][0].values and proxy in scored[k][1].values
            ]
            between = mean_sd([rho([a for a, _ in pairs], [b for _, b in pairs])])
        rows.append(
            [
                f"`{proxy}`",
                mean_sd(val0),
                mean_sd(test0),
                val_m[0],
                test_m[0],
                between,
                str(missing),
            ]
        )
    para = {k: row.params_m for k, row in rows_of.items()}
    pval, ptest, _ = _correlations(samples, para, keys, accuracy)
    rows.append(["table `para` (reference)", mean_sd(pval), mean_sd(ptest), "-", "-", "-", "-"])
    checks = []
    if "params" in proxies:
        ours = seed0("params")
        agree = rho([ours[k] for k in unique], [para[k] for k in unique])
        checks.append(
            f"- rho between our `params` and the table's `para` over all {len(unique)} "
            f"architectures: {agree:+.4f} (our models leave out the BatchNorm the benchmark "
            "registers, unused, on nodes that read the raw features: 2 x hidden parameters "
            "each; otherwise the counts are equal, see tests/spaces/test_gnn_model.py)."
        )
    reasons = sorted({r.reason for runs in scored.values() for r in runs if r.reason})
    time_rows = []
    for proxy in proxies:
        pairs = [t[proxy] for t in timing if proxy in t and math.isfinite(t[proxy][0])]
        time_rows.append(
            [
                f"`{proxy}`",
                *_stats([w for w, _ in pairs]),
                *_stats([c for _, c in pairs]),
            ]
        )
    time_rows.append(
        [
            f"all {len(proxies)} via `ProxyEvaluator.evaluate` (shared pass, + costs), "
            f"{len(scored)} architectures",
            *_stats([runs[0].seconds for runs in scored.values()]),
            *_stats([runs[0].cpu for runs in scored.values()]),
        ]
    )
    cpu_total = sum(r.cpu for runs in scored.values() for r in runs)
    seeded_note = (
        f"the {len(seeded_keys)} architectures of the first {len(seeded)} sample(s) also with "
        f"seeds 1..{n_seeds - 1}"
        if n_seeds > 1 and seeded
        else "no further seeds"
    )
    return [
        title,
        "",
        f"{len(samples)} independent sample(s) of {args.archs} distinct architectures "
        f"({len(unique)} distinct in all), every architecture with seed 0 and {seeded_note}; "
        f"proxies computed in {proxy_wall:.1f} s of wall time by {args.workers} worker "
        f"process(es), {cpu_total:.1f} s of CPU time in all (on an otherwise idle machine the "
        f"wall time is about {cpu_total / args.workers:.0f} s).",
        "",
        "### Spearman rho with the table's accuracy",
        "",
        *markdown_table(
            [
                "proxy",
                f"rho val, seed 0 (mean ± sd, {len(samples)} samples)",
                f"rho test, seed 0 (mean ± sd, {len(samples)} samples)",
                f"rho val, {n_seeds}-seed mean ({len(seeded)} sample(s))",
                f"rho test, {n_seeds}-seed mean ({len(seeded)} sample(s))",
                "rho between seeds 0 and 1",
                "archs left out (failed)",
            ],
            rows,
        ),
        "",
        *checks,
        "- failures: " + ("; ".join(reasons) if reasons else "none"),
        "",
        f"### Time per architecture (seconds; {len(timing)} architectures of sample 0 for "
        "each proxy alone, seed 0; one process with 1 torch thread; CPU time is the wall time "
        "of an idle core)",
        "",
        *markdown_table(["proxy", "wall mean", "wall median", "CPU mean", "CPU median"], time_rows),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--datasets", default="cora,citeseer,pubmed")
    parser.add_argument("--archs", type=int, default=200, help="architectures per sample")
    parser.add_argument("--samples", type=int, default=3, help="independent samples")
    parser.add_argument("--seeds", type=int, default=3, help="proxy seeds averaged")
    parser.add_argument(
        "--seed-samples",
        type=int,
        default=1,
        help="samples whose architectures get every seed (the others get seed 0 only)",
    )
    parser.add_argument("--proxies", default=",".join(PROXIES))
    parser.add_argument("--timing-archs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if min(args.archs, args.samples, args.seeds, args.workers) < 1:
        parser.error("--archs, --samples, --seeds and --workers must be >= 1")
    if args.timing_archs < 0 or args.seed_samples < 0:
        parser.error("--timing-archs and --seed-samples must be >= 0")
    datasets = [d.strip().lower() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown NAS-Bench-Graph dataset(s) {unknown}; valid: {', '.join(DATASETS)}")
    try:
        proxies = check_proxies(p.strip() for p in args.proxies.split(",") if p.strip())
    except ConfigError as exc:
        parser.error(str(exc))
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    sections: list[str] = []
    measured: list[str] = []
    with ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=_init_worker
    ) as pool:
        for dataset in datasets:
            section = run_dataset(args, dataset, proxies, pool)
            sections += ["", *section]
            if not section[-1].startswith("Skipped"):
                measured.append(dataset)
    wall = time.perf_counter() - t0
    extra_seeds = (
        f"; those of the first {args.seed_samples} sample(s) also with seeds "
        f"1..{args.seeds - 1}, averaged in the 'seed mean' columns"
        if args.seeds > 1 and args.seed_samples
        else ""
    )
    lines = [
        *header("Zero-cost proxies against NAS-Bench-Graph", started, wall, machine_lines()),
        "",
        "## Protocol",
        "",
        "Each proxy is computed on the real graph (public Planetoid split, local raw files) for "
        "the untrained model NB-Graph trains (the dataset's protocol: "
        + "; ".join(
            f"{d}: hidden {PROTOCOLS[d].hidden}, pre {PROTOCOLS[d].pre}, post {PROTOCOLS[d].post}"
            for d in measured
        )
        + "). Definitions, loss and batch are those of `nasforge.proxies`: the whole graph, "
        "cross-entropy on the training nodes, dropout off and BatchNorm on batch statistics; "
        "`synflow` in float64 on all-ones features and the real edges, reported as ln S; "
        "`jacov` over the training nodes. Seed `s` fixes the weights (and which training nodes "
        "`jacov` uses, all of them on Cora's 140). Each sample is a set of distinct canonical "
        "architectures drawn uniformly over the genes (the space's `sample`); rho is Spearman's "
        "against NB-Graph's mean validation / test accuracy of the architecture (the table "
        "row found by the benchmark's own hash). Architectures whose proxy failed on some seed "
        "are left out of that proxy's rho (counted under 'archs left out'). Every architecture "
        f"is scored with seed 0{extra_seeds}. `params` and `flops` "
        "do not depend on the seed. No published rho exists for graph proxies; these are our "
        "measurements.",
        *sections,
    ]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()

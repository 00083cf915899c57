"""Warm start: the best of a pool ranked by a zero-cost proxy are proposed first (Abdelfattah
et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, "zero-cost warmup")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.proxies import PROXIES
from nasforge.result import Result
from nasforge.strategies.base import Strategy

if TYPE_CHECKING:
    from nasforge.evaluators.base import Evaluator

__all__ = ["DEFAULT_PROXY", "POOL_FACTOR", "WarmStart", "check_warm_start"]

DEFAULT_PROXY = "synflow"
"""The proxy that ranks the pool unless another is named."""

POOL_FACTOR = 10
"""The pool holds this many architectures per warm candidate unless its size is given."""

log = logging.getLogger(__name__)


def check_warm_start(size: object, pool: object = None, proxy: object = DEFAULT_PROXY) -> int:
    """Validate the warm-start settings; return the pool size (default ``POOL_FACTOR * size``).

    Raises:
        ConfigError: For ``size`` < 0, a pool smaller than ``size``, an unknown proxy, or a
            pool or proxy given without a warm start.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ConfigError(
            f"warm_start must be an integer >= 0 (candidates ranked by a proxy proposed first; "
            f"0 turns it off), got {size!r}"
        )
    if size == 0 and (pool is not None or proxy != DEFAULT_PROXY):
        raise ConfigError(
            f"warm_pool and warm_proxy apply with warm_start >= 1, got warm_start=0 "
            f"(warm_pool={pool!r}, warm_proxy={proxy!r})"
        )
    pool = POOL_FACTOR * size if pool is None else pool
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < size:
        raise ConfigError(
            f"warm_pool must be an integer >= warm_start ({size}): the pool the first "
            f"candidates are chosen from; got {pool!r}"
        )
    if proxy not in PROXIES:
        raise ConfigError(f"unknown warm_proxy {proxy!r}; valid: {', '.join(PROXIES)}")
    return pool


class WarmStart(Strategy):
    """Proposes the ``size`` best of a pool ranked by a zero-cost proxy, then ``inner``'s.

    At the first ``ask``, ``pool`` distinct architectures are drawn from the space (a
    generator seeded by the search seed) and each is scored by ``proxy`` on the task's real
    data, its untrained model built as ``source`` (the training evaluator) builds it, with the
    weights and the batch drawn from the same seed: the ranking of
    :func:`~nasforge.evaluators.proxies.rank_by_proxy` (architectures whose proxy fails are
    left out). The best ``size`` are proposed first, best first; after them ``inner``
    proposes. Every result, the warm candidates' too, is told to ``inner``; it also decides
    the fidelity of every proposal (a multi-fidelity strategy starts the warm candidates at
    its lowest rung).

    The search's identity is ``inner``'s (name, seed, objectives) and its options are
    ``inner``'s plus ``warm_start``, ``warm_pool`` and ``warm_proxy``, so that an experiment
    stores them and refuses a resume with other values.

    Resuming: the stored trials are told before the first ``ask``. Warm candidates told
    already are not proposed again, and the leading told results that belong to the pool are
    the warm candidates stored before (they come first), so they are not scored again: a
    search resumed after its warm phase scores nothing, one interrupted inside it scores the
    rest of the pool only. For a deterministic ``inner`` the resumed search proposes what an
    uninterrupted one would.

    Args:
        inner: The strategy that searches after the warm candidates.
        source: The evaluator that trains candidates (it has ``task`` and ``hyper``).
        size: Warm candidates (N), >= 1.
        pool: Architectures drawn and scored (P), >= ``size``; default ``10 * size``.
        proxy: One of :data:`nasforge.proxies.PROXIES`.

    Raises:
        ConfigError: For a bad ``size``, ``pool`` or ``proxy``, or a ``source`` without data
            (a table look-up).
    """

    multi_objective = True  # whatever ``inner`` accepts: it checked the objectives

    def __init__(
        self,
        inner: Strategy,
        *,
        source: Evaluator,
        size: int,
        pool: int | None = None,
        proxy: str = DEFAULT_PROXY,
    ) -> None:
        super().__init__(inner.space, objective=inner.objectives, seed=inner.seed)
        if isinstance(inner, WarmStart):
            raise ConfigError("a warm start cannot wrap another warm start")
        self.pool = check_warm_start(size, pool, proxy)
        if size < 1:
            raise ConfigError(f"a WarmStart needs size >= 1, got {size}; without one use `inner`")
        if not _has_data(source):
            raise ConfigError(
                f"a warm start scores architectures on the task's data, but "
                f"{type(source).__name__} has none (a table look-up): search a --task instead"
            )
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # the search is the inner strategy's
        self.source = source
        self.size = size
        self.proxy = proxy
        self.pool_seed = self.seed if self.seed is not None else self._entropy % 2**32
        self.scored = 0  # architectures of the pool scored by the proxy (by this object)
        self.scoring_seconds = 0.0  # time drawing and scoring the pool took
        self._queue: list[Architecture] | None = None  # warm candidates left, best first
        self._leading: list[str] = []  # keys of the first ``size`` results told

    def _propose(self) -> Architecture | None:
        if self._queue is None:
            self._queue = self._warm_candidates()
        while self._queue:
            arch = self._queue.pop(0)
            if not self.is_seen(arch):  # stored already: the loop must not tell it twice
                return arch
        proposals = self.inner.ask(1)
        return proposals[0] if proposals else None

    def tell(self, arch: Architecture, result: Result) -> None:
        super().tell(arch, result)
        self.inner.tell(arch, result)

    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        if len(self._leading) < self.size:
            self._leading.append(key)

    def bind(
        self,
        store: str,
        experiment: str,
        task: str | None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.inner.bind(store, experiment, task, note)

    def fidelity_for(self, arch: Architecture) -> int | None:
        return self.inner.fidelity_for(arch)

    def options(self) -> dict[str, Any]:
        return {
            **self.inner.options(),
            "warm_start": self.size,
            "warm_pool": self.pool,
            "warm_proxy": self.proxy,
        }

    def _warm_candidates(self) -> list[Architecture]:
        """The pool's best ``size`` by the proxy, best first, less those stored before."""
        from nasforge.evaluators.proxies import ProxyEvaluator  # imports PyG: only when used

        start = time.perf_counter()
        pool = self.space.sample_distinct(self.pool, np.random.default_rng(self.pool_seed))
        keys = [self.space.canonical_key(arch) for arch in pool]
        members = set(keys)
        done: set[str] = set()
        for key in self._leading:  # the warm candidates a resumed search stored already
            if key not in members:
                break
            done.add(key)
        if len(done) >= self.size:
            self.scoring_seconds = time.perf_counter() - start
            return []
        evaluator = ProxyEvaluator(
            task=self.source.task,  # type: ignore[attr-defined]
            space=self.space,
            hyper=getattr(self.source, "hyper", None),
            proxies=[self.proxy],
            seed=self.pool_seed,
            costs=False,
            device=getattr(self.source, "device", "auto"),  # where the search trains
        )
        scored: list[tuple[Architecture, float]] = []
        for arch, key in zip(pool, keys, strict=True):
            if key in done:
                continue
            result = evaluator.evaluate(arch)
            self.scored += 1
            if result.ok:
                scored.append((arch, result.metrics[f"proxy_{self.proxy}"]))
        scored.sort(key=lambda pair: -pair[1])  # stable: ties keep draw order
        self.scoring_seconds = time.perf_counter() - start
        log.info(
            "warm start: %d architectures scored by %s in %.1f s (%d failed)",
            self.scored,
            self.proxy,
            self.scoring_seconds,
            self.scored - len(scored),
        )
        return [arch for arch, _ in scored[: self.size - len(done)]]

    def __repr__(self) -> str:
        return (
            f"WarmStart({self.inner!r}, size={self.size}, pool={self.pool}, proxy={self.proxy!r})"
        )


def _has_data(source: Evaluator) -> bool:
    from nasforge.tasks.base import Task

    return isinstance(getattr(source, "task", None), Task)

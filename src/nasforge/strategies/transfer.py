"""Transfer: a search that starts from what earlier searches measured.

The knowledge (:mod:`nasforge.knowledge`) is read when the search starts: every completed
trial of the stores named (the search's own store by default) and NAS-Bench-Graph's nine
tables, each known task's architectures turned into percentile ranks. Then:

1. **Probes**: the first ``n_probes`` proposals are the best architecture of each known task,
   those with the highest mean percentile over all known tasks first (with fewer tasks than
   probes, the next by that mean). They are charged to the budget like any trial.
2. **Matching** (landmarking): after each result, every known task's ranking of the
   architectures evaluated so far is compared with the new task's (Spearman's rho); a task's
   weight is its positive correlation squared (:func:`~nasforge.knowledge.match_tasks`).
3. **Refining**: BANANAS (:class:`~nasforge.strategies.bananas.Bananas`: an ensemble of MLPs
   and gradient-boosted trees, Thompson sampling) whose predictor sees each architecture's
   encoding *and* its percentile in every known task (0.5 where a task did not measure it),
   so that it learns how the new task relates to the known ones from its own results. Its
   candidates are one-edit mutations of the best so far, random architectures, and the
   unseen architectures that the matched tasks rank highest.

Without usable knowledge (no known task of this space) it is BANANAS and says so. It never
sees test metrics: the knowledge holds validation scores only, and the search's own
experiment (and, for a search on a benchmark table, that table) is left out of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.knowledge import Knowledge, Match, match_tasks, read_knowledge
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.bananas import Bananas
from nasforge.strategies.base import check_positive_int

__all__ = ["Transfer"]

log = logging.getLogger(__name__)

UNMEASURED = 0.5
"""Percentile given to an architecture a known task did not measure."""


class Transfer(Bananas):
    """Knowledge-based search: probes, task matching, then a knowledge-aware BANANAS.

    Args:
        knowledge: Stores (paths or URLs) to learn from, read only; empty: the search's own
            store.
        tables: Also learn from NAS-Bench-Graph's nine tables.
        n_probes: Proposals made from the knowledge before the predictor takes over.
        prior_candidates: Candidates per proposal taken from the matched tasks' best unseen
            architectures (besides BANANAS' mutations and random ones).
        **options: BANANAS' options (``ensemble_size``, ``predictors``, ``n_candidates``, ...;
            ``n_init`` is ``n_probes``).
    """

    name = "transfer"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective,
        seed: int | None = None,
        knowledge: Sequence[str] = (),
        tables: bool = True,
        n_probes: int = 5,
        prior_candidates: int = 50,
        **options: Any,
    ) -> None:
        if "n_init" in options:
            raise ConfigError("transfer sets n_init itself: give n_probes instead")
        self.n_probes = check_positive_int("n_probes", n_probes, 2)
        super().__init__(space, objective=objective, seed=seed, n_init=self.n_probes, **options)
        if isinstance(knowledge, str) or not isinstance(knowledge, Sequence):
            raise ConfigError(
                f"knowledge must be a list of stores (paths or URLs), got {knowledge!r}; "
                """on the command line --knowledge DB (repeatable) or -o 'knowledge=["a.db"]'"""
            )
        if not all(isinstance(k, str) and k for k in knowledge):
            raise ConfigError(f"knowledge must name stores by path or URL, got {knowledge!r}")
        self.knowledge_sources = tuple(knowledge)
        if not isinstance(tables, bool):
            raise ConfigError(f"tables must be true or false, got {tables!r}")
        self.tables = tables
        self.prior_candidates = check_positive_int("prior_candidates", prior_candidates, 0)
        self.known: Knowledge | None = None
        self.matches: list[Match] = []
        self._note: Callable[[str], None] = log.info
        self._keys: list[str] = []  # every architecture some known task measured
        self._index: dict[str, int] = {}
        self._archs: dict[str, Architecture] = {}
        self._pct = np.zeros((0, 0), dtype=np.float32)  # (keys, tasks) percentiles
        self._probes: list[str] = []
        self._matched_at = -1

    # -- knowledge ----------------------------------------------------------------------------
    def bind(
        self,
        store: str,
        experiment: str,
        task: str | None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        """Read the knowledge for the search ``experiment`` in ``store`` on ``task`` (its
        benchmark or task text); ``note`` hears what was found, before the first proposal."""
        if note is not None:
            self._note = note
        sources = list(self.knowledge_sources) or [store]
        found = read_knowledge(
            sources,
            tables=self.tables,
            exclude_experiment=experiment,
            exclude_task=task,
            current=store,
        )
        self.use(found.usable_for(self.space))

    def use(self, knowledge: Knowledge) -> None:
        """Learn from ``knowledge`` (tasks of this space); :meth:`bind` reads and passes it."""
        self.known = knowledge
        tasks = knowledge.tasks
        for note in knowledge.notes:
            self._note(f"transfer: {note}")
        if not tasks:
            self._note(
                "transfer: no known task of space "
                f"{self.space.name!r}: searching without knowledge (as bananas)"
            )
            return
        keys: dict[str, Architecture] = {}
        for task in tasks:
            for key, arch in task.archs.items():
                keys.setdefault(key, arch)
        self._keys = sorted(keys)
        self._index = {k: i for i, k in enumerate(self._keys)}
        self._archs = keys
        pct = np.full((len(self._keys), len(tasks)), UNMEASURED, dtype=np.float32)
        for j, task in enumerate(tasks):
            for key, value in task.percentiles().items():
                pct[self._index[key], j] = value
        self._pct = pct
        consensus = pct.mean(axis=1)
        bests = {max(t.scores, key=lambda k: (t.scores[k], k)) for t in tasks}
        ranked = sorted(bests, key=lambda k: (-consensus[self._index[k]], k))
        rest = [self._keys[i] for i in np.argsort(-consensus, kind="stable")]
        self._probes = list(dict.fromkeys(ranked + rest[: self.n_probes]))[: self.n_probes]
        by_source: dict[str, list[str]] = {}
        for t in tasks:
            by_source.setdefault(t.source, []).append(f"{t.label} ({len(t)})")
        listed = "; ".join(f"{src}: {', '.join(labels)}" for src, labels in by_source.items())
        self._note(f"transfer: knowledge of {len(tasks)} tasks (architectures measured): {listed}")
        self._note(
            f"transfer: first {len(self._probes)} proposals (probes): the known tasks' best "
            "architectures; the tasks are matched by how the new task ranks them"
        )

    @property
    def informed(self) -> bool:
        """Whether there is knowledge to use."""
        return bool(self._keys)

    def _match(self) -> list[Match]:
        n = len(self._order)
        if n != self._matched_at and self.known is not None:
            observed = {k: self._results[k][1] for k in self._order}
            finite = {k: v for k, v in observed.items() if np.isfinite(v)}
            self.matches = match_tasks([t.scores for t in self.known.tasks], finite)
            self._matched_at = n
            if n == self.n_probes:
                self._note(f"transfer: matched after {n} results: {self.describe_matches()}")
        return self.matches

    def describe_matches(self, top: int = 3) -> str:
        """The best-matched known tasks, with their rank correlation and shared count."""
        if self.known is None or not self.matches:
            return "no match yet"
        best = sorted(self.matches, key=lambda m: -m.weight)[:top]
        return ", ".join(
            f"{self.known.tasks[m.index].label} (rho {m.rho:+.2f} on {m.shared}, "
            f"weight {m.weight:.2f})"
            for m in best
        )

    # -- proposals ----------------------------------------------------------------------------
    def _propose(self) -> Architecture | None:
        if self.informed and len(self._order) < self.n_probes:
            for key in self._probes:
                if key not in self._seen:
                    return self._archs[key]
            return self._without_model()
        return super()._propose()

    def _without_model(self) -> Architecture | None:
        if not self.informed:
            return super()._without_model()
        top = self._prior_top(1)
        return top[0][1] if top else self.sample_unseen()

    def _candidates(self) -> list[tuple[str, Architecture]]:
        """BANANAS' candidates, then the matched tasks' best unseen architectures."""
        candidates = dict(super()._candidates())
        if self.informed:
            for key, arch in self._prior_top(self.prior_candidates):
                candidates.setdefault(key, arch)
        return list(candidates.items())

    def _prior_top(self, m: int) -> list[tuple[str, Architecture]]:
        """The ``m`` unseen architectures the matched tasks rank highest."""
        if m <= 0:
            return []
        weights = np.array([match.weight for match in self._match()], dtype=np.float32)
        prior = self._pct @ weights
        out: list[tuple[str, Architecture]] = []
        take = min(len(prior), m + len(self._seen))
        best = np.argpartition(-prior, take - 1)[:take] if take < len(prior) else np.arange(take)
        for i in sorted(best, key=lambda i: (-prior[i], self._keys[i])):
            key = self._keys[i]
            if key not in self._seen:
                out.append((key, self._archs[key]))
                if len(out) == m:
                    break
        return out

    def _code(self, key: str, arch: Architecture) -> np.ndarray:
        code = self._codes.get(key)
        if code is None:
            own = np.asarray(self._encode(arch), dtype=np.float32)
            i = self._index.get(key)
            known = (
                self._pct[i]
                if i is not None
                else np.full(self._pct.shape[1], UNMEASURED, dtype=np.float32)
            )
            code = self._codes[key] = np.concatenate([own, known])
        return code

    def options(self) -> dict[str, Any]:
        out = super().options()
        del out["n_init"]
        return {
            "knowledge": list(self.knowledge_sources),
            "tables": self.tables,
            "n_probes": self.n_probes,
            "prior_candidates": self.prior_candidates,
            **out,
        }

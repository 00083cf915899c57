"""BANANAS: predictor-guided search (White et al., "BANANAS: Bayesian Optimization with
Neural Architectures for Neural Architecture Search", AAAI 2021)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int
from nasforge.strategies.predictors import PREDICTORS, PredictorEnsemble

__all__ = ["ACQUISITIONS", "ENCODINGS", "Bananas"]

ENCODINGS: tuple[str, ...] = ("auto", "adjacency", "path", "universal")
"""``auto``: the path encoding where the space has one, else the adjacency encoding;
``universal``: the space-independent encoding of the built model's computation graph
(:mod:`nasforge.knowledge.encoding`)."""

ACQUISITIONS: tuple[str, ...] = ("its", "ucb")
"""Independent Thompson sampling, or upper confidence bound."""

DEFAULT_FIT_WINDOW = 1000
"""Results a BANANAS fit uses at most, by default (see ``Bananas``)."""

_FIT_STREAM = 1  # seeds of fits: SeedSequence([entropy, n_results, _FIT_STREAM])


class Bananas(Strategy):
    """Bayesian optimisation with an ensemble of predictors on architecture encodings.

    After ``n_init`` random architectures, every proposal:

    1. (re)fits an ensemble of MLPs and gradient-boosted trees (:mod:`predictors`) on the
       results told so far, encoded by the space (``encode`` or ``path_encoding``);
    2. generates ``n_candidates`` candidates, unseen canonical keys only: mutations of the
       ``n_mutate_parents`` best architectures (a random draw from the union of their
       one-edit ``neighbors``, the moves of ``space.mutate``) and, for one candidate in ten,
       random architectures;
    3. proposes the candidate with the best acquisition value: a draw from
       ``N(mean, std)`` of the ensemble per candidate (independent Thompson sampling, as in
       the paper) or ``mean + beta * std`` (UCB).

    Failed results (score ``-inf``) are kept in the training set with the worst finite score
    seen, so that the predictor learns to avoid what fails; while no result is finite the
    search stays random.

    Every fit is seeded by the strategy's seed and the number of results it uses, and uses
    the first results in the order they were told, so a strategy rebuilt from its history
    (a resumed experiment) makes exactly the proposals the uninterrupted one would.

    Args:
        n_init: Random architectures evaluated before the predictor guides the search.
        ensemble_size: Members of the ensemble (at least 2).
        predictors: Member kinds used in turn, from ``("mlp", "gbt")``.
        encoding: ``"auto"``, ``"adjacency"`` (``space.encode``), ``"path"``
            (``space.path_encoding``: the space must have one) or ``"universal"`` (the
            built model's computation graph: any space with models; it builds and runs a
            small model per architecture, tens of milliseconds each).
        acquisition: ``"its"`` (independent Thompson sampling) or ``"ucb"``.
        beta: Weight of the ensemble's standard deviation in UCB.
        n_candidates: Candidates scored per proposal.
        n_mutate_parents: How many of the best architectures are mutated into candidates.
        retrain_every: Refit the ensemble once this many new results have been told.
        fit_window: The most results a fit uses: the ``fit_window // 2`` best and the most
            recent others, up to ``fit_window`` in all, so that a fit's cost stops growing
            with the history (a fit on 1,000 results takes about 0.12 s here). A search
            with at most ``fit_window`` results fits on all of them, as the paper does.
            ``None``: no bound. Stored with the experiment only when it is not the default.

    Per proposal the strategy's own work is bounded by ``fit_window`` (the fit), the
    candidates and ``n_mutate_parents`` (the best results are kept ranked as they are told);
    only its record of results grows with the history.
    """

    name = "bananas"

    random_fraction = 0.1
    """Share of the candidates drawn at random rather than mutated."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective,
        seed: int | None = None,
        n_init: int = 10,
        ensemble_size: int = 5,
        predictors: Sequence[str] = ("mlp", "gbt"),
        encoding: str = "auto",
        acquisition: str = "its",
        beta: float = 1.0,
        n_candidates: int = 100,
        n_mutate_parents: int = 5,
        retrain_every: int = 1,
        fit_window: int | None = DEFAULT_FIT_WINDOW,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.n_init = check_positive_int("n_init", n_init, 2)
        self.ensemble_size = check_positive_int("ensemble_size", ensemble_size, 2)
        if isinstance(predictors, str) or not isinstance(predictors, Sequence):
            raise ConfigError(
                f"predictors must be a sequence of predictor kinds, got {predictors!r}; "
                f"accepted kinds: {', '.join(PREDICTORS)}; e.g. predictors=('mlp', 'gbt'), "
                """on the command line -o 'predictors=["mlp", "gbt"]'"""
            )
        bad = [p for p in predictors if p not in PREDICTORS]
        if not predictors or bad:
            raise ConfigError(
                f"predictors must be a non-empty sequence of {', '.join(PREDICTORS)}; "
                f"got {tuple(predictors)!r}"
            )
        self.predictors = tuple(predictors)
        if encoding not in ENCODINGS:
            raise ConfigError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        has_path = callable(getattr(space, "path_encoding", None))
        if encoding == "path" and not has_path:
            raise ConfigError(
                f"encoding='path' needs a space with a path encoding; space {space.name!r} "
                "has none: use encoding='adjacency' (or 'auto')"
            )
        self.encoding = encoding
        use_path = encoding == "path" or (encoding == "auto" and has_path)
        self._encode: Callable[[Architecture], np.ndarray] = (
            space.path_encoding if use_path else space.encode  # type: ignore[attr-defined]
        )
        if encoding == "universal":
            from nasforge.knowledge.encoding import UniversalEncoder

            self._encode = UniversalEncoder(space)
        if acquisition not in ACQUISITIONS:
            raise ConfigError(
                f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}"
            )
        self.acquisition = acquisition
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta >= 0:
            raise ConfigError(f"beta must be a number >= 0, got {beta!r}")
        self.beta = float(beta)
        self.n_candidates = check_positive_int("n_candidates", n_candidates)
        self.n_mutate_parents = check_positive_int("n_mutate_parents", n_mutate_parents)
        self.retrain_every = check_positive_int("retrain_every", retrain_every)
        self.fit_window = (
            None if fit_window is None else check_positive_int("fit_window", fit_window, 2)
        )

        self._results: dict[str, tuple[Architecture, float]] = {}  # key -> (arch, best score)
        self._order: list[str] = []  # distinct keys in the order first told
        self._told_at: dict[str, int] = {}  # key -> its index in _order
        self._ranked: list[tuple[float, str]] = []  # (-best score, key), ascending: best first
        self._codes: dict[str, np.ndarray] = {}  # key -> encoding
        self._model: PredictorEnsemble | None = None
        self._fitted_on = 0  # results the model was fitted on
        self._neighbor_cache: dict[str, list[tuple[str, Architecture]]] = {}

    # -- the strategy -------------------------------------------------------------------------
    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        known = self._results.get(key)
        if known is None:
            self._told_at[key] = len(self._order)
            self._order.append(key)
        if known is None or score > known[1]:
            if known is not None:
                del self._ranked[bisect.bisect_left(self._ranked, (-known[1], key))]
            bisect.insort(self._ranked, (-score, key))
            self._results[key] = (arch, score)

    def _propose(self) -> Architecture | None:
        if len(self._order) < self.n_init:
            return self.sample_unseen()
        model = self._fit()
        if model is None:
            return self._without_model()
        candidates = self._candidates()
        if not candidates:
            return self.sample_unseen()
        x = np.stack([self._code(key, arch) for key, arch in candidates])  # (N, D)
        mean, std = model.predict(x)
        if self.acquisition == "its":
            value = mean + std * self.rng.standard_normal(len(mean))
        else:
            value = mean + self.beta * std
        return candidates[int(np.argmax(value))][1]

    def _without_model(self) -> Architecture | None:
        """The proposal while no predictor can be fitted (fewer than 2 finite results)."""
        return self.sample_unseen()

    # -- the predictor ------------------------------------------------------------------------
    def _code(self, key: str, arch: Architecture) -> np.ndarray:
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = np.asarray(self._encode(arch), dtype=np.float32)
        return code

    def _fit(self) -> PredictorEnsemble | None:
        """The ensemble fitted on the first results told (refitted every ``retrain_every``)."""
        n = len(self._order)
        size = n - (n - self.n_init) % self.retrain_every  # results the model should use
        if self._model is not None and self._fitted_on == size:
            return self._model
        keys = self._fit_keys(size)  # sorted: the fit does not depend on the order of telling
        scores = np.array([self._results[k][1] for k in keys])
        finite = np.isfinite(scores)
        if finite.sum() < 2:
            return None
        scores[~finite] = scores[finite].min()
        x = np.stack([self._code(k, self._results[k][0]) for k in keys])
        model = PredictorEnsemble(self.predictors, self.ensemble_size)
        model.fit(x, scores, np.random.default_rng([self._entropy, size, _FIT_STREAM]))
        self._model, self._fitted_on = model, size
        return model

    def _fit_keys(self, size: int) -> list[str]:
        """The keys a fit on the first ``size`` results uses (see ``fit_window``), sorted."""
        window = self.fit_window
        if window is None or size <= window:
            return sorted(self._order[:size])
        best: list[str] = []  # the best among the first ``size``: skips at most n - size
        for _, key in self._ranked:
            if len(best) == window // 2:
                break
            if self._told_at[key] < size:
                best.append(key)
        chosen = set(best)
        for i in range(size - 1, -1, -1):  # then the most recent others
            if len(chosen) == window:
                break
            chosen.add(self._order[i])
        return sorted(chosen)

    # -- candidates ---------------------------------------------------------------------------
    def _parents(self) -> list[tuple[str, Architecture]]:
        """Keys and architectures of the ``n_mutate_parents`` best results (finite scores;
        ties by key)."""
        out: list[tuple[str, Architecture]] = []
        for negated, key in self._ranked[: self.n_mutate_parents]:
            if negated == math.inf:  # failed results rank last
                break
            out.append((key, self._results[key][0]))
        return out

    def _neighbors(self, key: str, arch: Architecture) -> list[tuple[str, Architecture]]:
        """``space.neighbors(arch)`` with their keys, computed once per architecture."""
        found = self._neighbor_cache.get(key)
        if found is None:
            found = [(self.space.canonical_key(n), n) for n in self.space.neighbors(arch)]
            self._neighbor_cache[key] = found
        return found

    def _candidates(self) -> list[tuple[str, Architecture]]:
        """Up to ``n_candidates`` unseen architectures, distinct by key: one-edit mutations
        of the best architectures, drawn without replacement, and some random ones."""
        n_random = round(self.n_candidates * self.random_fraction)
        mutants: dict[str, Architecture] = {}
        for parent_key, parent in self._parents():
            for key, child in self._neighbors(parent_key, parent):
                if key not in mutants and not self.is_seen(child):
                    mutants[key] = child
        pool = list(mutants.items())
        n_mutants = min(len(pool), self.n_candidates - n_random)
        picks = self.rng.permutation(len(pool))[:n_mutants]
        out = dict(pool[int(i)] for i in picks)
        for _ in range(self.n_candidates - len(out)):
            arch = self.sample_unseen()
            if arch is None:
                break
            out.setdefault(self.space.canonical_key(arch), arch)
        return list(out.items())

    def options(self) -> dict[str, Any]:
        return {
            "n_init": self.n_init,
            "ensemble_size": self.ensemble_size,
            "predictors": list(self.predictors),
            "encoding": self.encoding,
            "acquisition": self.acquisition,
            "beta": self.beta,
            "n_candidates": self.n_candidates,
            "n_mutate_parents": self.n_mutate_parents,
            "retrain_every": self.retrain_every,
            # a default bound is left out, so that experiments stored before the option
            # existed resume: their proposals are the same up to fit_window results
            **({} if self.fit_window == DEFAULT_FIT_WINDOW else {"fit_window": self.fit_window}),
        }

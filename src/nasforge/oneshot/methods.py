"""The training rules of the one-shot methods, on a routed supernet.

* :class:`DartsRule`: softmax mixtures; architecture parameters by Adam on the validation
  loss, first order or with the finite-difference second-order term (DARTS, section 2.3);
  PC-DARTS is this rule on a partial-channel supernet, with edge normalisation;
* :class:`GdasRule`: one Gumbel-softmax sample per decision and step, straight-through;
* :class:`SposRule`: uniform single paths, then evolution over subnets scored on the shared
  weights with recalibrated BatchNorm;
* :class:`EnasRule`: paths from a REINFORCE-trained controller;
* :class:`ProxylessRule`: sampled single paths for the weights, two-path binary gates and an
  expected-latency term for the architecture parameters.

Every random draw comes from the phase's ``torch.Generator`` so that a phase resumed from its
checkpoint continues exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.latency.table import CALL
from nasforge.oneshot import PhaseContext, PhaseProgress
from nasforge.oneshot.data import Batch, PhaseData, recalibrated_accuracy
from nasforge.spaces.supernet import Route, Supernet, best_assignments
from nasforge.strategies.reinforce import _Policy
from nasforge.train.trainer import TrainConfig

if TYPE_CHECKING:
    from nasforge.strategies.oneshot import OneShotStrategy

__all__ = ["DartsRule", "EnasRule", "GdasRule", "ProxylessRule", "SposRule", "make_method"]

_GRAD_CLIP = 5.0
_MAX_RESAMPLES = 100
_CALIBRATION = 4


class Rule:
    """What a method does per training batch, per epoch and at the end."""

    def __init__(
        self,
        strategy: OneShotStrategy,
        net: Supernet,
        data: PhaseData,
        train: TrainConfig,
        generator: torch.Generator,
    ) -> None:
        self.strategy, self.net, self.data, self.train = strategy, net, data, train
        self.generator = generator
        self.epochs = train.epochs

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Work after epoch ``epoch``'s training steps (a controller's updates); returns
        values to store with the epoch."""
        return {}

    def epoch_record(self, epoch: int, *, scored: bool) -> dict[str, Any]:
        """What to store of epoch ``epoch``; ``scored``: include the derived architecture's
        validation accuracy on the shared weights."""
        return {}

    def derive(
        self, k: int, context: PhaseContext, optimizer: torch.optim.Optimizer
    ) -> list[Architecture]:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None

    # -- shared --------------------------------------------------------------------------------
    def weight_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = batch.loss(self.net)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(self.net.parameters(), _GRAD_CLIP)
        optimizer.step()
        return float(loss.detach())

    def valid(self, indices: Sequence[int]) -> bool:
        return self.net.arch_of(indices) is not None

    def distinct(self, candidates: Any, k: int) -> list[Architecture]:
        """The first ``k`` architectures of ``candidates`` (index lists), one per class."""
        out: list[Architecture] = []
        keys: set[str] = set()
        space = self.net.space
        for indices in candidates:
            arch = self.net.arch_of(indices)
            if arch is None:
                continue
            key = space.canonical_key(arch)
            if key not in keys:
                keys.add(key)
                out.append(space.canonicalize(arch))
                if len(out) == k:
                    break
        return out

    def uniform_path(self) -> list[int]:
        for _ in range(_MAX_RESAMPLES):
            indices = [
                int(torch.randint(len(d.options), (1,), generator=self.generator))
                for d in self.net.decisions
            ]
            if self.valid(indices):
                return indices
        raise RuntimeError("no valid path found in the supernet's decisions")

    def path_record(self, indices: Sequence[int], *, scored: bool) -> dict[str, Any]:
        arch = self.net.arch_of(indices)
        assert arch is not None
        record: dict[str, Any] = {
            "derived": self.net.space.canonicalize(arch).to_dict(),
            "free": self.net.free_fraction(arch),
        }
        if scored:
            record["val_acc"] = recalibrated_accuracy(self.net, indices, self.data, _CALIBRATION)
        return record


class _Learned(Rule):
    """Rules with architecture parameters (one logit vector per decision, and one per group
    of summed decisions with ``edge_norm``)."""

    edge_norm = False

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        strategy = self.strategy
        self.alphas = [
            (1e-3 * torch.randn(len(d.options), generator=self.generator)).requires_grad_()
            for d in self.net.decisions
        ]
        # PC-DARTS's edge normalisation: one logit per decision of each group a node sums
        self.groups = [g for g in self.net.summed if len(g) > 1] if self.edge_norm else []
        self.betas = [
            (1e-3 * torch.randn(len(g), generator=self.generator)).requires_grad_()
            for g in self.groups
        ]
        self.arch_params = [*self.alphas, *self.betas]
        self.arch_optimizer = torch.optim.Adam(
            self.arch_params,
            lr=strategy.arch_lr,  # type: ignore[attr-defined]
            betas=(0.5, 0.999),
            weight_decay=strategy.arch_weight_decay,  # type: ignore[attr-defined]
        )

    def probs(self) -> list[Tensor]:
        return [a.detach().softmax(0) for a in self.alphas]

    def argmax(self) -> list[int]:
        return next(best_assignments([p.tolist() for p in self.probs()], self.valid))

    def epoch_record(self, epoch: int, *, scored: bool) -> dict[str, Any]:
        record = self.path_record(self.argmax(), scored=scored)
        record["weights"] = {
            d.name: [round(float(v), 5) for v in p]
            for d, p in zip(self.net.decisions, self.probs(), strict=True)
        }
        if self.groups:
            record["edge_weights"] = {
                "+".join(self.net.decisions[d].name for d in g): [
                    round(float(v), 5) for v in b.detach().softmax(0)
                ]
                for g, b in zip(self.groups, self.betas, strict=True)
            }
        return record

    def derive(
        self, k: int, context: PhaseContext, optimizer: torch.optim.Optimizer
    ) -> list[Architecture]:
        return self.distinct(best_assignments([p.tolist() for p in self.probs()], self.valid), k)

    def state(self) -> dict[str, Any]:
        return {
            "alphas": [a.detach().clone() for a in self.arch_params],
            "arch_optimizer": self.arch_optimizer.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for a, saved in zip(self.arch_params, state["alphas"], strict=True):
                a.copy_(saved)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])

    def arch_step(self, grads: Sequence[Tensor | None]) -> None:
        """One Adam step of the architecture parameters (``grads``: one per parameter of
        ``arch_params``; ``None``: zero)."""
        self.arch_optimizer.zero_grad(set_to_none=True)
        for a, g in zip(self.arch_params, grads, strict=True):
            a.grad = torch.zeros_like(a) if g is None else g
        self.arch_optimizer.step()


class DartsRule(_Learned):
    """DARTS: a mixture of every option, bilevel (see the module docstring). With
    ``edge_norm`` (PC-DARTS) each decision's mixture is scaled by its edge weight."""

    def derive(
        self, k: int, context: PhaseContext, optimizer: torch.optim.Optimizer
    ) -> list[Architecture]:
        if self.strategy.selection != "perturbation":  # type: ignore[attr-defined]
            return super().derive(k, context, optimizer)
        chosen = _Perturbation(self, context).select(optimizer)
        ranked = best_assignments([p.tolist() for p in self.probs()], self.valid)
        return self.distinct(itertools.chain([chosen], ranked), k)

    def route_weights(self, *, grad: bool) -> list[Tensor]:
        """What each decision's options are weighted with: their softmax, times the
        decision's edge weight where edges are normalised."""
        weights = [a.softmax(0) if grad else a.detach().softmax(0) for a in self.alphas]
        for group, beta in zip(self.groups, self.betas, strict=True):
            b = beta.softmax(0) if grad else beta.detach().softmax(0)
            for d, w in zip(group, b, strict=True):
                weights[d] = weights[d] * w
        return weights

    def mix(self, *, grad: bool) -> None:
        self.net.route([Route(p, tuple(range(len(p)))) for p in self.route_weights(grad=grad)])

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        val = self.data.val_batch()
        if self.strategy.order == 2:  # type: ignore[attr-defined]
            grads = self._unrolled(batch, val, optimizer)
        else:
            self.mix(grad=True)
            grads = list(
                torch.autograd.grad(val.loss(self.net), self.arch_params, allow_unused=True)
            )
        self.arch_step(grads)
        self.mix(grad=False)
        return self.weight_step(batch, optimizer)

    def _unrolled(
        self, batch: Batch, val: Batch, optimizer: torch.optim.Optimizer
    ) -> list[Tensor | None]:
        """The second-order approximation: the validation gradient at the weights after one
        virtual SGD step, minus ``xi`` times the mixed second derivative by central finite
        differences (DARTS, eq. 7-8)."""
        params = [p for p in self.net.parameters() if p.requires_grad]
        xi = optimizer.param_groups[0]["lr"]
        decay = self.train.weight_decay
        saved = [p.detach().clone() for p in params]
        self.mix(grad=False)
        grads = torch.autograd.grad(batch.loss(self.net), params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(xi * ((0 if g is None else g) + decay * p))
        self.mix(grad=True)
        arch = self.arch_params
        found = torch.autograd.grad(val.loss(self.net), [*arch, *params], allow_unused=True)
        d_alpha, d_w = found[: len(arch)], found[len(arch) :]
        norm = torch.sqrt(sum(((g**2).sum() for g in d_w if g is not None), torch.tensor(0.0)))
        eps = 0.01 / max(float(norm), 1e-12)

        def train_grad(sign: float) -> list[Tensor | None]:
            with torch.no_grad():
                for p, w, g in zip(params, saved, d_w, strict=True):
                    p.copy_(w if g is None else w + sign * eps * g)
            self.mix(grad=True)
            return list(torch.autograd.grad(batch.loss(self.net), arch, allow_unused=True))

        plus, minus = train_grad(1.0), train_grad(-1.0)
        with torch.no_grad():
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
        out: list[Tensor | None] = []
        for d, gp, gm in zip(d_alpha, plus, minus, strict=True):
            hess = None if gp is None or gm is None else (gp - gm) / (2 * eps)
            if d is None:
                out.append(None if hess is None else -xi * hess)
            else:
                out.append(d if hess is None else d - xi * hess)
        return out


class PcDartsRule(DartsRule):
    """PC-DARTS: DARTS (on the partial-channel supernet the strategy asks for) with edge
    normalisation."""

    edge_norm = True


class _Perturbation:
    """DARTS-PT's selection on a trained DARTS supernet (see :class:`~nasforge.strategies.
    oneshot.Darts`): decisions in a random order; at each, every option is removed from the
    mixture in turn (the others' weights renormalised) and the one whose removal costs the
    most validation accuracy is fixed; the supernet then trains ``tune_epochs`` epochs with
    the fixed decisions routed to their option."""

    def __init__(self, rule: DartsRule, context: PhaseContext) -> None:
        self.rule, self.context = rule, context
        self.fixed: dict[int, int] = {}

    def routes(self, removed: tuple[int, int] | None = None) -> list[Route]:
        """The mixture with the fixed decisions one-hot and option ``removed`` (decision,
        option) left out, the others' weights renormalised (each decision keeping its total,
        its edge weight under edge normalisation)."""
        out = []
        for d, p in enumerate(self.rule.route_weights(grad=False)):
            total = p.sum()
            if d in self.fixed:
                one = torch.zeros_like(p)
                one[self.fixed[d]] = total
                out.append(Route(one, (self.fixed[d],)))
                continue
            keep = [i for i in range(len(p)) if removed is None or removed != (d, i)]
            w = torch.zeros_like(p)
            w[keep] = p[keep] / p[keep].sum() * total
            out.append(Route(w, tuple(keep)))
        return out

    def accuracy(self, removed: tuple[int, int] | None = None) -> float:
        self.rule.net.route(self.routes(removed))
        return self.rule.data.accuracy(self.rule.net)

    def select(self, optimizer: torch.optim.Optimizer) -> list[int]:
        rule, net = self.rule, self.rule.net
        open_ = [d for d, dec in enumerate(net.decisions) if len(dec.options) > 1]
        perm = torch.randperm(len(open_), generator=rule.generator).tolist()
        for d in (d for d, dec in enumerate(net.decisions) if len(dec.options) == 1):
            self.fixed[d] = 0
        for step, d in enumerate((open_[i] for i in perm), start=1):
            base = self.accuracy()
            drops = {i: base - self.accuracy((d, i)) for i in range(len(net.decisions[d].options))}
            ranked = sorted(drops, key=lambda i: -drops[i])
            chosen = next((i for i in ranked if self._possible(d, i)), ranked[0])
            self.fixed[d] = chosen
            record = {
                "decision": net.decisions[d].name,
                "accuracy": base,
                "drops": {str(net.decisions[d].options[i]): drops[i] for i in ranked},
                "chosen": str(net.decisions[d].options[chosen]),
            }
            self.context.store.put_phase(self.context.experiment_id, "selection", step, record)
            for _ in range(rule.strategy.tune_epochs):  # type: ignore[attr-defined]
                net.train()
                for batch in rule.data.train_batches():
                    net.route(self.routes())
                    rule.weight_step(batch, optimizer)
        return [self.fixed[d] for d in range(len(net.decisions))]

    def _possible(self, d: int, option: int) -> bool:
        """Whether some completion of the fixed decisions with ``d = option`` is valid."""
        fixed = {**self.fixed, d: option}
        probs = [
            [1.0 if i == fixed[k] else 0.0 for i in range(len(p))] if k in fixed else p.tolist()
            for k, p in enumerate(self.rule.probs())
        ]
        return next(best_assignments(probs, self.rule.valid, limit=2000), None) is not None


class GdasRule(_Learned):
    """GDAS: one Gumbel-softmax sample per decision, computed alone (straight-through)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.tau: float = self.strategy.tau_max  # type: ignore[attr-defined]

    def _sample(self) -> tuple[list[int], list[Tensor]]:
        for _ in range(_MAX_RESAMPLES):
            indices, weights = [], []
            for a in self.alphas:
                u = torch.rand(a.shape, generator=self.generator).clamp(1e-10, 1 - 1e-10)
                soft = ((a.log_softmax(0) - torch.log(-torch.log(u))) / self.tau).softmax(0)
                i = int(soft.detach().argmax())
                hard = torch.zeros_like(soft)
                hard[i] = 1.0
                indices.append(i)
                weights.append(hard - soft.detach() + soft)
            if self.valid(indices):
                return indices, weights
        raise RuntimeError("no valid path sampled in the supernet's decisions")

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        indices, weights = self._sample()
        self.net.route_indices(indices, weights)
        grads = torch.autograd.grad(
            self.data.val_batch().loss(self.net), self.alphas, allow_unused=True
        )
        self.arch_step(grads)
        indices, weights = self._sample()
        self.net.route_indices(indices, [w.detach() for w in weights])
        return self.weight_step(batch, optimizer)

    def epoch_record(self, epoch: int, *, scored: bool) -> dict[str, Any]:
        record = super().epoch_record(epoch, scored=scored)
        record["tau"] = round(self.tau, 6)
        # the temperature of the next epoch: linear from tau_max to tau_min
        s = self.strategy
        frac = epoch / max(self.epochs - 1, 1)
        self.tau = s.tau_max - (s.tau_max - s.tau_min) * min(frac, 1.0)  # type: ignore[attr-defined]
        return record

    def state(self) -> dict[str, Any]:
        return {**super().state(), "tau": self.tau}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.tau = float(state["tau"])


class SposRule(Rule):
    """SPOS: uniform single paths; evolution over subnets at the end."""

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        self.net.route_indices(self.uniform_path())
        return self.weight_step(batch, optimizer)

    def derive(
        self, k: int, context: PhaseContext, optimizer: torch.optim.Optimizer
    ) -> list[Architecture]:
        s = self.strategy
        space = self.net.space
        scores: dict[str, tuple[float, list[int]]] = {}  # canonical key -> (val_acc, indices)
        calibration = s.calibration_batches  # type: ignore[attr-defined]

        def score(indices: list[int]) -> bool:
            arch = self.net.arch_of(indices)
            if arch is None:
                return False
            key = space.canonical_key(arch)
            if key in scores:
                return False
            acc = recalibrated_accuracy(self.net, indices, self.data, calibration)
            scores[key] = (acc, self.net.indices(arch))
            return True

        population: int = s.population  # type: ignore[attr-defined]
        tries = 0
        while len(scores) < population and tries < 50 * population:
            tries += 1
            score(self.uniform_path())
        generations: int = s.generations  # type: ignore[attr-defined]
        for generation in range(1, generations + 1):
            ranked = sorted(scores.values(), key=lambda t: -t[0])
            parents = [ix for _, ix in ranked[: s.parents]]  # type: ignore[attr-defined]
            born, tries = 0, 0
            while born < population and tries < 50 * population:
                tries += 1
                if tries % 2 and len(parents) > 1:
                    a, b = self._pick(parents), self._pick(parents)
                    child = [
                        x if float(torch.rand((), generator=self.generator)) < 0.5 else y
                        for x, y in zip(a, b, strict=True)
                    ]
                else:
                    child = self._mutate(self._pick(parents))
                born += score(child)
            best_acc, best = max(scores.values(), key=lambda t: t[0])
            arch = self.net.arch_of(best)
            assert arch is not None
            record = {
                "generation": generation,
                "scored": len(scores),
                "best_val_acc": best_acc,
                "best": space.canonicalize(arch).to_dict(),
            }
            context.store.put_phase(context.experiment_id, "generation", generation, record)
            if context.report is not None:
                context.report(PhaseProgress("generation", generation, generations, record))
        ranked = sorted(scores.values(), key=lambda t: -t[0])
        return self.distinct((ix for _, ix in ranked), k)

    def _pick(self, parents: list[list[int]]) -> list[int]:
        return parents[int(torch.randint(len(parents), (1,), generator=self.generator))]

    def _mutate(self, parent: list[int]) -> list[int]:
        p: float = self.strategy.mutation_prob  # type: ignore[attr-defined]
        child = list(parent)
        for d, decision in enumerate(self.net.decisions):
            if float(torch.rand((), generator=self.generator)) < p:
                child[d] = int(torch.randint(len(decision.options), (1,), generator=self.generator))
        return child


class EnasRule(Rule):
    """ENAS: paths sampled by an LSTM controller trained with REINFORCE on shared weights."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        s = self.strategy
        seed = int(torch.randint(2**31, (1,), generator=self.generator))
        self.policy = _Policy(
            [len(d.options) for d in self.net.decisions],
            hidden_size=s.hidden_size,  # type: ignore[attr-defined]
            temperature=s.temperature,  # type: ignore[attr-defined]
            tanh_constant=s.tanh_constant,  # type: ignore[attr-defined]
            lr=s.controller_lr,  # type: ignore[attr-defined]
            seed=seed,
        )
        self.rng = np.random.default_rng(seed)
        self.baseline: float | None = None

    def sample(self, n: int) -> list[list[int]]:
        """``n`` valid paths from the controller (a uniform path where it gives none)."""
        out: list[list[int]] = []
        for tokens in self.policy.sample(self.rng, 4 * n):
            if self.valid(tokens):
                out.append([int(t) for t in tokens])
                if len(out) == n:
                    return out
        return out + [self.uniform_path() for _ in range(n - len(out))]

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        self.net.route_indices(self.sample(1)[0])
        return self.weight_step(batch, optimizer)

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        s = self.strategy
        rewards = []
        for _ in range(s.controller_steps):  # type: ignore[attr-defined]
            (path,) = self.sample(1)
            self.net.route_indices(path)
            batch = self.data.val_batch()
            self.net.train()  # batch statistics, as during training
            with torch.no_grad():
                hits = batch.logits(self.net).argmax(-1) == batch.target
            reward = float(hits.float().mean())
            rewards.append(reward)
            decay = s.baseline_decay  # type: ignore[attr-defined]
            self.baseline = (
                reward if self.baseline is None else decay * self.baseline + (1 - decay) * reward
            )
            self.policy.update(
                np.array([path]),
                np.array([reward - self.baseline]),
                s.entropy_weight,  # type: ignore[attr-defined]
            )
        return {"reward": sum(rewards) / len(rewards), "baseline": self.baseline}

    def greedy(self) -> list[int]:
        """The controller's most probable token at each step (given the ones before)."""
        tokens: list[int] = []
        for _ in self.net.decisions:
            tokens.append(int(np.argmax(self.policy.probabilities(tokens))))
        return tokens if self.valid(tokens) else self.sample(1)[0]

    def epoch_record(self, epoch: int, *, scored: bool) -> dict[str, Any]:
        return self.path_record(self.greedy(), scored=scored)

    def derive(
        self, k: int, context: PhaseContext, optimizer: torch.optim.Optimizer
    ) -> list[Architecture]:
        s = self.strategy
        paths = [self.greedy(), *self.sample(s.derive_samples)]  # type: ignore[attr-defined]
        scores: dict[str, tuple[float, list[int]]] = {}
        for path in paths:
            arch = self.net.arch_of(path)
            assert arch is not None
            key = self.net.space.canonical_key(arch)
            if key not in scores:
                acc = recalibrated_accuracy(
                    self.net,
                    path,
                    self.data,
                    s.calibration_batches,  # type: ignore[attr-defined]
                )
                scores[key] = (acc, path)
        ranked = sorted(scores.values(), key=lambda t: -t[0])
        return self.distinct((p for _, p in ranked), k)

    def state(self) -> dict[str, Any]:
        return {
            "policy": [p.detach().clone() for p in self.policy.parameters()],
            "optimizer": self.policy.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "baseline": self.baseline,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, saved in zip(self.policy.parameters(), state["policy"], strict=True):
                p.copy_(saved)
        self.policy.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.baseline = state["baseline"]


class ProxylessRule(_Learned):
    """ProxylessNAS: binarised paths and an expected-latency loss (see
    :class:`~nasforge.strategies.oneshot.ProxylessNas`)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.table = self.strategy.evaluator.latency_table()
        # the supernet's exact expectation where it has one, else a linearisation
        self.exact = self.net.expected_terms(self.probs()) is not None
        self.base, self.deltas = self._latencies()
        ref = self.strategy.latency_ref_ms  # type: ignore[attr-defined]
        self.ref: float = float(self.expected_latency(grad=False)) if ref is None else ref

    def _latencies(self) -> tuple[float, list[Tensor]]:
        """The predicted latency of the most probable architecture, and per decision each
        option's change to it when swapped in (0 where the swap is not valid; none needed
        where the supernet gives the expectation exactly)."""
        ref = self.argmax()
        arch = self.net.arch_of(ref)
        assert arch is not None
        base = self.table.predict(arch)
        deltas: list[Tensor] = []
        if self.exact:
            return base, deltas
        for d, decision in enumerate(self.net.decisions):
            delta = torch.zeros(len(decision.options))
            for i in range(len(decision.options)):
                swapped = self.net.arch_of([*ref[:d], i, *ref[d + 1 :]])
                if swapped is not None and i != ref[d]:
                    delta[i] = self.table.predict(swapped) - base
            deltas.append(delta)
        return base, deltas

    def expected_latency(self, *, grad: bool) -> Tensor:
        """The latency (ms) expected under the architecture distribution."""
        if self.exact:
            probs = [a.softmax(0) if grad else a.detach().softmax(0) for a in self.alphas]
            terms = self.net.expected_terms(probs)
            assert terms is not None
            entries = self.table.entries
            counts = {**terms, **({CALL: torch.ones(())} if CALL in entries else {})}
            return sum((entries[name] * n for name, n in counts.items()), torch.zeros(()))
        total = torch.tensor(self.base)
        for a, delta in zip(self.alphas, self.deltas, strict=True):
            p = a.softmax(0) if grad else a.detach().softmax(0)
            total = total + (p * delta).sum()
        return total

    def _path(self) -> list[int]:
        """One option per decision drawn from the distribution (valid)."""
        probs = self.probs()
        for _ in range(_MAX_RESAMPLES):
            indices = [int(torch.multinomial(p, 1, generator=self.generator)) for p in probs]
            if self.valid(indices):
                return indices
        return self.argmax()

    def _gates(self) -> list[Route]:
        """Two options drawn per decision, one of them opened (the open ones a valid path):
        routes computing both, weighted by straight-through gates (BinaryConnect's
        estimator: the gradient reaches the two options' parameters through their
        renormalised softmax)."""
        for _ in range(_MAX_RESAMPLES):
            opened, routes = [], []
            for a in self.alphas:
                k = len(a)
                pair = torch.multinomial(a.detach().softmax(0), min(2, k), generator=self.generator)
                p = a[pair].softmax(0)
                j = int(torch.multinomial(p.detach(), 1, generator=self.generator))
                hard = torch.zeros_like(p)
                hard[j] = 1.0
                weights = torch.zeros(k).index_put((pair,), hard - p.detach() + p)
                opened.append(int(pair[j]))
                routes.append(Route(weights, tuple(sorted(int(i) for i in pair))))
            if self.valid(opened):
                return routes
        raise RuntimeError("no valid path sampled in the supernet's decisions")

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        self.net.route(self._gates())
        loss = self.data.val_batch().loss(self.net)
        lam: float = self.strategy.latency_weight  # type: ignore[attr-defined]
        if lam:
            loss = loss + lam * self.expected_latency(grad=True) / self.ref
        self.arch_step(torch.autograd.grad(loss, self.alphas, allow_unused=True))
        self.net.route_indices(self._path())
        return self.weight_step(batch, optimizer)

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        self.base, self.deltas = self._latencies()
        return {
            "expected_latency_ms": round(float(self.expected_latency(grad=False)), 5),
            "latency_pred_ms": round(self.base, 5),
            "latency_ref_ms": round(self.ref, 5),
        }

    def state(self) -> dict[str, Any]:
        return {**super().state(), "ref": self.ref}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.ref = float(state["ref"])
        self.base, self.deltas = self._latencies()


_RULES: dict[str, type[Rule]] = {
    "darts": DartsRule,
    "pc-darts": PcDartsRule,
    "proxylessnas": ProxylessRule,
    "gdas": GdasRule,
    "spos": SposRule,
    "enas": EnasRule,
}


def make_method(
    strategy: OneShotStrategy,
    net: Supernet,
    data: PhaseData,
    train: TrainConfig,
    generator: torch.Generator,
) -> Rule:
    """The training rule of the one-shot strategy ``strategy`` (by its name)."""
    return _RULES[strategy.name](strategy, net, data, train, generator)

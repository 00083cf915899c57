"""The training rules of the one-shot methods, on a routed supernet.

* :class:`DartsRule`: softmax mixtures; architecture parameters by Adam on the validation
  loss, first order or with the finite-difference second-order term (DARTS, section 2.3);
* :class:`GdasRule`: one Gumbel-softmax sample per decision and step, straight-through;
* :class:`SposRule`: uniform single paths, then evolution over subnets scored on the shared
  weights with recalibrated BatchNorm.

Every random draw comes from the phase's ``torch.Generator`` so that a phase resumed from its
checkpoint continues exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nasforge.architecture import Architecture
from nasforge.oneshot import PhaseContext, PhaseProgress
from nasforge.oneshot.data import Batch, PhaseData, recalibrated_accuracy
from nasforge.spaces.supernet import Route, Supernet, best_assignments
from nasforge.train.trainer import TrainConfig

if TYPE_CHECKING:
    from nasforge.strategies.oneshot import OneShotStrategy

__all__ = ["DartsRule", "GdasRule", "SposRule", "make_method"]

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

    def epoch_record(self, epoch: int, *, scored: bool) -> dict[str, Any]:
        """What to store of epoch ``epoch``; ``scored``: include the derived architecture's
        validation accuracy on the shared weights."""
        return {}

    def derive(self, k: int, context: PhaseContext) -> list[Architecture]:
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
    """Rules with architecture parameters (one logit vector per decision)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        strategy = self.strategy
        self.alphas = [
            (1e-3 * torch.randn(len(d.options), generator=self.generator)).requires_grad_()
            for d in self.net.decisions
        ]
        self.arch_optimizer = torch.optim.Adam(
            self.alphas,
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
        return record

    def derive(self, k: int, context: PhaseContext) -> list[Architecture]:
        return self.distinct(best_assignments([p.tolist() for p in self.probs()], self.valid), k)

    def state(self) -> dict[str, Any]:
        return {
            "alphas": [a.detach().clone() for a in self.alphas],
            "arch_optimizer": self.arch_optimizer.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for a, saved in zip(self.alphas, state["alphas"], strict=True):
                a.copy_(saved)
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])

    def arch_step(self, grads: Sequence[Tensor | None]) -> None:
        self.arch_optimizer.zero_grad(set_to_none=True)
        for a, g in zip(self.alphas, grads, strict=True):
            a.grad = torch.zeros_like(a) if g is None else g
        self.arch_optimizer.step()


class DartsRule(_Learned):
    """DARTS: a mixture of every option, bilevel (see the module docstring)."""

    def mix(self, *, grad: bool) -> None:
        probs = [a.softmax(0) if grad else a.detach().softmax(0) for a in self.alphas]
        self.net.route([Route(p, tuple(range(len(p)))) for p in probs])

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        val = self.data.val_batch()
        if self.strategy.order == 2:  # type: ignore[attr-defined]
            grads = self._unrolled(batch, val, optimizer)
        else:
            self.mix(grad=True)
            grads = list(torch.autograd.grad(val.loss(self.net), self.alphas, allow_unused=True))
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
        found = torch.autograd.grad(val.loss(self.net), [*self.alphas, *params], allow_unused=True)
        d_alpha, d_w = found[: len(self.alphas)], found[len(self.alphas) :]
        norm = torch.sqrt(sum(((g**2).sum() for g in d_w if g is not None), torch.tensor(0.0)))
        eps = 0.01 / max(float(norm), 1e-12)

        def train_grad(sign: float) -> list[Tensor | None]:
            with torch.no_grad():
                for p, w, g in zip(params, saved, d_w, strict=True):
                    p.copy_(w if g is None else w + sign * eps * g)
            self.mix(grad=True)
            return list(torch.autograd.grad(batch.loss(self.net), self.alphas, allow_unused=True))

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


class GdasRule(_Learned):
    """GDAS: one Gumbel-softmax sample per decision, computed alone (straight-through)."""

    tau = 10.0

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

    def derive(self, k: int, context: PhaseContext) -> list[Architecture]:
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


_RULES: dict[str, type[Rule]] = {"darts": DartsRule, "gdas": GdasRule, "spos": SposRule}


def make_method(
    strategy: OneShotStrategy,
    net: Supernet,
    data: PhaseData,
    train: TrainConfig,
    generator: torch.Generator,
) -> Rule:
    """The training rule of ``strategy.method``."""
    rule = _RULES[strategy.method](strategy, net, data, train, generator)
    if isinstance(rule, GdasRule):
        rule.tau = strategy.tau_max  # type: ignore[attr-defined]
    return rule

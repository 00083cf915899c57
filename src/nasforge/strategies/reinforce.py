"""A recurrent controller trained with REINFORCE (Zoph & Le, "Neural Architecture Search with
Reinforcement Learning", ICLR 2017), as applied to GNNs by GraphNAS (Gao et al., "GraphNAS:
Graph Neural Architecture Search with Reinforcement Learning", IJCAI 2020) and Auto-GNN (Zhou
et al., "Auto-GNN: Neural Architecture Search of Graph Neural Networks", 2019).

torch is imported on first use, not with this module: the registry imports every strategy at
start-up and benchmark look-ups must not pay for torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import ConfigError, InvalidArchitectureError
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_positive_int

if TYPE_CHECKING:
    import torch

__all__ = ["Reinforce"]

_SAMPLES_PER_PROPOSAL = 32
"""Policy samples drawn at once per proposal; the first valid unseen one is proposed."""

_INIT_SCALE = 0.1
"""Controller weights start uniform in [-0.1, 0.1], as in ENAS and GraphNAS."""


def _check_real(name: str, value: object, rule: str, ok: Callable[[float], bool]) -> float:
    """Validate a real-valued option: a finite int or float for which ``ok`` holds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise ConfigError(f"{name} must be {rule}, got {value!r}")
    return float(value)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, restoring the count afterwards.

    The controller's tensors are tiny: threads buy nothing, and when the cores are busy
    (worker processes training, another job) OpenMP's waiting makes every op up to ~100x
    slower. One thread also makes the numbers independent of the machine's core count.
    """
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Policy:
    """The controller: an LSTM cell emitting one categorical token per searched parameter.

    Step ``p`` feeds the embedding of the token chosen at step ``p - 1`` (a learned start
    vector at step 0) to the cell and reads parameter ``p``'s logits from its own linear head;
    each parameter has its own embedding table. Logits are ``tanh_constant * tanh(z / T)``
    (plain ``z / T`` without ``tanh_constant``), ``z`` the head's output.

    Args:
        sizes: Number of choices of each searched parameter, in order.
        hidden_size: Width of the LSTM cell and of the embeddings.
        temperature: ``T`` above.
        tanh_constant: Bound of the logits, or ``None`` for unbounded logits.
        lr: Adam's learning rate.
        seed: Seed of the ``torch.Generator`` that initialises the weights.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        hidden_size: int,
        temperature: float,
        tanh_constant: float | None,
        lr: float,
        seed: int,
    ) -> None:
        import torch
        from torch import nn

        self.sizes = list(sizes)
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        # built on the meta device, so the global torch RNG is left alone; our generator
        # then draws every weight
        self.cell = nn.LSTMCell(hidden_size, hidden_size, device="meta").to_empty(device="cpu")
        self.embeds = [
            nn.Embedding(k, hidden_size, device="meta").to_empty(device="cpu") for k in self.sizes
        ]
        self.heads = [
            nn.Linear(hidden_size, k, device="meta").to_empty(device="cpu") for k in self.sizes
        ]
        self.start = nn.Parameter(torch.empty(1, hidden_size))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in self.parameters():
                param.uniform_(-_INIT_SCALE, _INIT_SCALE, generator=gen)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr, foreach=True)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Every trainable tensor of the controller, in a fixed order."""
        modules: list[torch.nn.Module] = [self.cell, *self.embeds, *self.heads]
        return [self.start, *(p for m in modules for p in m.parameters())]

    def _logits(self, p: int, h: torch.Tensor) -> torch.Tensor:
        import torch

        z: torch.Tensor = self.heads[p](h) / self.temperature  # (B, K_p)
        if self.tanh_constant is not None:
            z = self.tanh_constant * torch.tanh(z)
        return z

    def _steps(self, n: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        import torch

        hidden = self.start.shape[1]
        zeros = torch.zeros(n, hidden)
        return self.start.expand(n, hidden), (zeros, zeros)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent token sequences drawn from the policy, (n, P) choice indices.

        The draws use ``rng`` (inverse CDF of each softmax), so they repeat for a seed.
        """
        import torch

        out = np.zeros((n, len(self.sizes)), dtype=np.int64)
        with _one_thread(), torch.no_grad():
            x, state = self._steps(n)
            for p, k in enumerate(self.sizes):
                state = self.cell(x, state)
                probs = torch.softmax(self._logits(p, state[0]), dim=1).double().numpy()  # (n, K)
                cdf = np.cumsum(probs, axis=1)
                u = rng.random(n)[:, None] * cdf[:, -1:]
                out[:, p] = np.minimum((cdf <= u).sum(axis=1), k - 1)
                x = self.embeds[p](torch.from_numpy(out[:, p]))
        return out

    def probabilities(self, prefix: Sequence[int]) -> np.ndarray:
        """The distribution of the next token after ``prefix`` (fewer than P indices)."""
        import torch

        with _one_thread(), torch.no_grad():
            x, state = self._steps(1)
            for p, index in enumerate(prefix):
                state = self.cell(x, state)
                x = self.embeds[p](torch.tensor([index]))
            state = self.cell(x, state)
            logits = self._logits(len(prefix), state[0])
            return torch.softmax(logits, dim=1)[0].double().numpy()

    def update(self, tokens: np.ndarray, advantages: np.ndarray, entropy_weight: float) -> None:
        """One Adam step on ``-mean(A * log pi(tokens)) - entropy_weight * mean(H)``.

        Args:
            tokens: (B, P) choice indices of the architectures.
            advantages: (B,) reward minus baseline of each.
            entropy_weight: Weight of the entropy bonus.
        """
        import torch

        with _one_thread():
            idx = torch.from_numpy(tokens)  # (B, P)
            n = idx.shape[0]
            x, state = self._steps(n)
            log_prob = torch.zeros(n)
            entropy = torch.zeros(n)
            for p in range(len(self.sizes)):
                state = self.cell(x, state)
                log_sm = torch.log_softmax(self._logits(p, state[0]), dim=1)  # (B, K_p)
                log_prob = log_prob + log_sm.gather(1, idx[:, p : p + 1]).squeeze(1)
                entropy = entropy - (log_sm.exp() * log_sm).sum(dim=1)
                x = self.embeds[p](idx[:, p])
            adv = torch.from_numpy(advantages.astype(np.float32))
            loss = -(adv * log_prob).mean() - entropy_weight * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()


class Reinforce(Strategy):
    """An LSTM controller sampling architectures, trained by policy gradient (REINFORCE).

    The controller emits one token per parameter of ``space.choices()`` in order (parameters
    with a single value are fixed, not emitted); see :class:`_Policy`. After every
    ``batch_size`` told results it takes one Adam step on the REINFORCE loss with a
    moving-average baseline (Zoph & Le 2017; GraphNAS, Gao et al. 2020; Auto-GNN, Zhou et al.
    2019) plus an entropy bonus:

    * the reward is the told score (the objective oriented so that larger is better);
    * a failed result (score -inf) is rewarded ``worst - (best - worst)`` over the finite
      scores told so far (at most the worst); before any finite score it teaches nothing;
    * the advantage is the reward minus the baseline ``b``, which then moves towards the
      reward: ``b <- decay * b + (1 - decay) * reward`` (``b`` starts at the first reward);
    * the log-probability is that of the told architecture's own choices under the current
      policy, recomputed at update time, so results the strategy did not propose (a resumed
      history, duplicates answered from the store, fallback samples) train it as well.

    Each proposal draws ``32`` sequences from the policy with the proposal's random stream and
    returns the first that is a valid architecture not proposed or told before; when none is,
    it falls back to a uniform unseen architecture (``None`` once the space is exhausted).
    Every random choice, the weights' initialisation included, derives from ``seed``, so the
    same seed and the same results told in the same order give the same proposals.

    Args:
        hidden_size: Width of the LSTM cell and of the token embeddings.
        lr: Adam's learning rate (GraphNAS uses 3.5e-4 over thousands of samples; the default
            is larger so that the policy moves within a budget of 100s).
        baseline_decay: Decay of the moving-average baseline, in [0, 1).
        entropy_weight: Weight of the entropy bonus (>= 0).
        temperature: Divides the logits (> 0).
        tanh_constant: Logits become ``tanh_constant * tanh(logits)``, bounding how sure the
            policy can get (> 0), or ``None`` for unbounded logits.
        batch_size: Told results per policy update.
    """

    name = "reinforce"

    def __init__(
        self,
        space: SearchSpace,
        *,
        objective: Objective,
        seed: int | None = None,
        hidden_size: int = 64,
        lr: float = 0.02,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-4,
        temperature: float = 5.0,
        tanh_constant: float | None = 2.5,
        batch_size: int = 1,
    ) -> None:
        super().__init__(space, objective=objective, seed=seed)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.lr = _check_real("lr", lr, "a finite number > 0", lambda v: v > 0)
        self.baseline_decay = _check_real(
            "baseline_decay", baseline_decay, "a number in [0, 1)", lambda v: 0 <= v < 1
        )
        self.entropy_weight = _check_real(
            "entropy_weight", entropy_weight, "a finite number >= 0", lambda v: v >= 0
        )
        self.temperature = _check_real(
            "temperature", temperature, "a finite number > 0", lambda v: v > 0
        )
        self.tanh_constant = (
            None
            if tanh_constant is None
            else _check_real(
                "tanh_constant",
                tanh_constant,
                "a finite number > 0, or None for unbounded logits",
                lambda v: v > 0,
            )
        )
        self.batch_size = check_positive_int("batch_size", batch_size)
        if type(space).to_choices is SearchSpace.to_choices:
            raise ConfigError(
                f"strategy 'reinforce' needs a space whose architectures it can read back as "
                f"choices (SearchSpace.to_choices); {space.name!r} ({type(space).__name__}) "
                "does not provide it"
            )
        choices: Mapping[str, Sequence[Any]] = space.choices()
        self._fixed = {name: values[0] for name, values in choices.items() if len(values) == 1}
        self._searched = [
            (name, list(values)) for name, values in choices.items() if len(values) > 1
        ]
        self._index = [{value: i for i, value in enumerate(values)} for _, values in self._searched]
        self._policy: _Policy | None = None
        self.baseline: float | None = None
        self._best = -math.inf
        self._worst = math.inf
        self._pending: list[tuple[np.ndarray, float]] = []  # (tokens, score) since last update
        self.updates = 0

    # -- the policy -----------------------------------------------------------------------------
    @property
    def policy(self) -> _Policy:
        """The controller (built, and torch imported, on first use)."""
        if self._policy is None:
            self._policy = _Policy(
                [len(values) for _, values in self._searched],
                hidden_size=self.hidden_size,
                temperature=self.temperature,
                tanh_constant=self.tanh_constant,
                lr=self.lr,
                seed=self._entropy % 2**63,
            )
        return self._policy

    def tokens_of(self, arch: Architecture) -> np.ndarray:
        """The controller's tokens (choice indices of the searched parameters) for ``arch``."""
        params = self.space.to_choices(arch)
        return np.array(
            [
                index[params[name]]
                for (name, _), index in zip(self._searched, self._index, strict=True)
            ],
            dtype=np.int64,
        )

    def arch_of(self, tokens: np.ndarray) -> Architecture:
        """The architecture that ``tokens`` describe.

        Raises:
            InvalidArchitectureError: If the combination is not valid in the space.
        """
        params = dict(self._fixed)
        for (name, values), token in zip(self._searched, tokens, strict=True):
            params[name] = values[int(token)]
        return self.space.from_choices(params)

    def choice_probabilities(self, prefix: Sequence[Any] = ()) -> dict[Any, float]:
        """The policy's distribution over the next searched parameter's values after ``prefix``
        (values of the first searched parameters, in order)."""
        tokens = [self._index[p][value] for p, value in enumerate(prefix)]
        probs = self.policy.probabilities(tokens)
        values = self._searched[len(tokens)][1]
        return {value: float(q) for value, q in zip(values, probs, strict=True)}

    # -- ask / tell -----------------------------------------------------------------------------
    def _propose(self) -> Architecture | None:
        for tokens in self.policy.sample(self.rng, _SAMPLES_PER_PROPOSAL):
            try:
                arch = self.arch_of(tokens)
            except InvalidArchitectureError:  # resampled, not penalised
                continue
            if not self.is_seen(arch):
                return arch
        return self.sample_unseen()

    def _observe(self, arch: Architecture, key: str, score: float) -> None:
        if score > -math.inf:
            self._best = max(self._best, score)
            self._worst = min(self._worst, score)
        self._pending.append((self.tokens_of(arch), score))
        if len(self._pending) >= self.batch_size:
            self._update()

    def _reward(self, score: float) -> float | None:
        if score > -math.inf:
            return score
        if self._worst == math.inf:  # nothing finite told yet
            return None
        return self._worst - (self._best - self._worst)

    def _update(self) -> None:
        tokens: list[np.ndarray] = []
        advantages: list[float] = []
        for toks, score in self._pending:
            reward = self._reward(score)
            if reward is None:
                continue
            if self.baseline is None:
                self.baseline = reward
            advantages.append(reward - self.baseline)
            tokens.append(toks)
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self._pending.clear()
        if tokens and self._searched:
            self.policy.update(np.stack(tokens), np.array(advantages), self.entropy_weight)
            self.updates += 1

    def options(self) -> dict[str, Any]:
        return {
            "hidden_size": self.hidden_size,
            "lr": self.lr,
            "baseline_decay": self.baseline_decay,
            "entropy_weight": self.entropy_weight,
            "temperature": self.temperature,
            "tanh_constant": self.tanh_constant,
            "batch_size": self.batch_size,
        }

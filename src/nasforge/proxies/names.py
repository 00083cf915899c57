"""The zero-cost proxies by name, with a line on each: what listing and checking names needs,
without torch (the scores are in :mod:`nasforge.proxies.scores`)."""

from __future__ import annotations

from collections.abc import Iterable

from nasforge.errors import ConfigError

__all__ = ["PROXIES", "PROXY_SUMMARIES", "check_proxies"]

PROXY_SUMMARIES: dict[str, str] = {
    "synflow": "SynFlow, Tanaka et al. 2020: ln of sum |w * dR/dw| with absolute weights and "
    "an input of ones (no data)",
    "snip": "SNIP, Lee et al. 2019: sum |w * dL/dw| on a batch of the task's data",
    "grad_norm": "sum of the L2 norms of the loss gradients, Abdelfattah et al. 2021",
    "jacov": "Jacobian covariance, Mellor et al. 2021: how distinct the inputs' gradients are",
    "fisher": "Fisher pruning, Theis et al. 2018: sum over channels of (activation x gradient)^2",
    "params": "trainable parameters (a baseline)",
    "flops": "dense FLOPs of one forward pass (a baseline)",
}
"""One line per proxy, in the order reports list them."""

PROXIES: tuple[str, ...] = tuple(PROXY_SUMMARIES)
"""Names of the proxies, in the order reports list them."""


def check_proxies(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, each checked against :data:`PROXIES`.

    Raises:
        ConfigError: For an empty list, a repeated name or an unknown one; lists the valid
            names.
    """
    out = tuple(names)
    if not out:
        raise ConfigError(f"give at least one proxy; valid: {', '.join(PROXIES)}")
    for name in out:
        if name not in PROXIES:
            raise ConfigError(f"unknown proxy {name!r}; valid: {', '.join(PROXIES)}")
    if len(set(out)) != len(out):
        raise ConfigError(f"proxies must be distinct, got {list(out)}")
    return out

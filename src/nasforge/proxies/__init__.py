"""Zero-cost proxies: scores of an untrained network that hint at how well it will train.

Their names and checks (:mod:`~nasforge.proxies.names`) import nothing heavy; the scores
(:mod:`~nasforge.proxies.scores`, which imports torch) are loaded when one of their names is
first used, e.g. ``from nasforge.proxies import score``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge.proxies.names import PROXIES, PROXY_SUMMARIES, check_proxies

if TYPE_CHECKING:
    from nasforge.proxies.scores import (
        SYNFLOW_OF_ZERO,
        ProxyBatch,
        ProxyError,
        fisher,
        flops,
        grad_norm,
        jacov,
        make_batch,
        params,
        proxy_function,
        score,
        snip,
        synflow,
    )

__all__ = [
    "PROXIES",
    "PROXY_SUMMARIES",
    "SYNFLOW_OF_ZERO",
    "ProxyBatch",
    "ProxyError",
    "check_proxies",
    "fisher",
    "flops",
    "grad_norm",
    "jacov",
    "make_batch",
    "params",
    "proxy_function",
    "score",
    "snip",
    "synflow",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nasforge.proxies import scores

        return getattr(scores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

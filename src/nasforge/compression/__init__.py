"""Compression of a searched network: unstructured pruning (magnitude, lottery-ticket IMP,
random masks), each sparsity stored as a trial of a compression experiment.

:mod:`~nasforge.compression.plan` (what a run does) imports no torch;
:mod:`~nasforge.compression.masks` (the masks) and :mod:`~nasforge.compression.run` (the run,
``nasforge.compress``) do.
"""

from nasforge.compression.plan import (
    DEFAULT_SPARSITIES,
    METHODS,
    CompressPlan,
    compression_of,
    parse_sparsities,
)

__all__ = ["DEFAULT_SPARSITIES", "METHODS", "CompressPlan", "compression_of", "parse_sparsities"]

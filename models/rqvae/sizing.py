"""The RQ-VAE's codebook size for a catalog: enough Semantic IDs before the collision breaker.

A user who sets no codebook size, on a dataset with none of its own (pipeline/config.py
DEFAULT_CODEBOOK_SIZES), gets K = 64 (4 levels x 64 codes) up to 64^(L-1) items, 262,144 for
L = 4; above that, the smallest K with K^(L-1) >= the catalog size, so the first L-1 levels
alone can still tell the items apart and the breaker's groups stay small. A codebook size the
user sets, or a config file records, is kept.
"""
from typing import Optional

DEFAULT_CODEBOOK_SIZE = 64


def codebook_size_for(num_items: Optional[int], num_levels: int,
                      base: int = DEFAULT_CODEBOOK_SIZE) -> int:
    """The smallest K >= `base` with K^(num_levels - 1) >= num_items (`base` when the catalog
    size is unknown, or for a single level)."""
    if num_items is None or num_levels < 2:
        return base
    k = base
    while k ** (num_levels - 1) < num_items:
        k += 1
    return k

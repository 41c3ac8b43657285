"""Seeded random streams and vectorised inverse-CDF samplers shared by every simulator step."""

from __future__ import annotations

import numpy as np


def stream_rng(seed: int, *stream: int) -> np.random.Generator:
    # One independent stream per purpose (and per day), so that changing how one part is
    # computed never shifts the random numbers of another.
    return np.random.default_rng([seed, *stream])


def random_ids(
    rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray,
    first: "np.ndarray | None" = None,
) -> np.ndarray:
    """``n`` unique random strings of ``length`` characters (object array).

    Characters come from ``alphabet`` (ASCII codes), the first one from ``first`` if given.
    """
    lead = alphabet if first is None else first

    def draw(k: int) -> np.ndarray:
        codes = alphabet[rng.integers(0, len(alphabet), size=(k, length))]
        codes[:, 0] = lead[rng.integers(0, len(lead), size=k)]
        return codes.view(f"S{length}").ravel()

    ids = draw(n)
    while True:
        _, keep = np.unique(ids, return_index=True)
        if len(keep) == n:
            break
        dup = np.setdiff1d(np.arange(n), keep)
        ids[dup] = draw(len(dup))
    return ids.astype(str).astype(object)


def row_cdf(weights: np.ndarray) -> np.ndarray:
    """Flat, offset inverse-CDF table for sampling one column per row of ``weights``.

    Row ``i`` occupies values in ``[i, i + 1]``, so ``sample_rows`` can serve many rows with a
    single ``searchsorted``. Every row needs a positive total.
    """
    cdf = np.cumsum(weights, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    cdf += np.arange(len(weights), dtype=np.float64)[:, None]
    return cdf.ravel()


def sample_rows(cdf: np.ndarray, width: int, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column index drawn from row ``rows[i]`` of a ``row_cdf`` table with uniforms ``u``."""
    pos = np.searchsorted(cdf, rows + u, side="right")
    # Guards against rounding at a row's upper edge.
    return np.minimum(pos - rows * width, width - 1)


def group_cdf(weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Offset inverse-CDF over items sorted by ``group`` (group ``g`` spans ``[g, g + 1]``)."""
    csum = np.cumsum(weights, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    before = np.repeat(np.r_[0.0, csum[starts[1:] - 1]], ends - starts)
    total = np.repeat(csum[ends - 1], ends - starts) - before
    return group + (csum - before) / total


def sample_groups(
    cdf: np.ndarray, group_start: np.ndarray, group_size: np.ndarray, groups: np.ndarray,
    u: np.ndarray,
) -> np.ndarray:
    """Item index drawn inside ``groups[i]`` of a ``group_cdf`` table with uniforms ``u``."""
    pos = np.searchsorted(cdf, groups + u, side="right")
    lo = group_start[groups]
    return np.clip(pos, lo, lo + group_size[groups] - 1)


"""Top-K selection and top-K ranking metrics for the offline quality benchmark.

Users and items are integer indices. Score matrices are dense ``[num_users, num_items]``
floats (higher = better); interaction matrices are ``scipy.sparse.csr_matrix`` of the same
shape, where any stored nonzero marks an interaction (the benchmark's are binary).

* ``top_k(scores, exclude, k)`` -> ``[num_users, k]`` int64 item indices, best first. Items
  that are nonzero in ``exclude`` (typically the user's training items) are never returned;
  equal scores are ordered by the lower item index, so the result is deterministic.
* ``ranking_metrics(top_items, relevant, k)`` -> ``{"recall@k", "ndcg@k", "hit@k"}``.
* ``recall_curve(top_items, relevant, max_k)`` -> ``[max_k]`` Recall@1..max_k.
* ``coverage(top_items, num_items, k)`` -> share of the catalogue in at least one top-k list.

Metric definitions follow RecBole, with binary relevance. For a user with relevant set R
and ranked list r_0, r_1, ... (rank 0 first):

* recall@k = |{r_0..r_{k-1}} & R| / |R|
* ndcg@k   = DCG / IDCG, DCG = sum over hits at rank p < k of 1 / log2(p + 2),
             IDCG = sum_{p < min(|R|, k)} 1 / log2(p + 2)
* hit@k    = 1 if any of r_0..r_{k-1} is in R, else 0

Each metric is the unweighted mean over users with at least one relevant item; users with
none are left out rather than counted as zeros, since they could not have scored anything.

Coverage is a property of the whole set of lists, not a per-user mean: the number of distinct
items in the users' top k (`PAD` never counts) over the catalogue size. It depends on how many
users are evaluated, so it only compares methods evaluated on the same users.
(Intra-list diversity and novelty are per-list measures with their one definition in
``crossfade.components.evaluator.list_metrics``.)
"""
from typing import Dict

import numpy as np
import scipy.sparse as sp

# Rows per block in `top_k`: bounds the working copy (negated scores, partition output,
# boolean masks) to about this many entries whatever the catalogue size.
_BLOCK_ENTRIES = 1 << 20

# Marks a slot in a `top_k` row for which no non-excluded item was left.
PAD = -1


def top_k(scores: np.ndarray, exclude: sp.csr_matrix, k: int) -> np.ndarray:
    """Returns the k best non-excluded items per row of ``scores``.

    Args:
      scores: [U, I] finite float scores, higher = better.
      exclude: [U, I] sparse matrix; items stored as nonzero in row u are never returned for
        user u. Explicitly stored zeros are not exclusions.
      k: list length, 1 <= k <= I.

    Returns:
      [U, k] int64 item indices sorted by descending score, ties broken by lower item index.
      If a row has fewer than k non-excluded items the tail of that row is `PAD` (-1).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [users, items], got shape {scores.shape}")
    num_users, num_items = scores.shape
    if exclude.shape != scores.shape:
        raise ValueError(f"exclude has shape {exclude.shape}, scores {scores.shape}")
    if not 1 <= k <= num_items:
        raise ValueError(f"k must be in [1, {num_items}], got {k}")
    exclude = sp.csr_matrix(exclude)
    result = np.empty((num_users, k), dtype=np.int64)
    block = max(1, _BLOCK_ENTRIES // num_items)
    for start in range(0, num_users, block):
        stop = min(start + block, num_users)
        result[start:stop] = _top_k_block(scores[start:stop], exclude[start:stop], k)
    return result


def _top_k_block(scores: np.ndarray, exclude: sp.csr_matrix, k: int) -> np.ndarray:
    if not np.isfinite(scores).all():
        # NaN has no place in an ordering and -inf would be confused with an exclusion.
        raise ValueError("scores must be finite")
    # Work on negated scores so "best" is "smallest" and +inf marks an exclusion; keep
    # float32 input as float32 (halves memory traffic), anything else as float64.
    dtype = np.float32 if scores.dtype == np.float32 else np.float64
    cost = np.negative(scores, dtype=dtype)
    excluded = exclude.tocoo()
    stored = excluded.data != 0
    cost[excluded.row[stored], excluded.col[stored]] = np.inf
    rows = np.arange(cost.shape[0])[:, None]

    # np.partition (values only, about twice as fast as argpartition) gives each row's k-th
    # best cost. Membership is then exact: everything strictly better, plus the
    # lowest-index items tied with the k-th to fill the remaining slots.
    threshold = np.partition(cost, k - 1, axis=1)[:, k - 1:k]
    chosen = cost < threshold
    tied = cost == threshold
    missing = k - chosen.sum(axis=1)
    surplus = np.nonzero(tied.sum(axis=1) > missing)[0]
    if len(surplus):
        # Only rows with more tied items than free slots need the running count.
        keep = np.cumsum(tied[surplus], axis=1) <= missing[surplus, None]
        tied[surplus] &= keep
    chosen |= tied
    # np.nonzero walks rows in order and items ascending, so each row yields exactly k
    # indices in index order; a stable sort by cost then keeps lower indices first on ties.
    candidates = np.nonzero(chosen)[1].reshape(cost.shape[0], k)
    order = np.argsort(cost[rows, candidates], axis=1, kind="stable")
    best = candidates[rows, order]
    best[np.isposinf(cost[rows, best])] = PAD
    return best


def _hits(top_items: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """[U, K] bool: whether top_items[u, p] is relevant for user u."""
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or top_items.shape[0] != relevant.shape[0]:
        raise ValueError(
            f"top_items has shape {top_items.shape}, relevant has {relevant.shape[0]} rows")
    relevant = sp.csr_matrix(relevant, copy=True)
    relevant.eliminate_zeros()
    relevant.sum_duplicates()  # also sorts each row's indices, which searchsorted needs
    num_items = relevant.shape[1]
    # One sorted key per (user, item) pair turns row-wise membership into one searchsorted
    # over the whole matrix, with memory proportional to nnz rather than U x I.
    row_of_entry = np.repeat(np.arange(relevant.shape[0], dtype=np.int64),
                             np.diff(relevant.indptr))
    keys = row_of_entry * num_items + relevant.indices
    queries = np.arange(top_items.shape[0], dtype=np.int64)[:, None] * num_items + top_items
    position = np.minimum(np.searchsorted(keys, queries), max(len(keys) - 1, 0))
    found = keys[position] == queries if len(keys) else np.zeros(queries.shape, dtype=bool)
    # PAD (or any out-of-range index) would alias another user's key, so it never counts.
    return found & (top_items >= 0) & (top_items < num_items)


def _relevant_counts(relevant: sp.csr_matrix) -> np.ndarray:
    return np.asarray((sp.csr_matrix(relevant) != 0).sum(axis=1)).ravel()


def ranking_metrics(top_items: np.ndarray, relevant: sp.csr_matrix,
                    k: int = 10) -> Dict[str, float]:
    """Recall, NDCG and hit rate at k, averaged over users with >= 1 relevant item.

    Args:
      top_items: [U, >= k] item indices, best first (rows align with `relevant`); negative
        entries (`PAD`) are never hits.
      relevant: [U, I] sparse matrix of held-out items.
      k: cutoff.

    Returns:
      {"recall@k": float, "ndcg@k": float, "hit@k": float}.
    """
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or top_items.shape[1] < k or k < 1:
        raise ValueError(f"need top_items with at least k={k} columns, got {top_items.shape}")
    counts = _relevant_counts(relevant)
    users = counts > 0
    if not users.any():
        raise ValueError("no user has a relevant item")
    hits = _hits(top_items[:, :k], relevant)[users]
    counts = counts[users]
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    dcg = hits @ discounts
    ideal = np.cumsum(discounts)[np.minimum(counts, k) - 1]
    return {
        f"recall@{k}": float(np.mean(hits.sum(axis=1) / counts)),
        f"ndcg@{k}": float(np.mean(dcg / ideal)),
        f"hit@{k}": float(np.mean(hits.any(axis=1))),
    }


def recall_curve(top_items: np.ndarray, relevant: sp.csr_matrix,
                 max_k: int = 100) -> np.ndarray:
    """[max_k] float64: entry K-1 is Recall@K, averaged as in `ranking_metrics`."""
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or top_items.shape[1] < max_k or max_k < 1:
        raise ValueError(
            f"need top_items with at least max_k={max_k} columns, got {top_items.shape}")
    counts = _relevant_counts(relevant)
    users = counts > 0
    if not users.any():
        raise ValueError("no user has a relevant item")
    hits = _hits(top_items[:, :max_k], relevant)[users]
    return np.mean(np.cumsum(hits, axis=1) / counts[users, None], axis=0)


def coverage(top_items: np.ndarray, num_items: int, k: int = 10) -> float:
    """Share of the `num_items` catalogue items that appear in at least one row's top k."""
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or top_items.shape[1] < k or k < 1:
        raise ValueError(f"need top_items with at least k={k} columns, got {top_items.shape}")
    if num_items < 1:
        raise ValueError(f"num_items must be positive, got {num_items}")
    listed = top_items[:, :k]
    listed = listed[(listed >= 0) & (listed < num_items)]
    return float(len(np.unique(listed)) / num_items)

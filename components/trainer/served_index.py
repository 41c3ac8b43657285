"""The partitioned index inside the served model: the best N catalogue rows per query.

`ServedIndex.top` answers what the exact path answers with `top_k` over all C scores, from
far fewer candidates (components/trainer/partitioned_index.py), and gives every candidate
the exact path's score:

* warm queries: the members of the `probe` partitions whose centroid score plus bias bound
  is highest, scored by the caller's `score` (cosine plus recency bias);
* cold queries (components/trainer/export.py, `_query`): the cold-start ranking's first
  N + m tracks (m exclusion columns), scored by it: exact, since at most m are excluded;
* rows with a release window (window > 0) of at most WINDOW_EXACT_LIMIT tracks: exactly
  the window's tracks (a slice of the catalogue sorted by release day), so a "new for you"
  shelf is exact; a wider window filters the probed candidates instead (approximate);
* exclusions: a candidate equal to one of the row's excluded rows is dropped.

A row's candidates depend on its own probe only, never on the rows batched with it.

Bias bounds. The recency bias (components/trainer/recency.py) lifts some tracks, chiefly
new releases and content-only ones, above what their cosine says, so partitions are
ranked by centroid score plus `bounds[p]`: the largest bias any member can get on a day at
or after the export's reference day (ages only grow, so a member's reachable buckets are
its bucket on that day and the older ones). Partitions are built per kind (id-known,
content-only), so the content-only lift raises only content-only partitions. A request
for a day before the reference day can see a larger bias than the bound: the ranking of
partitions is then approximate, never the scores.

With probe = P every warm row's candidates are the whole catalogue: the exact path's
tracks and scores (ties may come in another order). The served model scores rows whose
probe reaches `exact_from` by brute force instead (components/trainer/export.py).
"""
import dataclasses
import math
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from crossfade.components import features
from crossfade.components.trainer import partitioned_index, recency
from crossfade.components.trainer.partitioned_index import PADDING, Partitions

# Tracks a release window may hold and still be scored exactly; a wider window (a year on
# a catalogue of millions) filters the probed candidates instead, so that one request
# never gathers millions of embeddings.
WINDOW_EXACT_LIMIT = 16_384
# Rows whose probe would search this share of the catalogue, or this many tracks, are
# scored by brute force: a gather of that many embeddings costs about what the matrix
# product over the catalogue does, and a probe of every partition must not gather a
# catalogue's worth of embeddings per row (0.3 GB at 1M x 64).
EXACT_SEARCH_SHARE = 1 / 16
EXACT_SEARCH_CAP = 1 << 18


@dataclasses.dataclass(frozen=True)
class IndexTables:
    """What `ServedIndex` stores: partitions (per kind, concatenated) and bounds [P]."""

    partitions: Partitions
    bounds: np.ndarray  # [P] float32


def build_tables(embeddings: np.ndarray, content_only: np.ndarray, release_days: np.ndarray,
                 bias: Optional[np.ndarray], reference_day: Optional[int],
                 num_partitions: int = 0, seed: int = 0) -> IndexTables:
    """Partitions of the id-known and the content-only rows apart (about `num_partitions`
    in all, 0: `partitioned_index.default_partitions`, shared in proportion to the rows),
    and their bias bounds; `bias` [2, NUM_BUCKETS] (None: no recency bias),
    `reference_day` the first day the model serves (None: every day unknown, as a
    model trained without timestamps scores)."""
    content_only = np.asarray(content_only, bool)
    total = num_partitions or partitioned_index.default_partitions(len(embeddings))
    parts = []
    for rows in (np.flatnonzero(~content_only), np.flatnonzero(content_only)):
        if len(rows):
            count = max(1, math.ceil(total * len(rows) / len(embeddings)))
            parts.append((rows, partitioned_index.build(embeddings[rows], count, seed)))
    capacity = max(part.capacity for _, part in parts)
    members = np.concatenate([_in_catalogue_rows(rows, part.members, capacity)
                              for rows, part in parts])
    partitions = Partitions(np.concatenate([part.centroids for _, part in parts]), members)
    return IndexTables(partitions, bias_bounds(members, content_only, release_days, bias,
                                               reference_day))


def _in_catalogue_rows(rows: np.ndarray, members: np.ndarray, capacity: int) -> np.ndarray:
    """`members` of a subset's partitions as catalogue `rows`, padded to `capacity`."""
    mapped = np.where(members == PADDING, PADDING, rows[np.maximum(members, 0)])
    return np.pad(mapped, [(0, 0), (0, capacity - members.shape[1])],
                  constant_values=PADDING).astype(np.int32)


def bias_bounds(members: np.ndarray, content_only: np.ndarray, release_days: np.ndarray,
                bias: Optional[np.ndarray], reference_day: Optional[int]) -> np.ndarray:
    """[P] the largest recency bias a member of each partition can get on `reference_day`
    or later (see the module docstring); zeros without a bias."""
    if bias is None:
        return np.zeros(len(members), np.float32)
    release_days = np.asarray(release_days, np.int64)
    if reference_day is None:
        buckets = np.full(len(release_days), recency.UNKNOWN_BUCKET)
    else:
        buckets = recency.age_buckets(tf.constant([reference_day], tf.int64),
                                      tf.constant(release_days)).numpy()[0]
    # Reachable later: the bucket now and every older one; unknown stays unknown.
    known_max = np.maximum.accumulate(bias[:, :recency.UNKNOWN_BUCKET][:, ::-1],
                                      axis=1)[:, ::-1]
    kind = np.asarray(content_only, np.int64)
    best = np.where(buckets == recency.UNKNOWN_BUCKET,
                    bias[kind, recency.UNKNOWN_BUCKET],
                    known_max[kind, np.minimum(buckets, recency.UNKNOWN_BUCKET - 1)])
    per_slot = np.where(members == PADDING, -np.inf, best[np.maximum(members, 0)])
    bounds = per_slot.max(axis=1)
    return np.where(np.isfinite(bounds), bounds, 0.0).astype(np.float32)


class ServedIndex(tf.Module):
    """The index's variables and its search (see the module docstring).

    Args:
      tables: `build_tables`' partitions and bounds.
      cold_scores: [C] the cold-start ranking's scores (catalogue order).
      release_days: [C] int64, `features.NO_RELEASE_DAY` where unknown.
      default_probe: partitions a request with probe 0 searches (1..P).
    """

    def __init__(self, tables: IndexTables, cold_scores: np.ndarray, release_days: np.ndarray,
                 default_probe: int):
        super().__init__()
        self.num_partitions = tables.partitions.num_partitions
        if not 1 <= default_probe <= self.num_partitions:
            raise ValueError(f"default_probe must be in 1..{self.num_partitions}, got "
                             f"{default_probe}")
        # A variable: the Trainer calibrates it after building the index (least_probe).
        self.default_probe = tf.Variable(default_probe, trainable=False, dtype=tf.int32,
                                         name="index_default_probe")
        members = tables.partitions.members
        # Ascending: any n partitions hold at least the n smallest's total.
        self.smallest_first = np.cumsum(np.sort((members != PADDING).sum(axis=1)))
        size = int(self.smallest_first[-1])
        # A probe searching this many partitions would gather as much as brute force costs
        # (or more than EXACT_SEARCH_CAP tracks): such rows are scored by brute force instead
        # (`exact`), which is faster there and bounds a request's memory.
        # P + 1 (never) only where the share is 1 or more, as tests set it to exercise the
        # index on catalogues too small for it to pay.
        searched = min(size * EXACT_SEARCH_SHARE, EXACT_SEARCH_CAP)
        self.exact_from = int(min(self.num_partitions + 1,
                                  max(1, math.ceil(searched / members.shape[1]))))
        self.centroids = tf.Variable(tables.partitions.centroids, trainable=False,
                                     name="index_centroids")
        self.members = tf.Variable(tables.partitions.members, trainable=False,
                                   name="index_members")
        self.bounds = tf.Variable(tables.bounds, trainable=False, name="index_bias_bounds")
        # TopKV2 puts the lower index first among equal scores, as a stable sort does.
        self.cold_order = tf.Variable(
            np.argsort(-np.asarray(cold_scores), kind="stable").astype(np.int32),
            trainable=False, name="index_cold_order")
        release_days = np.asarray(release_days, np.int64)
        dated = np.flatnonzero(release_days != features.NO_RELEASE_DAY)
        dated = dated[np.argsort(release_days[dated], kind="stable")]
        self.dated_rows = tf.Variable(dated.astype(np.int32), trainable=False,
                                      name="index_dated_rows")
        self.dated_days = tf.Variable(release_days[dated], trainable=False,
                                      name="index_dated_days")

    def probes(self, probe: tf.Tensor, size: int) -> tf.Tensor:
        """[B] partitions each row searches: `probe` (0: the default), at most P and at
        least as many as always hold `size` tracks (whichever partitions they are), so a
        small probe never shortens a list (exclusions still can, where they fill the
        probed partitions). A row at or above `exact_from` is for brute force (`exact`)."""
        least = int(np.searchsorted(self.smallest_first, size) + 1)
        return tf.clip_by_value(tf.where(probe > 0, probe, self.default_probe.read_value()),
                                min(least, self.num_partitions), self.num_partitions)

    def exact(self, probes: tf.Tensor) -> tf.Tensor:
        """[B] bool: rows whose `probes` would search at least `exact_from` partitions,
        which brute force scores faster (and in less memory)."""
        return probes >= self.exact_from

    def top(self, queries: tf.Tensor, cold: tf.Tensor, days: tf.Tensor, probe: tf.Tensor,
            window: tf.Tensor, excluded: tf.Tensor, size: int,
            score: Callable[[tf.Tensor], tf.Tensor], cold_scores: tf.Tensor,
            release_days: tf.Tensor, biased: bool = True):
        """(rows [B, size], scores [B, size]), best first; -inf scores (row 0) where a row
        has fewer eligible tracks.

        Args:
          queries: [B, D] query embeddings; cold: [B] bool, rows answered by the cold-start
            ranking; days: [B] int64 request days; probe: [B] int32 (0: the default);
            window: [B] int32 release window in days (0: none); excluded: [B, m] int32
            catalogue rows never returned (negative: none).
          size: rows returned (at most C).
          score: catalogue rows [B, N] (PADDING allowed) -> [B, N] warm scores.
          cold_scores, release_days: [C] the catalogue's, as the exact path reads them.
          biased: whether `score` adds the recency bias (partitions are then ranked with
            their bias bounds); False for pure cosine, as `similar_tracks` scores.
        """
        probed = partitioned_index.probed_rows(queries, self.centroids.read_value(),
                                               self.members.read_value(),
                                               self.probes(probe, size),
                                               self.bounds.read_value() if biased else None)
        windowed, exact_window = self._window_rows(days, window)
        cold_rows = self._cold_rows(tf.shape(queries)[0], size + tf.shape(excluded)[1])
        rows = tf.concat([probed, windowed, cold_rows], axis=1)
        n_probed, n_window = tf.shape(probed)[1], tf.shape(windowed)[1]
        part = tf.range(tf.shape(rows)[1])[None, :]
        in_probed, in_cold = part < n_probed, part >= n_probed + n_window
        wide_window = tf.logical_and(window > 0, tf.logical_not(exact_window))[:, None]
        safe = tf.maximum(rows, 0)
        valid = tf.logical_and(rows >= 0, tf.where(
            in_probed,
            tf.logical_and(tf.logical_not(exact_window)[:, None],
                           tf.logical_or(tf.logical_not(cold)[:, None], wide_window)),
            tf.where(in_cold, tf.logical_and(cold, tf.equal(window, 0))[:, None], True)))
        in_window = recency.released_within(days, tf.gather(release_days, safe), window)
        valid = tf.logical_and(valid, tf.logical_or(~wide_window, in_window))
        valid = tf.logical_and(valid, tf.logical_not(members_of(rows, excluded)))
        scores = tf.where(cold[:, None], tf.gather(cold_scores, safe), score(rows))
        scores = tf.where(valid, scores, tf.constant(-np.inf, scores.dtype))
        top = tf.math.top_k(scores, k=size)
        return tf.gather(safe, top.indices, batch_dims=1), top.values

    def recall_by_probe(self, queries: np.ndarray, exact_rows: np.ndarray,
                        size: int) -> Callable[[int], float]:
        """probe (1..P) -> the share of `exact_rows` [Q, K] (the exact top K catalogue rows
        of warm query embeddings `queries` [Q, D], K <= `size`) that lie in the partitions
        `top` searches for them at that probe, found without searching.

        That share is `top`'s recall@K: a searched row gets its exact score, and fewer than
        K candidates can score above an exact top-K row, so every exact top-K row searched
        is in `top`'s first K. (`recall_by_score` may count more where scores tie at the
        cut; the partitions' ranking here is numpy's, which can order near-equal centroid
        scores apart from TF's.) The cost is one [Q, P] ranking of partitions for every
        probe at once, where a search gathers probe x M embeddings per query and probe:
        calibrating a 1M-track index through searches took minutes.
        """
        members = self.members.numpy()
        scores = np.asarray(queries, np.float32) @ self.centroids.numpy().T
        scores += self.bounds.numpy()[None, :]  # as `top` ranks them (biased)
        order = np.argsort(-scores, axis=1, kind="stable")  # TopKV2's order, ties included
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(self.num_partitions),
                                                       order.shape), axis=1)
        partition_of = np.full(int(self.smallest_first[-1]), -1, np.int64)
        stored = members != PADDING
        partition_of[members[stored]] = np.nonzero(stored)[0]
        needed = np.take_along_axis(rank, partition_of[np.asarray(exact_rows)], axis=1)
        # found[p]: the share of exact rows whose partition ranks among a query's first p.
        found = np.concatenate([[0], np.cumsum(np.bincount(
            needed.ravel(), minlength=self.num_partitions))]) / max(1, needed.size)
        searched = self.probes(tf.range(1, self.num_partitions + 1), size).numpy()
        return lambda probe: float(found[searched[probe - 1]])

    def _window_rows(self, days: tf.Tensor, window: tf.Tensor):
        """([B, W] the tracks released within each row's window, PADDING past the row's
        own count; [B] bool: the row has a window of at most WINDOW_EXACT_LIMIT tracks,
        scored exactly). Rows without a window, or with a wider one, get no tracks here."""
        window = tf.cast(window, tf.int64)
        dated_days = self.dated_days.read_value()
        first = tf.searchsorted(dated_days, (days - window + 1)[None, :], side="left")[0]
        stop = tf.searchsorted(dated_days, days[None, :], side="right")[0]
        count = tf.where(window > 0, tf.maximum(stop - first, 0), 0)
        exact = tf.logical_and(window > 0, count <= WINDOW_EXACT_LIMIT)
        count = tf.where(exact, count, 0)
        position = first[:, None] + tf.range(tf.reduce_max(tf.concat([count, [0]], 0)))[None, :]
        inside = position < (first + count)[:, None]
        rows = tf.gather(self.dated_rows.read_value(),
                         tf.minimum(position, tf.maximum(tf.size(dated_days) - 1, 0)))
        return tf.where(inside, rows, PADDING), exact

    def _cold_rows(self, batch: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
        """[B, length'] the cold-start ranking's first `length` rows (at most C), per row."""
        order = self.cold_order.read_value()
        first = order[:tf.minimum(length, tf.size(order))]
        return tf.tile(first[None, :], tf.stack([batch, 1]))


# The default probe is the least whose recall@100 against exact scoring reaches this on a
# sample of training queries: a margin above the Evaluator's index_recall_floor (0.95),
# which eval queries must then clear.
CALIBRATION_RECALL = 0.97
CALIBRATION_QUERIES = 1024


def members_of(rows: tf.Tensor, excluded: tf.Tensor) -> tf.Tensor:
    """[B, N] bool: each of `rows` [B, N] is among its row's `excluded` [B, m]. A binary
    search in each row's sorted exclusions: memory B x N whatever m, where comparing every
    pair would take B x N x m (gigabytes for a hostile request of 10k exclusions)."""
    ordered = tf.sort(tf.pad(excluded, [[0, 0], [0, 1]], constant_values=-1), axis=1)
    position = tf.searchsorted(ordered, rows, side="left")
    found = tf.gather(ordered, tf.minimum(position, tf.shape(ordered)[1] - 1), batch_dims=1)
    return tf.equal(found, rows)


def recall_by_score(served: tf.Tensor, exact_top: tf.Tensor) -> tf.Tensor:
    """[B] the share of the index's first K `served` scores ([B, >= K], best first) that
    reach the last of the exact top K ([B, K]): recall@K against exact scoring, by score,
    so tracks tied at the cut count as found (1e-5: matvec and matmul round apart)."""
    count = tf.shape(exact_top)[1]
    found = served[:, :count] >= exact_top[:, -1:] - 1e-5
    return tf.reduce_mean(tf.cast(found, tf.float32), axis=1)


def least_probe(num_partitions: int, recall: Callable[[int], float],
                target: float = CALIBRATION_RECALL):
    """(probe, recall): the least probe in 1..P whose `recall(probe)` reaches `target`
    (recall grows with the probe; P, which is exact, if none below it does), found by
    doubling and then bisecting, so about 2 log2(P) calls."""
    measured = {num_partitions: 1.0}
    low, high, probe = 0, num_partitions, 1
    while probe < high:
        measured[probe] = recall(probe)
        if measured[probe] >= target:
            high = probe
            break
        low, probe = probe, probe * 2
    while high - low > 1:
        middle = (low + high) // 2
        measured[middle] = recall(middle)
        low, high = (low, middle) if measured[middle] >= target else (middle, high)
    return high, measured[high]


def resolve_probe(default_probe: int, num_partitions: int) -> int:
    """The export's default probe: `default_probe`, or (0) a sixteenth of the partitions."""
    return min(num_partitions, default_probe or max(1, math.ceil(num_partitions / 16)))

"""The served SavedModel: raw features in, top-K catalogue tracks out.

The exported module holds the Transform graph, the query tower, the catalogue index (every
catalogue track's candidate embedding, id, title, artist, content tokens and training play
count; components/trainer/catalogue_index.py) and every training user's stored history
(components/trainer/user_history.py) as variables, the id -> row table as an asset file
(components/trainer/track_rows.py: no graph constant grows with the catalogue), and scores
with a matrix product and `tf.math.top_k`: stock TensorFlow ops only, so the stock
`tensorflow/serving` image loads it (no ScaNN custom ops).

**Partitioned index.** A model trained with `Hyperparameters.index` partitioned (by default
from `PARTITIONED_FROM` tracks) also holds an inverted-file index of the catalogue
(components/trainer/served_index.py, stock ops as well): `serving_default`, `recommend`,
`similar_tracks` and `blend` then score the members of each request's `probe` best
partitions instead of every track, with the same scores; cold queries and release windows of
up to `served_index.WINDOW_EXACT_LIMIT` tracks stay exact. `blend` ranks the union of its
members' pools (each member scored on all of it) and standardises each member against a
fixed sample of `BLEND_SAMPLE` catalogue tracks (components/trainer/blend.py).
`evaluate_examples`' ranks and `catalogue_scores` always score the whole catalogue;
`evaluate_examples` reports how much of the exact top `EVAL_TOP_K` the index finds
(``index_recall``).

**Stored history.** In every query signature (`serving_default`, `recommend`,
`query_embedding`, `evaluate_examples`) a known user whose `recent_track_ids` row is all ""
is answered with their stored training history; a row with any track keeps its own.

Signatures (every input is batched along axis 0):

* ``serving_default`` — inputs ``user_id`` [B] string, ``recent_track_ids`` [B, n] string (most
  recent first, "" padding, any n), ``timestamp`` [B] int64 Unix seconds (<= 0: now),
  ``platform`` [B] string, ``k`` [B] int32 (the batch returns max(k) results; <= 0 means
  `default_k`; above `max_k` is INVALID_ARGUMENT). Outputs ``track_ids`` [B, K] string and
  ``scores`` [B, K] float32 (cosine similarity, plus the learned bias of the track's age on
  the timestamp's day when the model has one, components/trainer/recency.py; for a cold
  query — unknown user and no known recent track — the cold-start ranking's score in [0, 1]:
  the last day's top chart when the pipeline has one, else training plays relative to the
  most played track).
* ``recommend`` — the `serving_default` inputs and, all required (neutral value in brackets):

  ==========================  ============  ==============================================
  input                       shape, dtype  meaning
  ==========================  ============  ==============================================
  ``exclude_track_ids``       [B, m] str    never returned, any m (one "" column)
  ``diversity``               [B] float32   0 = relevance order (as `serving_default`); in
                                            (0, 1] greedy maximal-marginal-relevance over
                                            the top max(`candidate_pool`, `max_k`) (0)
  ``explore``                 [B] float32   epsilon of per-slot epsilon-greedy sampling
                                            from the pool (0 = deterministic)
  ``seed``                    [B] int64     per-row sampler seed; 0 = a hash of the row's
                                            user, history and timestamp (0)
  ``released_within_days``    [B] int32     > 0: only tracks released 0..n-1 days before
                                            the timestamp's UTC day ("new for you");
                                            0 = no restriction; < 0, or > 0 for a model
                                            whose catalogue has no release dates, is
                                            INVALID_ARGUMENT (0)
  ``probe``                   [B] int32     index partitions to probe; 0 = the model's
                                            default; at least as many as always hold
                                            the pool; from `exact_from` on, exact (brute
                                            force); a model without an index ignores
                                            it; < 0 is INVALID_ARGUMENT (0)
  ==========================  ============  ==============================================

  Outputs ``track_ids``, ``scores`` (as `serving_default`), ``titles`` and ``artists`` [B, K]
  string ("" where the catalogue has none) and ``propensities`` [B, K] float32: for each slot
  the probability that the sampler chose that track in that slot given the tracks in the
  earlier slots (1.0 for a deterministic slot); their product is the probability of the
  whole list (components/trainer/reranking.py). A row with fewer than K eligible tracks is
  padded with track id "", score 0 and propensity 1. diversity or explore outside [0, 1]
  (or NaN) is INVALID_ARGUMENT.
* ``blend`` — one list for a group of listeners (components/trainer/blend.py): ``user_ids``
  [B, M] string (M <= 5 members; "" with no recent tracks is padding), ``recent_track_ids``
  [B, M, n] string, ``timestamp`` [B] int64, ``platform`` [B] string, ``k`` [B] int32,
  ``strategy`` [B] int32 (0 average, 1 least misery, 2 fair interleave) and
  ``exclude_track_ids`` [B, m] string. Each member is scored as `serving_default` scores a
  user (stored history included). Outputs ``track_ids``, ``titles``, ``artists`` [B, K]
  string, ``scores`` [B, K] float32 (the strategy's group score, in members' standardised
  units), ``member_scores`` [B, K, M] float32 (each member's own score for the track, 0 for
  padding and repeated members) and ``for_member`` [B, K] int32 (the member column the track
  is chiefly for; -1 for an empty slot). More than 5 members, a row without a member, a
  strategy outside 0..2 or inputs whose rows or members disagree are INVALID_ARGUMENT.
* ``similar_tracks`` — ``track_id`` [B] string, ``k`` [B] int32 -> ``track_ids``, ``scores``
  (cosine between candidate embeddings, the track itself excluded) and ``found`` [B] bool.
* ``query_embedding`` — the query inputs without ``k`` -> ``embedding`` [B, D].
* ``candidate_embedding`` — ``track_id`` [B] string -> ``embedding`` [B, D], ``found`` [B].
* ``evaluate_examples`` — ``examples`` [B] serialized raw tf.Examples (as written by the plays
  ExampleGen) -> ``label_rank`` [B] (0-based rank of the played track among all catalogue
  tracks; the catalogue size if it is not in the catalogue), ``popularity_rank`` [B] (the same
  under a most-popular ranking of the training plays), ``label_train_plays`` [B] int64 (the
  played track's training examples: 0 for a track without any, the cold-start segment; -1
  for a track outside the catalogue), ``top_indices`` [B, EVAL_TOP_K]
  (catalogue rows recommended), ``catalogue_size`` [B], and for the first `LIST_CUTOFF` of
  the top tracks ``intra_list_diversity`` [B] (on genre/tag content, NaN without two tracks
  with content) and ``novelty`` [B] (mean self-information, bits); definitions in
  components/evaluator/list_metrics.py; ``index_recall`` [B] float32: the share of the
  served index's top `EVAL_TOP_K` (default probe) that exact scoring ranks there too (1 for a
  model without an index; NaN for a cold query, which the index answers exactly). The
  Evaluator's metrics read these.
"""
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from crossfade.components import features
from crossfade.components.evaluator import list_metrics
from crossfade.components.trainer import (
    blend,
    list_content,
    partitioned_index,
    recency,
    reranking,
    run_config,
    served_index,
    track_rows,
)
from crossfade.components.trainer import model as model_lib
from crossfade.components.trainer.catalogue_index import CatalogueIndex
from crossfade.serving.signatures import (
    BLEND,
    CANDIDATE_EMBEDDING,
    EVALUATE_EXAMPLES,
    QUERY_EMBEDDING,
    RECOMMEND,
    SERVING_DEFAULT,
    SIMILAR_TRACKS,
)

EVAL_TOP_K = 100
# Catalogue rows (a fixed uniform sample) whose scores standardise each member of a `blend`
# through the index: the mean and sd of a sample this size are within about 1 % of the
# catalogue's.
BLEND_SAMPLE = 8192

QUERY_INPUT_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="user_id"),
    tf.TensorSpec([None, None], tf.string, name="recent_track_ids"),
    tf.TensorSpec([None], tf.int64, name="timestamp"),
    tf.TensorSpec([None], tf.string, name="platform"),
)
K_INPUT = tf.TensorSpec([None], tf.int32, name="k")
CONTROL_INPUT_SIGNATURE = (
    tf.TensorSpec([None, None], tf.string, name="exclude_track_ids"),
    tf.TensorSpec([None], tf.float32, name="diversity"),
    tf.TensorSpec([None], tf.float32, name="explore"),
    tf.TensorSpec([None], tf.int64, name="seed"),
    tf.TensorSpec([None], tf.int32, name="released_within_days"),
    tf.TensorSpec([None], tf.int32, name="probe"),
)

BLEND_INPUT_SIGNATURE = (
    tf.TensorSpec([None, None], tf.string, name="user_ids"),
    tf.TensorSpec([None, None, None], tf.string, name="recent_track_ids"),
    tf.TensorSpec([None], tf.int64, name="timestamp"),
    tf.TensorSpec([None], tf.string, name="platform"),
    K_INPUT,
    tf.TensorSpec([None], tf.int32, name="strategy"),
    tf.TensorSpec([None, None], tf.string, name="exclude_track_ids"),
)


def _strings(values: np.ndarray, name: str) -> tf.Variable:
    return tf.Variable(np.asarray(values, dtype=object), trainable=False, dtype=tf.string,
                       name=name)


class RecommenderModule(tf.Module):
    """Everything TF Serving needs to answer retrieval requests; see the module docstring.

    `user_histories` is `user_history.latest_histories`' [users + 2, HISTORY_LENGTH] table;
    None stores none (every row padding). `recommend` re-ranks the top
    max(`candidate_pool`, `max_k`) tracks (the whole catalogue if smaller).
    """

    def __init__(self, two_tower: model_lib.TwoTowerModel,
                 transform_output: tft.TFTransformOutput, catalogue: CatalogueIndex,
                 default_k: int, max_k: int, user_histories: Optional[np.ndarray] = None,
                 candidate_pool: int = run_config.DEFAULT_CANDIDATE_POOL,
                 index_tables: Optional[served_index.IndexTables] = None,
                 default_probe: int = 0):
        super().__init__()
        size = len(catalogue)
        if candidate_pool < 1:
            raise ValueError(f"candidate_pool must be at least 1, got {candidate_pool}")
        self.transform_layer = transform_output.transform_features_layer()
        self.query_tower = two_tower.query_tower
        users = transform_output.vocabulary_size_by_name(features.USER_VOCABULARY)
        self.user_oov_index = users
        self.track_oov_index = transform_output.vocabulary_size_by_name(
            features.TRACK_VOCABULARY)
        self.history_padding_index = self.track_oov_index + 1
        self.default_k = default_k
        self.max_k = max_k
        # Fixed, not max(pool, k): a row's pool (so its list) must not depend on the k of the
        # rows TF Serving batched with it.
        self.pool_size = min(max(candidate_pool, max_k), size)
        self.catalogue_size = size
        self.catalogue_ids = _strings(catalogue.ids, "catalogue_ids")
        self.catalogue_titles = _strings(catalogue.titles, "catalogue_titles")
        self.catalogue_artists = _strings(catalogue.artists, "catalogue_artists")
        self.catalogue_embeddings = tf.Variable(catalogue.embeddings, trainable=False,
                                                name="catalogue_embeddings")
        self.popularity_scores = tf.Variable(catalogue.cold_start_scores, trainable=False,
                                             name="popularity_scores")
        self.has_release_dates = recency.has_release_dates(catalogue.release_days)
        self.release_days = tf.Variable(catalogue.release_days, trainable=False,
                                        name="release_days")
        self.recency_bias = two_tower.recency_bias  # None: scores are cosines
        if self.recency_bias is not None:
            # The bias was trained on the catalogue's days, or on none (all unknown: plays
            # without timestamps have no day of any request); and the tracks it sees through
            # content only (recency.CONTENT_ONLY).
            self.bias_sees_dates = bool(np.any(
                two_tower.release_days.numpy() != features.NO_RELEASE_DAY))
            self.content_only = tf.Variable(catalogue.content_only, trainable=False,
                                            name="content_only")
        # Rank of each row in a most-popular list (ties broken by catalogue order).
        order = np.argsort(-catalogue.play_counts, kind="stable")
        rank = np.empty(size, np.int32)
        rank[order] = np.arange(size, dtype=np.int32)
        self.popularity_rank = tf.Variable(rank, trainable=False, name="popularity_rank")
        # Training examples per row: 0 marks a track the model never saw played (cold).
        self.train_play_counts = tf.Variable(catalogue.play_counts.astype(np.int64),
                                             trainable=False, name="train_play_counts")
        self.content_tokens = tf.Variable(list_content.content_tokens(
            list_metrics.content_matrix(catalogue.genres, catalogue.tags)),
            trainable=False, name="content_tokens")
        self.self_information = tf.Variable(
            list_metrics.self_information(catalogue.play_counts).astype(np.float32),
            trainable=False, name="self_information")
        if user_histories is None:
            user_histories = np.full((users + 2, features.HISTORY_LENGTH),
                                     self.history_padding_index, np.int32)
        if user_histories.shape != (users + 2, features.HISTORY_LENGTH):
            raise ValueError(f"user_histories must be [{users + 2}, {features.HISTORY_LENGTH}]"
                             f", got {user_histories.shape}")
        self.user_histories = tf.Variable(user_histories.astype(np.int32), trainable=False,
                                          name="user_histories")
        self.index = None  # None: every ranking signature scores the whole catalogue
        if index_tables is not None and self.pool_size < min(EVAL_TOP_K, size):
            raise ValueError(f"an index needs a pool of at least {EVAL_TOP_K} tracks (its "
                             f"recall is measured at {EVAL_TOP_K}), got {self.pool_size}")
        if index_tables is not None:
            # `blend` standardises members' scores against these rows (blend.standardise).
            sample = np.random.default_rng(0).choice(size, min(size, BLEND_SAMPLE),
                                                     replace=False)
            self.blend_sample = tf.Variable(np.sort(sample).astype(np.int32), trainable=False,
                                            name="blend_sample")
            # A cold member's scores are the cold-start ranking's whatever the query: their
            # spread is exact (count, sum, sum of squares; float64 at 10M tracks).
            popularity = catalogue.cold_start_scores.astype(np.float64)
            self.popularity_moments = tf.Variable(
                [float(size), popularity.sum(), np.square(popularity).sum()], trainable=False,
                dtype=tf.float64, name="popularity_moments")
            self.index = served_index.ServedIndex(
                index_tables, catalogue.cold_start_scores, catalogue.release_days,
                served_index.resolve_probe(default_probe,
                                           index_tables.partitions.num_partitions))
        # From an asset file, not a graph constant (components/trainer/track_rows.py).
        self.row_of_track = track_rows.TrackRows(catalogue.ids)

    # -- building blocks -------------------------------------------------------------------
    # Catalogue variables are gathered from through `read_value()`: a gather on the variable
    # itself switches it to copy-on-read, and every later full read (each recommend's
    # matmul) would then copy the whole embedding table.

    def _raw_query(self, user_id, recent_track_ids, timestamp, platform) -> Dict[str, tf.Tensor]:
        batch = tf.shape(user_id)[0]
        raw = features.default_raw_values(batch)
        history = tf.pad(recent_track_ids, [[0, 0], [0, features.HISTORY_LENGTH]],
                         constant_values=features.PAD_TOKEN)[:, :features.HISTORY_LENGTH]
        now = tf.cast(tf.timestamp(), tf.int64)
        raw.update({
            features.USER_ID: user_id,
            features.RECENT_TRACK_IDS: tf.reshape(history, [-1, features.HISTORY_LENGTH]),
            features.TIMESTAMP: tf.where(timestamp > 0, timestamp, now),
            features.PLATFORM: platform,
        })
        return raw

    def _with_stored_history(self, transformed: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """`transformed` with all-padding histories replaced by the user's stored one."""
        history = transformed[features.RECENT_TRACK_INDICES]
        empty = tf.reduce_all(tf.equal(history, self.history_padding_index), axis=1)
        stored = tf.cast(tf.gather(self.user_histories.read_value(),
                                   transformed[features.USER_INDEX]), history.dtype)
        return {**transformed,
                features.RECENT_TRACK_INDICES: tf.where(empty[:, None], stored, history)}

    def _query(self, raw: Dict[str, tf.Tensor]):
        transformed = self._with_stored_history(self.transform_layer(raw))
        embedding = self.query_tower(transformed, training=False)
        cold = tf.logical_and(
            tf.equal(transformed[features.USER_INDEX], self.user_oov_index),
            tf.reduce_all(transformed[features.RECENT_TRACK_INDICES] >= self.track_oov_index,
                          axis=1))
        return embedding, cold

    def _bias_days(self, rows: Optional[tf.Tensor] = None) -> tf.Tensor:
        """The release days the recency bias reads, of catalogue `rows` (None: all)."""
        release_days = self.release_days.read_value()
        if rows is not None:
            release_days = tf.gather(release_days, rows)
        if self.bias_sees_dates:
            return release_days
        return tf.fill(tf.shape(release_days), tf.constant(features.NO_RELEASE_DAY, tf.int64))

    def _scores(self, raw: Dict[str, tf.Tensor]) -> tf.Tensor:
        """[B, C] query-track scores (cosine + recency bias); cold queries get the cold-start
        ranking's."""
        embedding, cold = self._query(raw)
        return self._ranked(embedding, cold, recency.request_days(raw[features.TIMESTAMP]))

    def _ranked(self, embedding: tf.Tensor, cold: tf.Tensor, days: tf.Tensor,
                rows: Optional[tf.Tensor] = None) -> tf.Tensor:
        """`_scores` of query embeddings [B, D], `cold` [B] and request `days` [B]; of
        catalogue `rows` [N] only (None: all)."""
        popularity = self.popularity_scores.read_value()
        if rows is not None:
            popularity = tf.gather(popularity, rows)
        return tf.where(cold[:, None], popularity[None, :],
                        self._warm_scores(embedding, days, rows))

    def _exact_pool(self, scores: tf.Tensor, timestamp: tf.Tensor, window: tf.Tensor,
                    exclude_track_ids: tf.Tensor):
        """`_pooled` of [B, C] `scores` after the release window and the exclusions."""
        return self._pooled(self._excluded(self._released_within(scores, timestamp, window),
                                           exclude_track_ids))

    def _warm_scores(self, embedding: tf.Tensor, days: tf.Tensor,
                     rows: Optional[tf.Tensor] = None) -> tf.Tensor:
        """[B, C] cosine + recency bias of query embeddings [B, D] on `days` [B]; [B, N] of
        catalogue `rows` [N] only (None: all)."""
        if rows is None:
            scores = tf.matmul(embedding, self.catalogue_embeddings, transpose_b=True)
        else:
            scores = tf.matmul(embedding, tf.gather(self.catalogue_embeddings.read_value(),
                                                    rows), transpose_b=True)
        if self.recency_bias is not None:
            content_only = self.content_only.read_value()
            if rows is not None:
                content_only = tf.gather(content_only, rows)
            scores += self.recency_bias(days, self._bias_days(rows), content_only)
        return scores

    def _candidate_scores(self, embedding: tf.Tensor, days: tf.Tensor,
                          rows: tf.Tensor) -> tf.Tensor:
        """[B, N] `_scores`' warm scores of each row's catalogue `rows` [B, N] (PADDING:
        -inf)."""
        scores = partitioned_index.candidate_scores(
            embedding, self.catalogue_embeddings.read_value(), rows)
        if self.recency_bias is not None:
            safe = tf.maximum(rows, 0)
            scores += self.recency_bias(days, self._bias_days(safe),
                                        tf.gather(self.content_only.read_value(), safe))
        return scores

    def _index_pool(self, raw: Dict[str, tf.Tensor], probe: tf.Tensor, window: tf.Tensor,
                    exclude_track_ids: tf.Tensor):
        """`_pooled`'s (rows, scores) [B, pool_size] through the partitioned index, with
        the release window and exclusions applied (components/trainer/served_index.py)."""
        embedding, cold = self._query(raw)
        return self._searched(embedding, cold, raw[features.TIMESTAMP], probe, window,
                              exclude_track_ids)

    def _searched(self, embedding: tf.Tensor, cold: tf.Tensor, timestamp: tf.Tensor,
                  probe: tf.Tensor, window: tf.Tensor, exclude_track_ids: tf.Tensor):
        """`_index_pool` of query embeddings [B, D] and `cold` [B] already computed."""
        days = recency.request_days(timestamp)
        # Rows probing as much as brute force costs are scored by it (ServedIndex.exact);
        # the index then searches only its least for them.
        exact = self.index.exact(self.index.probes(probe, self.pool_size))
        rows, scores = self.index.top(
            embedding, cold, days, tf.where(exact, 1, probe), window,
            self.row_of_track(exclude_track_ids), self.pool_size,
            lambda candidates: self._candidate_scores(embedding, days, candidates),
            self.popularity_scores.read_value(), self.release_days.read_value())

        def brute_force():
            return self._exact_pool(self._ranked(embedding, cold, days), timestamp, window,
                                    exclude_track_ids)

        exact_rows, exact_scores = tf.cond(tf.reduce_any(exact), brute_force,
                                           lambda: (rows, scores))
        return (tf.where(exact[:, None], exact_rows, rows),
                tf.where(exact[:, None], exact_scores, scores))

    def _released_within(self, scores: tf.Tensor, timestamp: tf.Tensor,
                         window: tf.Tensor) -> tf.Tensor:
        """`scores` with tracks outside each row's release window (window > 0) at -inf."""
        inside = recency.released_within(recency.request_days(timestamp),
                                         self.release_days.read_value(), window)
        keep = tf.logical_or(tf.equal(window, 0)[:, None], inside)
        return tf.where(keep, scores, tf.cast(-np.inf, scores.dtype))

    def _effective_k(self, k: tf.Tensor) -> tf.Tensor:
        requested = tf.reduce_max(tf.concat([k, [0]], axis=0))
        requested = tf.where(requested > 0, requested, self.default_k)
        check = tf.debugging.assert_less_equal(
            requested, self.max_k, message=f"k must be at most {self.max_k}")
        with tf.control_dependencies([check]):
            return tf.minimum(requested, self.catalogue_size)

    def _top_k(self, scores: tf.Tensor, k: tf.Tensor) -> Dict[str, tf.Tensor]:
        top = tf.math.top_k(scores, k=self._effective_k(k))
        return {"track_ids": tf.gather(self.catalogue_ids.read_value(), top.indices),
                "scores": top.values}

    def _first_k(self, rows: tf.Tensor, scores: tf.Tensor, k: tf.Tensor) -> Dict[str, tf.Tensor]:
        """`_top_k`'s outputs from an index's best-first (rows, scores) [B, N >= max_k];
        a slot without an eligible track (-inf) is "" with score 0, as in `recommend`."""
        count = self._effective_k(k)
        rows, scores = rows[:, :count], scores[:, :count]
        shown = tf.math.is_finite(scores)
        return {"track_ids": tf.where(shown, tf.gather(self.catalogue_ids.read_value(), rows),
                                      ""),
                "scores": tf.where(shown, scores, 0.0)}

    def _excluded(self, scores: tf.Tensor, exclude_track_ids: tf.Tensor) -> tf.Tensor:
        """`scores` with each row's excluded catalogue tracks at -inf (unknown ids ignored)."""
        rows = self.row_of_track(exclude_track_ids)
        hits = tf.where(rows >= 0)  # [n, 2]: (batch row, exclusion column)
        targets = tf.stack([hits[:, 0], tf.cast(tf.gather_nd(rows, hits), tf.int64)], axis=1)
        marked = tf.scatter_nd(targets, tf.ones(tf.shape(hits)[:1], tf.int32),
                               tf.shape(scores, out_type=tf.int64))
        return tf.where(marked > 0, tf.cast(-np.inf, scores.dtype), scores)

    def _checked_controls(self, batch, controls) -> list:
        """Assertions (INVALID_ARGUMENT) on the `recommend` control inputs."""
        _, diversity, explore, _, released, probe = controls
        checks = [tf.debugging.assert_equal(tf.shape(value)[0], batch, message=(
            f"{name} must have one row per user_id")) for name, value in zip(
                [spec.name for spec in CONTROL_INPUT_SIGNATURE], controls, strict=True)]
        for name, value in (("diversity", diversity), ("explore", explore)):
            checks += [tf.debugging.assert_greater_equal(value, 0.0,
                                                         message=f"{name} must be in [0, 1]"),
                       tf.debugging.assert_less_equal(value, 1.0,
                                                      message=f"{name} must be in [0, 1]")]
        checks.append(tf.debugging.assert_non_negative(
            released, message="released_within_days must be >= 0"))
        if not self.has_release_dates:
            checks.append(tf.debugging.assert_equal(
                released, 0, message="released_within_days must be 0: this model has no "
                "release dates"))
        checks.append(tf.debugging.assert_non_negative(probe, message="probe must be >= 0"))
        return checks

    def _pooled(self, scores):
        """(pool rows [B, N], pool scores [B, N]), N = `pool_size` whatever the batch's k."""
        top = tf.math.top_k(scores, k=self.pool_size)
        return top.indices, top.values

    # -- signatures ------------------------------------------------------------------------

    @tf.function(input_signature=QUERY_INPUT_SIGNATURE + (K_INPUT,))
    def recommend(self, user_id, recent_track_ids, timestamp, platform, k):
        raw = self._raw_query(user_id, recent_track_ids, timestamp, platform)
        if self.index is None:
            return self._top_k(self._scores(raw), k)
        # The pool `recommend` draws from at its neutral controls: the same list.
        embedding, cold = self._query(raw)
        return self._first_k(*self._neutral_search(embedding, cold, raw[features.TIMESTAMP],
                                                   0), k)

    @tf.function(input_signature=QUERY_INPUT_SIGNATURE + (K_INPUT,) + CONTROL_INPUT_SIGNATURE)
    def recommend_controlled(self, user_id, recent_track_ids, timestamp, platform, k,
                             exclude_track_ids, diversity, explore, seed,
                             released_within_days, probe):
        controls = (exclude_track_ids, diversity, explore, seed, released_within_days, probe)
        with tf.control_dependencies(self._checked_controls(tf.shape(user_id)[0], controls)):
            raw = self._raw_query(user_id, recent_track_ids, timestamp, platform)
            if self.index is None:
                rows, relevance = self._exact_pool(self._scores(raw), raw[features.TIMESTAMP],
                                                   released_within_days, exclude_track_ids)
            else:
                rows, relevance = self._index_pool(raw, probe, released_within_days,
                                                   exclude_track_ids)
        count = self._effective_k(k)
        embeddings = tf.gather(self.catalogue_embeddings.read_value(), rows)
        seeds = reranking.request_seeds(seed, user_id, recent_track_ids, timestamp)

        def reranked():
            return reranking.build_lists(relevance, embeddings, count, diversity, explore,
                                         seeds)

        def relevance_order():  # what build_lists gives at diversity 0, explore 0, faster
            positions = tf.range(count)[None, :] + tf.zeros_like(rows[:, :1])
            available = tf.math.is_finite(relevance[:, :count])
            return (tf.where(available, positions, -1),
                    tf.ones(tf.shape(positions), tf.float32))

        neutral = tf.logical_and(tf.reduce_all(tf.equal(diversity, 0.0)),
                                 tf.reduce_all(tf.equal(explore, 0.0)))
        positions, propensities = tf.cond(neutral, relevance_order, reranked)
        shown = positions >= 0
        chosen = tf.gather(rows, tf.maximum(positions, 0), batch_dims=1)

        def listed(variable: tf.Variable) -> tf.Tensor:
            return tf.where(shown, tf.gather(variable.read_value(), chosen), "")

        return {"track_ids": listed(self.catalogue_ids),
                "scores": tf.where(shown, tf.gather(relevance, tf.maximum(positions, 0),
                                                    batch_dims=1), 0.0),
                "titles": listed(self.catalogue_titles),
                "artists": listed(self.catalogue_artists),
                "propensities": propensities}

    def _checked_blend(self, user_ids, recent_track_ids, row_inputs, strategy) -> list:
        """Assertions (INVALID_ARGUMENT) on the `blend` inputs' shapes and strategy."""
        batch, members = tf.shape(user_ids)[0], tf.shape(user_ids)[1]
        checks = [
            tf.debugging.assert_less_equal(members, blend.MAX_MEMBERS, message=(
                f"a blend has at most {blend.MAX_MEMBERS} members")),
            tf.debugging.assert_equal(tf.shape(recent_track_ids)[:2], tf.shape(user_ids),
                                      message="recent_track_ids must be [rows, members, n] "
                                      "like user_ids"),
            tf.debugging.assert_greater_equal(strategy, 0, message="strategy must be 0..2"),
            tf.debugging.assert_less_equal(strategy, max(blend.STRATEGIES.values()),
                                           message="strategy must be 0..2")]
        checks += [tf.debugging.assert_equal(tf.shape(value)[0], batch, message=(
            f"{name} must have one row per row of user_ids")) for name, value in row_inputs]
        return checks

    @tf.function(input_signature=BLEND_INPUT_SIGNATURE)
    def blend(self, user_ids, recent_track_ids, timestamp, platform, k, strategy,
              exclude_track_ids):
        batch, members = tf.shape(user_ids)[0], tf.shape(user_ids)[1]
        row_inputs = (("timestamp", timestamp), ("platform", platform), ("k", k),
                      ("strategy", strategy), ("exclude_track_ids", exclude_track_ids))
        # The shape checks run first: the member mask of mismatched inputs would fail with a
        # broadcasting error instead of naming the input.
        with tf.control_dependencies(self._checked_blend(user_ids, recent_track_ids,
                                                         row_inputs, strategy)):
            present = blend.member_mask(user_ids, recent_track_ids)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.reduce_all(tf.reduce_any(present, axis=1)), True,
                message="every row of a blend needs a member (a user id or recent tracks)")]):
            raw = self._raw_query(
                tf.reshape(user_ids, [-1]),
                tf.reshape(recent_track_ids, tf.stack([batch * members, -1])),
                tf.repeat(timestamp, members), tf.repeat(platform, members))
            embedding, cold = self._query(raw)
        inputs = (embedding, cold, raw[features.TIMESTAMP], exclude_track_ids, present)
        if self.index is None:
            candidates, scores, spread = self._blend_catalogue(*inputs)
        else:  # every member has the default probe: the batch goes one way (an empty
            # batch by brute force, which answers it with empty lists)
            brute_force = tf.logical_or(tf.equal(tf.size(timestamp), 0), tf.reduce_any(
                self.index.exact(self.index.probes(tf.zeros_like(timestamp, tf.int32),
                                                   self.pool_size))))
            candidates, scores, spread = tf.cond(brute_force,
                                                 lambda: self._blend_catalogue(*inputs),
                                                 lambda: self._blend_candidates(*inputs))
        columns, group, whose = blend.build_lists(scores, present, strategy,
                                                  self._effective_k(k), spread)
        shown = columns >= 0
        chosen = tf.gather(candidates, tf.maximum(columns, 0), batch_dims=1)
        own = tf.gather(scores, tf.maximum(columns, 0), axis=2, batch_dims=1)  # [B, M, K]
        own = tf.where(tf.logical_and(present[:, :, None], shown[:, None, :]), own, 0.0)

        def listed(variable: tf.Variable) -> tf.Tensor:
            return tf.where(shown, tf.gather(variable.read_value(), chosen), "")

        return {"track_ids": listed(self.catalogue_ids),
                "scores": tf.where(shown, group, 0.0),
                "member_scores": tf.transpose(own, [0, 2, 1]),
                "for_member": whose,
                "titles": listed(self.catalogue_titles),
                "artists": listed(self.catalogue_artists)}

    def _blend_catalogue(self, embedding: tf.Tensor, cold: tf.Tensor, timestamp: tf.Tensor,
                         exclude_track_ids: tf.Tensor, present: tf.Tensor):
        """`blend`'s (candidates [B, C], member scores [B, M, C], spread None) by brute
        force: every catalogue track a candidate, scored as `serving_default` scores it,
        the row's `exclude_track_ids` [B, m] at -inf; member queries [B * M, D]."""
        members = tf.shape(present)[1]
        scores = self._excluded(self._ranked(embedding, cold, recency.request_days(timestamp)),
                                tf.repeat(exclude_track_ids, members, axis=0))
        scores = tf.reshape(scores, tf.stack([-1, members, self.catalogue_size]))
        candidates = tf.tile(tf.range(self.catalogue_size)[None, :],
                             tf.stack([tf.shape(scores)[0], 1]))
        return candidates, scores, blend.moments(scores)

    def _blend_candidates(self, embedding: tf.Tensor, cold: tf.Tensor, timestamp: tf.Tensor,
                          exclude_track_ids: tf.Tensor, present: tf.Tensor):
        """`_blend_catalogue` through the index (components/trainer/blend.py): candidates
        [B, U], the union of the present members' pools and the `AVERAGE` query's, in
        ascending rows as the catalogue's order breaks ties (repeats and empty slots at
        -inf), every member scored on all of them; each member's spread by `_blend_spread`."""
        batch, members = tf.shape(present)[0], tf.shape(present)[1]
        excluded = tf.repeat(exclude_track_ids, members, axis=0)
        none = tf.zeros(tf.shape(cold), tf.int32)
        pool, pool_scores = self._searched(embedding, cold, timestamp, none, none, excluded)
        shown = tf.logical_and(tf.math.is_finite(pool_scores), tf.reshape(present, [-1, 1]))
        size = self.catalogue_size
        pooled = tf.reshape(tf.where(shown, pool, size), tf.stack([batch, -1]))  # empty: last
        days = recency.request_days(timestamp)
        spread = self._blend_spread(embedding, cold, days, excluded, batch)
        pooled = tf.concat([pooled, self._average_pool(embedding, cold, timestamp, present,
                                                       spread[1], exclude_track_ids)], axis=1)
        union = tf.sort(pooled, axis=1)
        first = tf.concat([tf.ones_like(union[:, :1], tf.bool), union[:, 1:] > union[:, :-1]],
                          axis=1)
        candidates = tf.minimum(union, size - 1)
        scores = self._member_scores(embedding, cold, days, tf.repeat(candidates, members,
                                                                      axis=0))
        scores = tf.reshape(scores, tf.stack([batch, members, -1]))
        eligible = tf.logical_and(first, union < size)[:, None, :]
        return (candidates, tf.where(eligible, scores, tf.cast(-np.inf, scores.dtype)),
                spread)

    def _average_pool(self, embedding: tf.Tensor, cold: tf.Tensor, timestamp: tf.Tensor,
                      present: tf.Tensor, sd: tf.Tensor, exclude_track_ids: tf.Tensor):
        """[B, N] the index pool of each row's `AVERAGE` query: its present warm members'
        queries weighted by 1 / sd (`sd` [B, M, 1]); empty slots, and rows without a warm
        member (answered by the cold-start ranking), at `catalogue_size`."""
        batch, members = tf.shape(present)[0], tf.shape(present)[1]
        warm = tf.logical_and(present, tf.logical_not(tf.reshape(cold, [batch, members])))
        weight = tf.where(warm, 1.0 / tf.maximum(sd[:, :, 0], blend.MIN_SD), 0.0)
        queries = tf.reshape(embedding, tf.stack([batch, members, -1]))
        total = tf.reduce_sum(weight, axis=1)
        query = tf.reduce_sum(weight[:, :, None] * queries, axis=1) / tf.maximum(
            total, blend.MIN_SD)[:, None]
        none = tf.zeros([batch], tf.int32)
        rows, scores = self._searched(
            query, tf.equal(total, 0.0), tf.reshape(timestamp, [batch, members])[:, 0], none,
            none, exclude_track_ids)
        keep = tf.logical_and(tf.math.is_finite(scores), (total > 0.0)[:, None])
        return tf.where(keep, rows, self.catalogue_size)

    def _blend_spread(self, embedding: tf.Tensor, cold: tf.Tensor, days: tf.Tensor,
                      excluded: tf.Tensor, batch: tf.Tensor):
        """Each member's (mean, sd) [B, M, 1] over the eligible catalogue: a warm member's
        over `blend_sample` (exact when it is the whole catalogue), a cold member's exactly
        (`popularity_moments`, less the member's `excluded` ids [B * M, m])."""
        sample = self.blend_sample.read_value()
        scores = self._warm_scores(embedding, days, sample)
        dropped = served_index.members_of(tf.tile(sample[None, :], tf.stack([tf.size(cold), 1])),
                                          self.row_of_track(excluded))
        mean, sd = blend.moments(tf.where(dropped, tf.cast(-np.inf, scores.dtype),
                                          scores)[:, None, :])
        cold_mean, cold_sd = self._popularity_spread(excluded)
        mean = tf.where(cold[:, None, None], cold_mean, mean)
        sd = tf.where(cold[:, None, None], cold_sd, sd)
        return (tf.reshape(mean, tf.stack([batch, -1, 1])),
                tf.reshape(sd, tf.stack([batch, -1, 1])))

    def _popularity_spread(self, excluded: tf.Tensor):
        """(mean, sd) [N, 1, 1] of the cold-start scores over the catalogue less each row's
        `excluded` ids [N, m] (unknown and repeated ids count once or not at all)."""
        rows = tf.sort(self.row_of_track(excluded), axis=1)
        once = tf.logical_and(rows >= 0, tf.concat(
            [tf.ones_like(rows[:, :1], tf.bool), rows[:, 1:] > rows[:, :-1]], axis=1))
        values = tf.where(once, tf.cast(tf.gather(self.popularity_scores.read_value(),
                                                  tf.maximum(rows, 0)), tf.float64), 0.0)
        moments = self.popularity_moments.read_value()  # count, sum, sum of squares
        count = tf.maximum(moments[0] - tf.reduce_sum(tf.cast(once, tf.float64), axis=1), 1.0)
        total = moments[1] - tf.reduce_sum(values, axis=1)
        squares = moments[2] - tf.reduce_sum(tf.square(values), axis=1)
        mean = total / count
        sd = tf.sqrt(tf.maximum(squares / count - tf.square(mean), 0.0))
        return (tf.cast(mean, tf.float32)[:, None, None], tf.cast(sd, tf.float32)[:, None, None])

    def _member_scores(self, embedding: tf.Tensor, cold: tf.Tensor, days: tf.Tensor,
                       rows: tf.Tensor) -> tf.Tensor:
        """[B, N] `_ranked`'s scores of each query's catalogue `rows` [B, N]."""
        return tf.where(cold[:, None], tf.gather(self.popularity_scores.read_value(), rows),
                        self._candidate_scores(embedding, days, rows))

    @tf.function(input_signature=QUERY_INPUT_SIGNATURE)
    def catalogue_scores(self, user_id, recent_track_ids, timestamp, platform):
        """[B, C] every catalogue track's score (catalogue order), as the ranking signatures
        score: for Python callers that rank in full, such as the quality benchmark. A saved
        function, not a serving signature."""
        return self._scores(self._raw_query(user_id, recent_track_ids, timestamp, platform))

    @tf.function(input_signature=QUERY_INPUT_SIGNATURE)
    def query_embedding(self, user_id, recent_track_ids, timestamp, platform):
        embedding, _ = self._query(
            self._raw_query(user_id, recent_track_ids, timestamp, platform))
        return {"embedding": embedding}

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"),))
    def candidate_embedding(self, track_id):
        rows = self.row_of_track(track_id)
        found = rows >= 0
        embedding = tf.gather(self.catalogue_embeddings.read_value(), tf.maximum(rows, 0))
        return {"embedding": tf.where(found[:, None], embedding, tf.zeros_like(embedding)),
                "found": found}

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"), K_INPUT))
    def similar_tracks(self, track_id, k):
        rows = self.row_of_track(track_id)
        found = rows >= 0
        seeds = tf.gather(self.catalogue_embeddings.read_value(), tf.maximum(rows, 0))
        if self.index is None:
            result = self._similar(seeds, rows, k)
        else:  # every row has the default probe: the batch goes one way
            exact = self.index.exact(self.index.probes(tf.zeros_like(rows), self.pool_size))
            result = tf.cond(tf.reduce_any(exact), lambda: self._similar(seeds, rows, k),
                             lambda: self._index_similar(seeds, tf.maximum(rows, 0), k))
        result["found"] = found
        return result

    def _similar(self, seeds: tf.Tensor, rows: tf.Tensor, k: tf.Tensor):
        """`similar_tracks`' top k of seed embeddings [B, D] by brute force, each seed's
        own row (`rows` [B], -1: none) left out."""
        scores = tf.matmul(seeds, self.catalogue_embeddings, transpose_b=True)
        itself = tf.one_hot(tf.maximum(rows, 0), tf.shape(scores)[1], on_value=True,
                            off_value=False)
        return self._top_k(tf.where(itself, tf.cast(-np.inf, scores.dtype), scores), k)

    def _index_similar(self, seeds: tf.Tensor, itself: tf.Tensor, k: tf.Tensor):
        """`similar_tracks`' top k of the seed embeddings [B, D] through the index, cosine
        only, each seed's own row `itself` [B] left out."""
        none = tf.zeros_like(itself)
        embeddings = self.catalogue_embeddings.read_value()
        rows, scores = self.index.top(
            seeds, tf.zeros_like(itself, tf.bool), tf.zeros_like(itself, tf.int64), none,
            none, itself[:, None], self.pool_size,
            lambda candidates: partitioned_index.candidate_scores(seeds, embeddings,
                                                                  candidates),
            self.popularity_scores.read_value(), self.release_days.read_value(),
            biased=False)
        return self._first_k(rows, scores, k)

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="examples"),))
    def evaluate_examples(self, examples):
        raw = tf.io.parse_example(examples, features.RAW_FEATURE_SPEC)
        embedding, cold = self._query(raw)  # once: the exact ranks and the index recall
        scores = self._ranked(embedding, cold, recency.request_days(raw[features.TIMESTAMP]))
        size = tf.shape(scores)[1]
        rows = self.row_of_track(raw[features.TRACK_ID])
        found = rows >= 0
        label_scores = tf.gather(scores, tf.maximum(rows, 0), batch_dims=1)
        label_rank = tf.reduce_sum(tf.cast(scores > label_scores[:, None], tf.int32), axis=1)
        popularity_rank = tf.gather(self.popularity_rank.read_value(), tf.maximum(rows, 0))
        train_plays = tf.gather(self.train_play_counts.read_value(), tf.maximum(rows, 0))
        top = tf.math.top_k(scores, k=tf.minimum(EVAL_TOP_K, size))
        top_indices = top.indices
        listed = top_indices[:, :list_metrics.LIST_CUTOFF]
        batch_size = tf.shape(examples)[0]
        return {
            "index_recall": self._index_recall(embedding, cold, raw[features.TIMESTAMP],
                                               top.values),
            "label_rank": tf.where(found, label_rank, size),
            "popularity_rank": tf.where(found, popularity_rank, size),
            "label_train_plays": tf.where(found, train_plays, -tf.ones_like(train_plays)),
            "top_indices": top_indices,
            "catalogue_size": tf.fill([batch_size], size),
            "intra_list_diversity": list_content.intra_list_diversity(
                tf.gather(self.content_tokens.read_value(), listed)),
            "novelty": list_content.novelty(
                tf.gather(self.self_information.read_value(), listed)),
        }

    def _index_recall(self, embedding: tf.Tensor, cold: tf.Tensor, timestamp: tf.Tensor,
                      exact_top: tf.Tensor) -> tf.Tensor:
        """[B] the share of the served index's top K whose score reaches the exact top K's
        last ([B, K] `exact_top` scores, best first): its recall@K against exact scoring,
        by score, so tracks tied at the cut count as found; 1 without an index."""
        if self.index is None:
            return tf.ones(tf.shape(exact_top)[:1])
        _, served = self._neutral_search(embedding, cold, timestamp, 0)
        # Cold queries take the exact cold-start ranking: NaN keeps them out of the mean.
        return tf.where(cold, np.nan, served_index.recall_by_score(served, exact_top))

    def _neutral_search(self, embedding: tf.Tensor, cold: tf.Tensor, timestamp: tf.Tensor,
                        probe: int):
        """`_searched` at `probe` (0: the default), no window, no exclusion."""
        none = tf.zeros(tf.shape(cold), tf.int32)
        return self._searched(embedding, cold, timestamp, none + probe, none,
                              tf.fill(tf.stack([tf.size(cold), 1]), ""))

    def calibrate_index(self, queries: np.ndarray, days: np.ndarray):
        """(probe, recall): sets the index's default probe to the least whose recall@
        `EVAL_TOP_K` against exact scoring reaches `served_index.CALIBRATION_RECALL` on
        query embeddings [Q, D] of plays on `days` [Q], and returns the recall measured
        through the served search at it (`index_recall_at`). The least probe is found
        without searching (`ServedIndex.recall_by_probe`: which partitions hold each
        query's exact top rows), so the search runs once, not at every probe tried."""
        exact = self._exact_tops(queries, days)
        rows = np.concatenate([top.indices.numpy() for _, _, top in exact])
        # From `exact_from` on, rows are scored by brute force: exact.
        probe, _ = served_index.least_probe(
            self.index.exact_from,
            self.index.recall_by_probe(queries, rows, self.pool_size))
        self.index.default_probe.assign(probe)
        return probe, self._recall_through_search(exact)(probe)

    def index_recall_at(self, queries: np.ndarray, days: np.ndarray) -> Callable[[int], float]:
        """probe (0: the default) -> the mean recall@`EVAL_TOP_K`, by score, against exact
        scoring of query embeddings [Q, D] of plays on `days` [Q] (warm queries, as the
        pool of `recommend` at neutral controls searches); the exact tops computed once."""
        return self._recall_through_search(self._exact_tops(queries, days))

    def _exact_tops(self, queries: np.ndarray, days: np.ndarray):
        """[(queries, days, exact top_k)] of query embeddings [Q, D] and `days` [Q] in chunks
        whose [q, C] exact scores and [q, N, D] gathered candidates stay within about 2**26
        floats each (256 MB)."""
        k = min(EVAL_TOP_K, self.catalogue_size)
        searched = self.index.exact_from * int(self.index.members.shape[1])
        step = max(1, min(64, 2 ** 26 // self.catalogue_size,
                          2 ** 26 // (searched * int(queries.shape[1]))))
        chunks = []
        for start in range(0, len(queries), step):
            q = tf.constant(queries[start:start + step])
            d = tf.constant(days[start:start + step], tf.int64)
            chunks.append((q, d, tf.math.top_k(self._warm_scores(q, d), k=k)))
        return chunks

    def _recall_through_search(self, exact) -> Callable[[int], float]:
        """probe -> the mean recall, by score, of the served search against `exact`
        (`_exact_tops`)."""
        def recall(probe: int) -> float:
            found = []
            for q, d, top in exact:
                _, served = self._neutral_search(q, tf.zeros(tf.shape(d), tf.bool),
                                                 d * recency.SECONDS_PER_DAY, probe)
                found.append(served_index.recall_by_score(served, top.values).numpy())
            return float(np.concatenate(found).mean())

        return recall

    def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            SERVING_DEFAULT: self.recommend.get_concrete_function(),
            RECOMMEND: self.recommend_controlled.get_concrete_function(),
            BLEND: self.blend.get_concrete_function(),
            SIMILAR_TRACKS: self.similar_tracks.get_concrete_function(),
            QUERY_EMBEDDING: self.query_embedding.get_concrete_function(),
            CANDIDATE_EMBEDDING: self.candidate_embedding.get_concrete_function(),
            EVALUATE_EXAMPLES: self.evaluate_examples.get_concrete_function(),
        }


def save(module: RecommenderModule, export_dir: str) -> None:
    """Writes `module` as a SavedModel with its named signatures."""
    tf.saved_model.save(module, export_dir, signatures=module.signatures())

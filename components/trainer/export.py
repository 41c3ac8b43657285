"""The served SavedModel: raw features in, top-K catalogue tracks out.

The exported module holds the Transform graph, the query tower and the catalogue index (every
catalogue track's candidate embedding, id and training play count) as variables, and scores
with a matrix product and `tf.math.top_k`: stock TensorFlow ops only, so the stock
`tensorflow/serving` image loads it (no ScaNN custom ops).

Signatures (every input is batched along axis 0):

* ``serving_default`` — inputs ``user_id`` [B] string, ``recent_track_ids`` [B, n] string (most
  recent first, "" padding, any n), ``timestamp`` [B] int64 Unix seconds (<= 0: now),
  ``platform`` [B] string, ``k`` [B] int32 (the batch returns max(k) results; <= 0 means
  `default_k`; above `max_k` is INVALID_ARGUMENT). Outputs ``track_ids`` [B, K] string and
  ``scores`` [B, K] float32 (cosine similarity; for a cold query — unknown user and no known
  recent track — the cold-start ranking's score in [0, 1]: the last day's top chart when the
  pipeline has one, else training plays relative to the most played track).
* ``similar_tracks`` — ``track_id`` [B] string, ``k`` [B] int32 -> ``track_ids``, ``scores``
  (cosine between candidate embeddings, the track itself excluded) and ``found`` [B] bool.
* ``query_embedding`` — the query inputs without ``k`` -> ``embedding`` [B, D].
* ``candidate_embedding`` — ``track_id`` [B] string -> ``embedding`` [B, D], ``found`` [B].
* ``evaluate_examples`` — ``examples`` [B] serialized raw tf.Examples (as written by the plays
  ExampleGen) -> ``label_rank`` [B] (0-based rank of the played track among all catalogue
  tracks; the catalogue size if it is not in the catalogue), ``popularity_rank`` [B] (the same
  under a most-popular ranking of the training plays), ``top_indices`` [B, EVAL_TOP_K]
  (catalogue rows recommended) and ``catalogue_size`` [B]. The Evaluator's metrics read these.
"""
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from crossfade.components import features
from crossfade.components.trainer import model as model_lib
from crossfade.serving.signatures import (
    CANDIDATE_EMBEDDING,
    EVALUATE_EXAMPLES,
    QUERY_EMBEDDING,
    SERVING_DEFAULT,
    SIMILAR_TRACKS,
)

EVAL_TOP_K = 100

QUERY_INPUT_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="user_id"),
    tf.TensorSpec([None, None], tf.string, name="recent_track_ids"),
    tf.TensorSpec([None], tf.int64, name="timestamp"),
    tf.TensorSpec([None], tf.string, name="platform"),
)
K_INPUT = tf.TensorSpec([None], tf.int32, name="k")


class RecommenderModule(tf.Module):
    """Everything TF Serving needs to answer retrieval requests; see the module docstring."""

    def __init__(self, two_tower: model_lib.TwoTowerModel,
                 transform_output: tft.TFTransformOutput,
                 catalogue_ids: np.ndarray, catalogue_embeddings: np.ndarray,
                 catalogue_play_counts: np.ndarray, default_k: int, max_k: int,
                 cold_start_scores: Optional[np.ndarray] = None):
        super().__init__()
        size = len(catalogue_ids)
        if size == 0:
            raise ValueError("the catalogue is empty")
        self.transform_layer = transform_output.transform_features_layer()
        self.query_tower = two_tower.query_tower
        self.user_oov_index = transform_output.vocabulary_size_by_name(features.USER_VOCABULARY)
        self.track_oov_index = transform_output.vocabulary_size_by_name(
            features.TRACK_VOCABULARY)
        self.default_k = default_k
        self.max_k = max_k
        self.catalogue_size = size
        self.catalogue_ids = tf.Variable(catalogue_ids.astype(object), trainable=False,
                                         dtype=tf.string, name="catalogue_ids")
        self.catalogue_embeddings = tf.Variable(catalogue_embeddings.astype(np.float32),
                                                trainable=False, name="catalogue_embeddings")
        counts = catalogue_play_counts.astype(np.float32)
        if cold_start_scores is None:
            cold_start_scores = counts / max(counts.max(), 1.0)
        self.popularity_scores = tf.Variable(cold_start_scores.astype(np.float32),
                                             trainable=False, name="popularity_scores")
        # Rank of each row in a most-popular list (ties broken by catalogue order).
        order = np.argsort(-counts, kind="stable")
        rank = np.empty(size, np.int32)
        rank[order] = np.arange(size, dtype=np.int32)
        self.popularity_rank = tf.Variable(rank, trainable=False, name="popularity_rank")
        self.row_of_track = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(catalogue_ids.astype(object), tf.string),
                tf.range(size, dtype=tf.int32)),
            default_value=-1)

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

    def _query(self, raw: Dict[str, tf.Tensor]):
        transformed = self.transform_layer(raw)
        embedding = self.query_tower(transformed, training=False)
        cold = tf.logical_and(
            tf.equal(transformed[features.USER_INDEX], self.user_oov_index),
            tf.reduce_all(transformed[features.RECENT_TRACK_INDICES] >= self.track_oov_index,
                          axis=1))
        return embedding, cold

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

    # -- signatures ------------------------------------------------------------------------

    @tf.function(input_signature=QUERY_INPUT_SIGNATURE + (K_INPUT,))
    def recommend(self, user_id, recent_track_ids, timestamp, platform, k):
        embedding, cold = self._query(
            self._raw_query(user_id, recent_track_ids, timestamp, platform))
        scores = tf.matmul(embedding, self.catalogue_embeddings, transpose_b=True)
        scores = tf.where(cold[:, None], self.popularity_scores[None, :], scores)
        return self._top_k(scores, k)

    @tf.function(input_signature=QUERY_INPUT_SIGNATURE)
    def query_embedding(self, user_id, recent_track_ids, timestamp, platform):
        embedding, _ = self._query(
            self._raw_query(user_id, recent_track_ids, timestamp, platform))
        return {"embedding": embedding}

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"),))
    def candidate_embedding(self, track_id):
        rows = self.row_of_track.lookup(track_id)
        found = rows >= 0
        embedding = tf.gather(self.catalogue_embeddings.read_value(), tf.maximum(rows, 0))
        return {"embedding": tf.where(found[:, None], embedding, tf.zeros_like(embedding)),
                "found": found}

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"), K_INPUT))
    def similar_tracks(self, track_id, k):
        rows = self.row_of_track.lookup(track_id)
        found = rows >= 0
        seeds = tf.gather(self.catalogue_embeddings.read_value(), tf.maximum(rows, 0))
        scores = tf.matmul(seeds, self.catalogue_embeddings, transpose_b=True)
        itself = tf.one_hot(tf.maximum(rows, 0), tf.shape(scores)[1], on_value=True,
                            off_value=False)
        scores = tf.where(itself, tf.cast(-np.inf, scores.dtype), scores)
        result = self._top_k(scores, k)
        result["found"] = found
        return result

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="examples"),))
    def evaluate_examples(self, examples):
        raw = tf.io.parse_example(examples, features.RAW_FEATURE_SPEC)
        embedding, cold = self._query(raw)
        scores = tf.matmul(embedding, self.catalogue_embeddings, transpose_b=True)
        scores = tf.where(cold[:, None], self.popularity_scores[None, :], scores)
        size = tf.shape(scores)[1]
        rows = self.row_of_track.lookup(raw[features.TRACK_ID])
        found = rows >= 0
        label_scores = tf.gather(scores, tf.maximum(rows, 0), batch_dims=1)
        label_rank = tf.reduce_sum(tf.cast(scores > label_scores[:, None], tf.int32), axis=1)
        popularity_rank = tf.gather(self.popularity_rank.read_value(), tf.maximum(rows, 0))
        top_indices = tf.math.top_k(scores, k=tf.minimum(EVAL_TOP_K, size)).indices
        batch_size = tf.shape(examples)[0]
        return {
            "label_rank": tf.where(found, label_rank, size),
            "popularity_rank": tf.where(found, popularity_rank, size),
            "top_indices": top_indices,
            "catalogue_size": tf.fill([batch_size], size),
        }

    def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            SERVING_DEFAULT: self.recommend.get_concrete_function(),
            SIMILAR_TRACKS: self.similar_tracks.get_concrete_function(),
            QUERY_EMBEDDING: self.query_embedding.get_concrete_function(),
            CANDIDATE_EMBEDDING: self.candidate_embedding.get_concrete_function(),
            EVALUATE_EXAMPLES: self.evaluate_examples.get_concrete_function(),
        }


def save(module: RecommenderModule, export_dir: str) -> None:
    """Writes `module` as a SavedModel with its named signatures."""
    tf.saved_model.save(module, export_dir, signatures=module.signatures())

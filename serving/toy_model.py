"""A small SavedModel with crossfade's serving signatures, for tests and benchmarks of serving.

`serving_default` and `similar_tracks` take and return what the exported model's do
(`crossfade.components.trainer.export`), over a catalogue of given ids and random embeddings
with no Transform graph: version handling, batching, the REST layer and memory benchmarks need
many versions quickly. `k` <= 0 means 10 and `k` > `max_k` is an INVALID_ARGUMENT inside the
graph, as in the real model. Not used by the pipeline.
"""
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from crossfade.serving import signatures, warmup


class ToyRecommender(tf.Module):
    """crossfade's serving signatures over `ids` with random unit embeddings of `dim`."""

    def __init__(self, ids: Sequence[str], seed: int, dim: int = 8, max_k: int = 100):
        super().__init__()
        rng = np.random.default_rng(seed)
        embeddings = rng.standard_normal((len(ids), dim)).astype(np.float32)
        self.max_k, self.size = max_k, len(ids)
        self.ids = tf.Variable(np.array(list(ids), dtype=object), dtype=tf.string)
        self.embeddings = tf.Variable(embeddings / np.linalg.norm(embeddings, axis=1)[:, None])
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(ids)), tf.range(len(ids))), default_value=-1)

    def _top(self, scores, k):
        requested = tf.reduce_max(tf.concat([k, [0]], axis=0))
        requested = tf.where(requested > 0, requested, 10)
        check = tf.debugging.assert_less_equal(requested, self.max_k,
                                               message=f"k must be at most {self.max_k}")
        with tf.control_dependencies([check]):
            count = tf.minimum(requested, self.size)
        top = tf.math.top_k(scores, k=count)
        return {"track_ids": tf.gather(self.ids.read_value(), top.indices),
                "scores": top.values}

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name="user_id"),
        tf.TensorSpec([None, None], tf.string, name="recent_track_ids"),
        tf.TensorSpec([None], tf.int64, name="timestamp"),
        tf.TensorSpec([None], tf.string, name="platform"),
        tf.TensorSpec([None], tf.int32, name="k")))
    def recommend(self, user_id, recent_track_ids, timestamp, platform, k):
        embeddings = self.embeddings.read_value()
        rows = tf.strings.to_hash_bucket_fast(user_id, self.size)
        query = tf.gather(embeddings, rows)
        return self._top(tf.matmul(query, embeddings, transpose_b=True), k)

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="track_id"),
                                  tf.TensorSpec([None], tf.int32, name="k")))
    def similar_tracks(self, track_id, k):
        embeddings = self.embeddings.read_value()
        rows = self.table.lookup(track_id)
        scores = tf.matmul(tf.gather(embeddings, tf.maximum(rows, 0)), embeddings,
                           transpose_b=True)
        result = self._top(scores, k)
        result["found"] = rows >= 0
        return result


def save_toy_model(export_dir: str, ids: Sequence[str], seed: int = 0, dim: int = 8,
                   warmup_users: Optional[Sequence[str]] = ("u1", "u2")) -> None:
    """Saves a ToyRecommender to `export_dir` (with warmup requests unless `warmup_users` is
    None)."""
    module = ToyRecommender(ids, seed, dim)
    tf.saved_model.save(module, export_dir, signatures={
        signatures.SERVING_DEFAULT: module.recommend.get_concrete_function(),
        signatures.SIMILAR_TRACKS: module.similar_tracks.get_concrete_function()})
    if warmup_users is not None:
        histories = [[ids[0]]] + [[] for _ in warmup_users[1:]]
        warmup.write_warmup_requests(export_dir, list(warmup_users), histories, list(ids[:3]))

"""In-graph intra-list diversity and novelty of recommendation lists, for `evaluate_examples`.

The definitions are crossfade.components.evaluator.list_metrics' (the one numpy home, which the
quality benchmark uses); this is the same computation on tensors so the Evaluator gets both
per example from the served graph, and a test checks the two agree.

A track's content is its distinct genre and tag tokens as integer ids, `content_tokens` [C, W]
with -1 padding (W = MAX_GENRES + MAX_TAGS). The cosine of two binary vectors is the number of
shared tokens over the square root of the product of their token counts, so the graph compares
token ids pairwise ([B, K, K, W, W] booleans: 12,100 per list of 10) instead of holding a
[C, vocabulary] matrix.
"""
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from crossfade.components import features

CONTENT_WIDTH = features.MAX_GENRES + features.MAX_TAGS


def content_tokens(content: sp.csr_matrix) -> np.ndarray:
    """[C, CONTENT_WIDTH] int32 token ids of each row of a binary content matrix, -1 padded."""
    content = sp.csr_matrix(content)
    counts = np.diff(content.indptr)
    if counts.size and counts.max() > CONTENT_WIDTH:
        raise ValueError(f"a track has {counts.max()} content tokens, more than "
                         f"{CONTENT_WIDTH} (MAX_GENRES + MAX_TAGS)")
    tokens = np.full((content.shape[0], CONTENT_WIDTH), -1, dtype=np.int32)
    rows = np.repeat(np.arange(content.shape[0]), counts)
    slots = np.arange(len(content.indices)) - np.repeat(content.indptr[:-1], counts)
    tokens[rows, slots] = content.indices
    return tokens


def intra_list_diversity(tokens: tf.Tensor) -> tf.Tensor:
    """[B] float32 mean 1 - cosine over slot pairs i < j of tracks with content; NaN if none.

    Args:
      tokens: [B, K, W] int32 content token ids of each listed track, -1 padding.
    """
    valid = tokens >= 0
    shared = tf.logical_and(
        tf.equal(tokens[:, :, None, :, None], tokens[:, None, :, None, :]),
        tf.logical_and(valid[:, :, None, :, None], valid[:, None, :, None, :]))
    overlap = tf.reduce_sum(tf.cast(shared, tf.float32), axis=[3, 4])  # [B, K, K]
    sizes = tf.reduce_sum(tf.cast(valid, tf.float32), axis=2)  # [B, K]
    cosine = overlap / tf.sqrt(tf.maximum(sizes[:, :, None] * sizes[:, None, :], 1.0))
    slots = tf.shape(tokens)[1]
    upper = tf.linalg.band_part(tf.ones([slots, slots]), 0, -1) - tf.eye(slots)
    pairs = upper[None] * tf.cast(sizes[:, :, None] > 0, tf.float32) * tf.cast(
        sizes[:, None, :] > 0, tf.float32)
    count = tf.reduce_sum(pairs, axis=[1, 2])
    total = tf.reduce_sum(pairs * (1.0 - cosine), axis=[1, 2])
    return tf.where(count > 0, total / tf.maximum(count, 1.0), float("nan"))


def novelty(information: tf.Tensor) -> tf.Tensor:
    """[B] float32 mean self-information of each list; `information` [B, K] bits."""
    return tf.reduce_mean(information, axis=1)

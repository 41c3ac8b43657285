"""RecencyBias: the shared-candidates path (one lookup per distinct day) against the per-row
path on the same candidates, in values and in gradients."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components import features
from crossfade.components.trainer import recency


@pytest.mark.parametrize("seed", [0, 1])
def test_shared_candidates_score_and_train_as_per_row_candidates(seed):
    rng = np.random.default_rng(seed)
    rows, candidates = 64, 48
    days = tf.constant(rng.integers(20_000, 20_009, rows), tf.int64)  # repeated days
    release = rng.integers(19_500, 20_012, candidates)
    release[::7] = features.NO_RELEASE_DAY
    release = tf.constant(release, tf.int64)
    content_only = tf.constant(rng.random(candidates) < 0.3)
    layer = recency.RecencyBias()
    layer.build(None)
    layer.bias.assign(rng.normal(size=(2, recency.NUM_BUCKETS)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(rows, candidates)).astype(np.float32))

    def scored(per_row: bool):
        with tf.GradientTape() as tape:
            if per_row:
                bias = layer(days, tf.tile(release[None], [rows, 1]),
                             tf.tile(content_only[None], [rows, 1]))
            else:
                bias = layer(days, release, content_only)
            loss = tf.reduce_sum(bias * weights)
        return bias.numpy(), tape.gradient(loss, layer.bias).numpy()

    shared, shared_gradient = scored(per_row=False)
    per_row, per_row_gradient = scored(per_row=True)
    assert shared.shape == (rows, candidates)
    np.testing.assert_array_equal(shared, per_row)
    np.testing.assert_allclose(shared_gradient, per_row_gradient, rtol=1e-5, atol=1e-5)
    assert np.count_nonzero(shared_gradient) >= 5  # several buckets were trained

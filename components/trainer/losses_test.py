"""InBatchSoftmax equals TFRS's Retrieval task loss and masks accidental hits; CatalogueSoftmax
is the exact softmax cross-entropy over the whole catalogue."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from crossfade.components.trainer.losses import CatalogueSoftmax, InBatchSoftmax


@pytest.mark.parametrize("temperature", [1.0, 0.05])
def test_matches_tfrs_retrieval_with_logq_and_accidental_hits(temperature):
    rng = np.random.default_rng(0)
    queries = tf.math.l2_normalize(rng.normal(size=(8, 4)).astype(np.float32), axis=1)
    candidates = tf.math.l2_normalize(rng.normal(size=(8, 4)).astype(np.float32), axis=1)
    ids = tf.constant([1, 2, 3, 1, 5, 2, 7, 8], tf.int64)  # two accidental-hit pairs
    probability = tf.constant(rng.uniform(0.01, 0.2, size=8).astype(np.float32))
    weights = tf.constant(rng.uniform(0.5, 2.0, size=8).astype(np.float32))

    expected = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True)(
        queries, candidates, sample_weight=weights,
        candidate_sampling_probability=probability, candidate_ids=ids, compute_metrics=False,
        compute_batch_metrics=False)
    actual = InBatchSoftmax(temperature)(queries, candidates, probability, ids, weights)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-4)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.5])
def test_logq_correction_subtracts_that_multiple_of_log_q(share):
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    candidates = np.array([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]], np.float32)
    probability = np.array([0.5, 0.1, 0.02], np.float32)
    temperature = 0.2
    logits = queries @ candidates.T / temperature - share * np.log(probability)[None, :]
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.trace(log_softmax)
    inputs = (tf.constant(queries), tf.constant(candidates), tf.constant(probability),
              tf.constant([1, 2, 3], tf.int64))
    actual = InBatchSoftmax(temperature, logq_correction=share)(*inputs)
    assert actual.numpy() == pytest.approx(expected, rel=1e-5)
    # Any other multiple changes the popular first track's pull on every query.
    full = InBatchSoftmax(temperature)(*inputs)
    assert actual.numpy() != pytest.approx(full.numpy(), rel=1e-3)


def test_accidental_hits_do_not_count_as_negatives():
    queries = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    candidates = tf.constant([[1.0, 0.0], [1.0, 0.0]])  # the same track twice
    ones = tf.constant([0.5, 0.5])
    same = InBatchSoftmax()(queries, candidates, ones, tf.constant([4, 4], tf.int64))
    different = InBatchSoftmax()(queries, candidates, ones, tf.constant([4, 5], tf.int64))
    # With the duplicate masked, each row is a one-candidate softmax: zero loss.
    assert same.numpy() == pytest.approx(0.0, abs=1e-6)
    assert different.numpy() > 0.1


def test_catalogue_softmax_is_weighted_cross_entropy_over_every_track():
    queries = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    catalogue = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    rows = np.array([0, 2])
    weights = np.array([1.0, 2.0], np.float32)
    temperature = 0.5
    logits = queries @ catalogue.T / temperature
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(weights * log_softmax[[0, 1], rows]).sum()
    actual = CatalogueSoftmax(temperature)(tf.constant(queries), tf.constant(catalogue),
                                          tf.constant(rows), tf.constant(weights))
    assert actual.numpy() == pytest.approx(expected, rel=1e-5)


def test_score_bias_and_its_diagonal_given_apart_give_the_same_loss_and_gradients():
    rng = np.random.default_rng(1)
    queries = tf.Variable(rng.normal(size=(6, 3)).astype(np.float32))
    candidates = tf.Variable(rng.normal(size=(6, 3)).astype(np.float32))
    bias = tf.Variable(rng.normal(size=(6, 6)).astype(np.float32))
    probability = tf.constant(rng.uniform(0.01, 0.2, size=6).astype(np.float32))
    ids = tf.constant([1, 2, 3, 1, 5, 6], tf.int64)
    temperature = 0.5
    layer = InBatchSoftmax(temperature)
    results = []
    for apart in (False, True):
        with tf.GradientTape() as tape:
            loss = layer(queries, candidates, probability, ids, score_bias=bias,
                         positive_score_bias=tf.linalg.diag_part(bias) if apart else None)
        results.append([loss] + tape.gradient(loss, [queries, candidates, bias]))
    logits = ((queries.numpy() @ candidates.numpy().T + bias.numpy()) / temperature
              - np.log(probability.numpy())[None, :])
    logits[0, 3] = logits[3, 0] = -1e9  # the accidental hit
    expected = (np.log(np.exp(logits).sum(axis=1)) - np.diag(logits)).sum()
    assert results[0][0].numpy() == pytest.approx(expected, rel=1e-5)
    for whole, apart in zip(*results, strict=True):
        np.testing.assert_allclose(apart.numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)

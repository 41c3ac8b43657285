"""build_lists on planted pools: relevance order, MMR's trade-off, exploration's propensities."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components.trainer import reranking

# Pool of 4, best first: tracks 0 and 1 are near-duplicates, 2 and 3 point elsewhere.
EMBEDDINGS = np.array([[1.0, 0.0], [0.995, 0.0998], [0.0, 1.0], [-0.6, 0.8]], np.float32)
RELEVANCE = np.array([0.9, 0.89, 0.5, 0.4], np.float32)


def _build(relevance=RELEVANCE, k=4, diversity=0.0, explore=0.0, seed=1):
    relevance = np.atleast_2d(relevance)
    rows = len(relevance)
    positions, propensities = reranking.build_lists(
        tf.constant(relevance), tf.constant(np.stack([EMBEDDINGS] * rows)), tf.constant(k),
        tf.fill([rows], diversity), tf.fill([rows], explore),
        tf.constant([seed] * rows, tf.int64))
    return positions.numpy(), propensities.numpy()


def test_diversity_zero_is_the_relevance_order():
    positions, propensities = _build(k=4)
    assert positions.tolist() == [[0, 1, 2, 3]]
    assert propensities.tolist() == [[1.0] * 4]


def test_diversity_moves_the_near_duplicate_down():
    positions, _ = _build(k=3, diversity=0.5)
    assert positions[0, 0] == 0 and positions[0, 1] != 1  # 1 is 0's near duplicate
    assert sorted(_build(k=4, diversity=1.0)[0][0]) == [0, 1, 2, 3]


def test_ineligible_entries_are_skipped_and_missing_slots_are_empty():
    relevance = RELEVANCE.copy()
    relevance[[0, 2]] = -np.inf
    positions, propensities = _build(relevance, k=4, diversity=0.3, explore=0.5)
    assert sorted(positions[0, :2]) == [1, 3] and positions[0, 2:].tolist() == [-1, -1]
    assert propensities[0, 1:].tolist() == [1.0, 1.0, 1.0]  # one track left, then none


def test_exploration_propensities_follow_epsilon_greedy():
    positions, propensities = _build(k=4, explore=0.4, seed=11)
    for slot in range(3):
        left = 4 - slot
        assert propensities[0, slot] == pytest.approx(0.6) or \
            propensities[0, slot] == pytest.approx(0.4 / (left - 1))
    assert propensities[0, 3] == 1.0  # the last track has no alternative
    assert sorted(positions[0]) == [0, 1, 2, 3]


def test_k_beyond_a_step_boundary_and_seeds_per_row():
    relevance = np.linspace(1.0, 0.0, 4, dtype=np.float32)
    positions, _ = _build(np.stack([relevance, relevance]), k=4, explore=1.0, seed=3)
    assert positions.shape == (2, 4)
    assert positions[0].tolist() == positions[1].tolist()  # same seed, same inputs
    seeds = reranking.request_seeds(
        tf.constant([0, 0, 5], tf.int64), tf.constant(["a", "b", "a"]),
        tf.constant([["x"], ["x"], ["x"]]), tf.constant([1, 1, 1], tf.int64)).numpy()
    assert seeds[0] != seeds[1] and seeds[2] == 5 and np.all(seeds[:2] > 0)

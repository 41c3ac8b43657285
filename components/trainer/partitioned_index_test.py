"""The partitioned index: every row in one capped partition, exact at full probe, recall on
planted clusters, and the degenerate catalogues (tiny, fewer rows than partitions, all equal)."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components.trainer import partitioned_index as index


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _clustered(clusters: int, per_cluster: int, dim: int = 16, spread: float = 0.1,
               seed: int = 0):
    """(embeddings [clusters x per_cluster, D], their cluster centres [clusters, D])."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(clusters, dim)))
    rows = np.repeat(centres, per_cluster, axis=0)
    return _unit(rows + spread * rng.normal(size=rows.shape) / np.sqrt(dim)), centres


def _members(partitions: index.Partitions):
    return partitions.members[partitions.members != index.PADDING]


def _search(partitions, embeddings, queries, probe, k):
    rows = index.probed_rows(tf.constant(queries), tf.constant(partitions.centroids),
                             tf.constant(partitions.members),
                             tf.constant(probe, tf.int32))
    scores = index.candidate_scores(tf.constant(queries), tf.constant(embeddings), rows)
    top = tf.math.top_k(scores, k=k)
    return tf.gather(rows, top.indices, batch_dims=1).numpy(), top.values.numpy()


def test_every_row_is_in_exactly_one_partition_within_the_capacity():
    embeddings, _ = _clustered(clusters=7, per_cluster=90)  # unequal to any capacity
    partitions = index.build(embeddings, num_partitions=20, seed=3)
    assert partitions.num_partitions == 20
    assert partitions.capacity == int(np.ceil(index.CAPACITY_FACTOR * 630 / 20))
    assert sorted(_members(partitions).tolist()) == list(range(630))
    for row in partitions.members:  # members ascending, then padding only
        kept = row[row != index.PADDING]
        assert (row[:len(kept)] == kept).all() and (np.diff(kept) > 0).all()
    np.testing.assert_allclose(np.linalg.norm(partitions.centroids, axis=1), 1.0, rtol=1e-5)


def test_the_build_is_deterministic_for_a_seed():
    embeddings, _ = _clustered(clusters=5, per_cluster=40)
    first, again = (index.build(embeddings, num_partitions=8, seed=1) for _ in range(2))
    np.testing.assert_array_equal(first.members, again.members)
    np.testing.assert_array_equal(first.centroids, again.centroids)


def test_probing_every_partition_is_brute_force():
    rng = np.random.default_rng(5)
    embeddings = _unit(rng.normal(size=(500, 16)))  # isotropic: no cluster to lean on
    queries = _unit(rng.normal(size=(6, 16)))
    partitions = index.build(embeddings, num_partitions=23, seed=0)
    rows, scores = _search(partitions, embeddings, queries, [23] * 6, k=50)
    exact = queries @ embeddings.T
    expected = np.argsort(-exact, axis=1, kind="stable")[:, :50]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(exact, expected, axis=1), atol=1e-6)


def test_a_few_probes_find_the_planted_neighbours():
    embeddings, centres = _clustered(clusters=40, per_cluster=50, seed=2)
    partitions = index.build(embeddings, num_partitions=40, seed=0)
    queries = _unit(centres + 0.05 * np.random.default_rng(9).normal(size=centres.shape))
    rows, _ = _search(partitions, embeddings, queries, [2] * 40, k=20)
    exact = np.argsort(-(queries @ embeddings.T), axis=1)[:, :20]
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(rows, exact, strict=True)])
    assert recall >= 0.95
    assert rows.shape == (40, 20)


def test_a_rows_probe_limits_its_own_candidates_only():
    embeddings, centres = _clustered(clusters=6, per_cluster=30)
    partitions = index.build(embeddings, num_partitions=6, seed=0)
    queries = tf.constant(centres[:2])
    rows = index.probed_rows(queries, tf.constant(partitions.centroids),
                             tf.constant(partitions.members), tf.constant([1, 3]))
    alone = index.probed_rows(queries[:1], tf.constant(partitions.centroids),
                              tf.constant(partitions.members), tf.constant([1]))
    width = partitions.capacity
    assert rows.shape == (2, 3 * width)
    np.testing.assert_array_equal(rows.numpy()[0, :width], alone.numpy()[0])
    assert (rows.numpy()[0, width:] == index.PADDING).all()
    assert (rows.numpy()[1] != index.PADDING).sum() > (rows.numpy()[0] != index.PADDING).sum()
    scores = index.candidate_scores(queries, tf.constant(embeddings), rows).numpy()
    assert np.isneginf(scores[rows.numpy() == index.PADDING]).all()
    assert np.isfinite(scores[rows.numpy() != index.PADDING]).all()


@pytest.mark.parametrize("size, asked", [(1, None), (3, 10), (12, 12)])
def test_tiny_catalogues_get_at_most_one_partition_per_row(size, asked):
    embeddings = _unit(np.random.default_rng(size).normal(size=(size, 4)))
    partitions = index.build(embeddings, num_partitions=asked)
    assert partitions.num_partitions == min(asked or 1, size)
    assert sorted(_members(partitions).tolist()) == list(range(size))
    rows, _ = _search(partitions, embeddings, embeddings[:1],
                      [partitions.num_partitions], k=size)
    assert sorted(rows[0].tolist()) == list(range(size))


def test_identical_rows_still_fill_partitions_within_the_capacity():
    embeddings = np.tile(_unit(np.ones((1, 8))), (100, 1))  # one point: one true cluster
    partitions = index.build(embeddings, num_partitions=10)
    assert sorted(_members(partitions).tolist()) == list(range(100))
    assert ((partitions.members != index.PADDING).sum(axis=1) <= partitions.capacity).all()


@pytest.mark.parametrize("embeddings, message", [
    (np.zeros((0, 4), np.float32), "non-empty"),
    (np.zeros(4, np.float32), "non-empty"),
])
def test_bad_inputs_are_named(embeddings, message):
    with pytest.raises(ValueError, match=message):
        index.build(embeddings)
    with pytest.raises(ValueError, match="capacity_factor"):
        index.build(np.ones((4, 2), np.float32), capacity_factor=0.5)

"""The served index against the exact path it stands in for: equal at full probe (bias,
cold rows, exclusions, release windows), per-row probes, bias bounds, wide windows."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components import features
from crossfade.components.trainer import recency, served_index
from crossfade.components.trainer.partitioned_index import PADDING

SIZE, DIM, DAY = 600, 8, 20_000
POOL = 20


def _unit(rows):
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def catalogue():
    rng = np.random.default_rng(0)
    embeddings = _unit(rng.normal(size=(SIZE, DIM)))
    release_days = DAY - rng.integers(-3, 400, SIZE)  # some unreleased yet
    release_days[::7] = features.NO_RELEASE_DAY
    content_only = rng.random(SIZE) < 0.2
    bias = np.zeros((2, recency.NUM_BUCKETS), np.float32)
    bias[recency.ID_KNOWN, :15] = np.linspace(0.3, 0.0, 15)  # new releases lifted
    bias[recency.CONTENT_ONLY] = 0.2
    cold_scores = rng.random(SIZE).astype(np.float32)
    cold_scores[:10] = 0.5  # ties: the lower row first, as top_k breaks them
    return dict(embeddings=embeddings, release_days=release_days.astype(np.int64),
                content_only=content_only, bias=bias, cold_scores=cold_scores)


def _index(catalogue, partitions=12, probe=1):
    tables = served_index.build_tables(
        catalogue["embeddings"], catalogue["content_only"], catalogue["release_days"],
        catalogue["bias"], DAY, num_partitions=partitions)
    return served_index.ServedIndex(tables, catalogue["cold_scores"],
                                    catalogue["release_days"], probe)


def _warm_scores(catalogue, queries, days):
    """[B, C] what the exact path scores: cosine plus the recency bias."""
    layer = recency.RecencyBias()
    layer.build(None)
    layer.bias.assign(catalogue["bias"])
    bias = layer(tf.constant(days, tf.int64), tf.constant(catalogue["release_days"]),
                 tf.constant(catalogue["content_only"])).numpy()
    return queries @ catalogue["embeddings"].T + bias, layer


def _requests(batch=6, seed=1):
    rng = np.random.default_rng(seed)
    queries = _unit(rng.normal(size=(batch, DIM)))
    cold = np.array([False, True] * (batch // 2))
    days = np.full(batch, DAY + 1, np.int64)
    window = np.array([0, 0, 30, 30, 0, 5][:batch], np.int32)
    excluded = rng.integers(0, SIZE, (batch, 4)).astype(np.int32)
    excluded[:, -1] = -1  # an unknown id
    return queries, cold, days, window, excluded


def _exact(catalogue, queries, cold, days, window, excluded):
    warm, _ = _warm_scores(catalogue, queries, days)
    scores = np.where(cold[:, None], catalogue["cold_scores"][None, :], warm)
    inside = recency.released_within(tf.constant(days), tf.constant(catalogue["release_days"]),
                                     tf.constant(window)).numpy()
    scores = np.where((window[:, None] == 0) | inside, scores, -np.inf)
    for row, rows in enumerate(excluded):
        scores[row, rows[rows >= 0]] = -np.inf
    top = tf.math.top_k(tf.constant(scores, tf.float32), k=POOL)
    return top.indices.numpy(), top.values.numpy()


def _top(index, catalogue, queries, cold, days, window, excluded, probe):
    _, layer = _warm_scores(catalogue, queries, days)
    table = tf.constant(catalogue["embeddings"])

    def score(rows):
        safe = tf.maximum(rows, 0)
        cosine = tf.linalg.matvec(tf.gather(table, safe), tf.constant(queries))
        return cosine + layer(tf.constant(days), tf.gather(catalogue["release_days"], safe),
                              tf.gather(catalogue["content_only"], safe))

    rows, scores = index.top(tf.constant(queries), tf.constant(cold), tf.constant(days),
                             tf.constant(probe, tf.int32), tf.constant(window),
                             tf.constant(excluded), POOL, score,
                             tf.constant(catalogue["cold_scores"]),
                             tf.constant(catalogue["release_days"]))
    return rows.numpy(), scores.numpy()


def test_probing_every_partition_is_the_exact_path(catalogue):
    index = _index(catalogue)
    request = _requests()
    rows, scores = _top(index, catalogue, *request, probe=[index.num_partitions] * 6)
    exact_rows, exact_scores = _exact(catalogue, *request)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    finite = np.isfinite(exact_scores)
    np.testing.assert_array_equal(rows[finite], exact_rows[finite])


def test_cold_rows_and_small_windows_are_exact_at_any_probe(catalogue):
    index = _index(catalogue)
    request = _requests()
    rows, scores = _top(index, catalogue, *request, probe=[1] * 6)
    exact_rows, exact_scores = _exact(catalogue, *request)
    cold, window = request[1], request[3]
    exact = cold | (window > 0)
    np.testing.assert_allclose(scores[exact], exact_scores[exact], atol=1e-5)
    shown = exact[:, None] & np.isfinite(exact_scores)  # a 5-day window holds fewer
    assert (~np.isfinite(exact_scores[exact])).any()
    np.testing.assert_array_equal(rows[shown], exact_rows[shown])
    # Warm rows without a window: a full list of eligible tracks, none excluded.
    warm = ~exact
    assert np.isfinite(scores[warm]).all()
    for row in np.flatnonzero(warm):
        assert not set(rows[row]) & set(request[4][row])
        assert len(set(rows[row])) == POOL


def test_a_wider_window_than_the_limit_filters_the_probed_tracks(catalogue, monkeypatch):
    monkeypatch.setattr(served_index, "WINDOW_EXACT_LIMIT", 3)
    index = _index(catalogue)
    queries, cold, days, window, excluded = _requests()
    window = np.full(6, 30, np.int32)
    rows, scores = _top(index, catalogue, queries, cold, days, window, excluded,
                        probe=[index.num_partitions] * 6)
    exact_rows, exact_scores = _exact(catalogue, queries, cold, days, window, excluded)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)  # all probed: still exact
    rows, scores = _top(index, catalogue, queries, cold, days, window, excluded, probe=[1] * 6)
    released = catalogue["release_days"][rows]
    shown = np.isfinite(scores)
    assert ((DAY + 1 - released[shown]) < 30).all() and ((DAY + 1 - released[shown]) >= 0).all()


def test_a_rows_list_does_not_depend_on_the_probes_batched_with_it(catalogue):
    index = _index(catalogue, partitions=30)
    request = [value[:2] for value in _requests()]
    alone, _ = _top(index, catalogue, *[value[:1] for value in request], probe=[3])
    together, _ = _top(index, catalogue, *request, probe=[3, 30])
    np.testing.assert_array_equal(alone[0], together[0])


def test_probes_default_and_hold_at_least_the_pool_in_any_partitions(catalogue):
    index = _index(catalogue, partitions=30, probe=2)
    probes = index.probes(tf.constant([0, 1, 7, 99]), size=POOL).numpy()
    sizes = np.sort((index.members.numpy() != PADDING).sum(axis=1))
    least = int(np.argmax(np.cumsum(sizes) >= POOL)) + 1  # the smallest partitions' count
    assert sizes[:least].sum() >= POOL > sizes[:least - 1].sum()
    assert probes.tolist() == [max(2, least), max(1, least), max(7, least),
                               index.num_partitions]


def test_probes_that_cost_what_brute_force_does_are_marked_exact(catalogue):
    index = _index(catalogue, partitions=30)
    capacity = index.members.shape[1]
    assert index.exact_from == max(1, int(np.ceil(SIZE * served_index.EXACT_SEARCH_SHARE
                                                  / capacity)))
    flags = index.exact(tf.constant([index.exact_from - 1, index.exact_from, 30])).numpy()
    assert flags.tolist() == [False, True, True]


def test_bias_bounds_are_the_largest_bias_a_member_can_reach():
    bias = np.zeros((2, recency.NUM_BUCKETS), np.float32)
    bias[0, 1] = 0.5  # released today
    bias[0, 20] = 0.1  # a year or more
    bias[1, recency.UNKNOWN_BUCKET] = 0.3
    members = np.array([[0, 1], [2, PADDING], [3, PADDING]])
    release_days = np.array([DAY, DAY - 400, DAY - 3, features.NO_RELEASE_DAY])
    content_only = np.array([False, False, False, True])
    bounds = served_index.bias_bounds(members, content_only, release_days, bias, DAY)
    # Row 0 is released today (0.5 reachable); row 2, three days old, only ages: 0.1.
    np.testing.assert_allclose(bounds, [0.5, 0.1, 0.3])
    assert not served_index.bias_bounds(members, content_only, release_days, None, DAY).any()


def test_partitions_are_built_per_kind(catalogue):
    tables = served_index.build_tables(
        catalogue["embeddings"], catalogue["content_only"], catalogue["release_days"],
        catalogue["bias"], DAY, num_partitions=10)
    members = tables.partitions.members
    kinds = [set(catalogue["content_only"][row[row != PADDING]]) for row in members]
    assert all(len(kind) == 1 for kind in kinds)
    assert sorted(members[members != PADDING].tolist()) == list(range(SIZE))


def test_the_default_probe_is_checked(catalogue):
    with pytest.raises(ValueError, match=r"default_probe must be in 1\.\.13, got 99"):
        _index(catalogue, partitions=12, probe=99)  # 12 asked: ceil(9.6) + ceil(2.4) = 13
    assert served_index.resolve_probe(0, 40) == 3
    assert served_index.resolve_probe(5, 4) == 4


@pytest.mark.parametrize("partitions, first_good, expected", [
    (141, 9, 9), (141, 1, 1), (141, 140, 140), (141, 200, 141), (1, 1, 1), (16, 16, 16)])
def test_the_least_probe_reaching_the_target_is_found_in_few_calls(partitions, first_good,
                                                                    expected):
    calls = []

    def recall(probe):
        calls.append(probe)
        return 0.99 if probe >= first_good else 0.5

    probe, value = served_index.least_probe(partitions, recall, target=0.97)
    assert probe == expected
    assert value == (1.0 if expected == partitions else 0.99)  # all partitions: exact
    assert len(calls) <= 2 * np.ceil(np.log2(partitions)) + 1


def test_recall_found_without_searching_is_the_searchs_at_every_probe(catalogue):
    index = _index(catalogue, partitions=30)
    batch = 64
    queries = _unit(np.random.default_rng(3).normal(size=(batch, DIM)))
    warm = (queries, np.zeros(batch, bool), np.full(batch, DAY + 1, np.int64),
            np.zeros(batch, np.int32), np.full((batch, 1), -1, np.int32))
    exact_rows, exact_scores = _exact(catalogue, *warm)
    without_search = index.recall_by_probe(queries, exact_rows, POOL)
    recalls = []
    for probe in range(1, index.num_partitions + 1):
        _, scores = _top(index, catalogue, *warm, probe=[probe] * batch)
        searched = served_index.recall_by_score(tf.constant(scores),
                                                tf.constant(exact_scores)).numpy().mean()
        assert without_search(probe) == pytest.approx(searched, abs=1e-6), probe
        recalls.append(searched)
    assert recalls[0] < 0.9 and recalls[-1] == 1.0  # the probes span the range


def test_recall_by_score_counts_ties_at_the_cut_as_found():
    exact = tf.constant([[0.9, 0.8, 0.5], [0.9, 0.8, 0.5]])
    served = tf.constant([[0.9, 0.5, 0.4, 0.1], [0.9, 0.8, 0.5 - 1e-7, 0.5]])
    np.testing.assert_allclose(served_index.recall_by_score(served, exact).numpy(),
                               [2 / 3, 1.0])


def test_membership_in_exclusions_by_binary_search():
    rows = tf.constant([[5, 1, PADDING, 9], [3, 3, 0, 7]], tf.int32)
    excluded = tf.constant([[9, 5, 5], [-1, -1, -1]], tf.int32)
    assert served_index.members_of(rows, excluded).numpy().tolist() == [
        [True, False, True, True], [False, False, False, False]]
    none = served_index.members_of(rows, tf.zeros([2, 0], tf.int32)).numpy()
    assert none.tolist() == [[False, False, True, False], [False] * 4]  # padding only


def test_an_empty_batch_and_no_exclusion_columns_are_answered(catalogue):
    index = _index(catalogue)
    queries, cold, days, window, excluded = _requests()
    rows, scores = _top(index, catalogue, queries[:0], cold[:0], days[:0], window[:0],
                        excluded[:0], probe=np.zeros(0, np.int32))
    assert rows.shape == scores.shape == (0, POOL)
    rows, scores = _top(index, catalogue, queries, cold, days, window,
                        np.zeros((6, 0), np.int32), probe=[0] * 6)
    assert np.isfinite(scores[:2]).all()

"""top_k, ranking_metrics and recall_curve against hand-computed and brute-force values."""
import numpy as np
import pytest
import scipy.sparse as sp

from crossfade.pipeline.quality import ranking_metrics

LOG2_3 = np.log2(3.0)


def _csr(rows, num_items):
    """Binary csr matrix from one list of item indices per user."""
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    users = [u for u, _ in data]
    items = [i for _, i in data]
    return sp.csr_matrix((np.ones(len(data)), (users, items)), shape=(len(rows), num_items))


def _brute_top_k(scores, exclude, k):
    exclude = exclude.toarray() != 0
    result = np.full((scores.shape[0], k), ranking_metrics.PAD)
    for u in range(scores.shape[0]):
        allowed = [i for i in range(scores.shape[1]) if not exclude[u, i]]
        ranked = sorted(allowed, key=lambda i: (-scores[u, i], i))[:k]
        result[u, :len(ranked)] = ranked
    return result


# --- top_k -----------------------------------------------------------------------------------

def test_top_k_orders_by_descending_score():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    top = ranking_metrics.top_k(scores, sp.csr_matrix(scores.shape), 3)
    np.testing.assert_array_equal(top, [[3, 1, 2], [0, 1, 2]])
    assert top.dtype == np.int64


def test_top_k_never_returns_excluded_items():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [4.0, 3.0, 2.0, 1.0]])
    exclude = _csr([[3], [0, 2]], 4)
    np.testing.assert_array_equal(ranking_metrics.top_k(scores, exclude, 2), [[1, 2], [1, 3]])


def test_top_k_stored_zero_is_not_an_exclusion():
    scores = np.array([[0.1, 0.9]])
    exclude = sp.csr_matrix((np.array([0.0]), (np.array([0]), np.array([1]))), shape=(1, 2))
    np.testing.assert_array_equal(ranking_metrics.top_k(scores, exclude, 1), [[1]])


def test_top_k_breaks_ties_by_lower_item_index():
    # Items 1, 2, 3 tie at 2.0; the k-th slot falls inside the tie.
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0, 5.0]])
    none = sp.csr_matrix(scores.shape)
    np.testing.assert_array_equal(ranking_metrics.top_k(scores, none, 2), [[1, 2], [0, 1]])
    np.testing.assert_array_equal(ranking_metrics.top_k(scores, none, 4),
                                  [[1, 2, 3, 0], [0, 1, 2, 3]])
    # With item 1 excluded the tie is filled from items 2 and 3.
    np.testing.assert_array_equal(
        ranking_metrics.top_k(scores, _csr([[1], [0, 2]], 5), 2), [[2, 3], [1, 3]])


def test_top_k_pads_when_too_few_items_remain():
    scores = np.array([[0.3, 0.2, 0.1]])
    top = ranking_metrics.top_k(scores, _csr([[0, 2]], 3), 2)
    np.testing.assert_array_equal(top, [[1, ranking_metrics.PAD]])


def test_top_k_keeps_float64_precision():
    # 1 + 1e-12 and 1 are equal in float32; the order must still follow the float64 values.
    scores = np.array([[1.0, 1.0 + 1e-12]])
    np.testing.assert_array_equal(ranking_metrics.top_k(scores, sp.csr_matrix((1, 2)), 1),
                                  [[1]])


def test_top_k_matches_brute_force_across_blocks(monkeypatch):
    # Few distinct values force ties at the cutoff; a tiny block size forces several blocks.
    monkeypatch.setattr(ranking_metrics, "_BLOCK_ENTRIES", 40)
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        scores = rng.integers(0, 4, size=(23, 12)).astype(dtype)
        exclude = sp.random(23, 12, density=0.3, format="csr", random_state=4)
        for k in (1, 5, 12):
            np.testing.assert_array_equal(ranking_metrics.top_k(scores, exclude, k),
                                          _brute_top_k(scores, exclude, k))


def test_top_k_rejects_bad_input():
    none = sp.csr_matrix((1, 3))
    with pytest.raises(ValueError, match="finite"):
        ranking_metrics.top_k(np.array([[0.0, np.nan, 1.0]]), none, 1)
    with pytest.raises(ValueError, match="k must be"):
        ranking_metrics.top_k(np.zeros((1, 3)), none, 4)
    with pytest.raises(ValueError, match="shape"):
        ranking_metrics.top_k(np.zeros((1, 3)), sp.csr_matrix((2, 3)), 1)


# --- ranking_metrics / recall_curve ----------------------------------------------------------

# 3 users, 6 items:
#   user 0: ranked [0, 1, 2], relevant {1, 4, 5}: one hit, at rank 1
#   user 1: ranked [3, 4, 5], relevant {3}:       one hit, at rank 0
#   user 2: ranked [0, 1, 2], relevant {2}:       one hit, at rank 2
TOP = np.array([[0, 1, 2], [3, 4, 5], [0, 1, 2]])
RELEVANT = _csr([[1, 4, 5], [3], [2]], 6)


def test_metrics_at_3_match_hand_computation():
    # recall: 1/3, 1/1, 1/1.
    recall = (1 / 3 + 1 + 1) / 3
    # ndcg: user 0 DCG = 1/log2(1+2), IDCG over min(3, 3) = 3 positions = 1 + 1/log2 3 + 1/2;
    # user 1 DCG = IDCG = 1; user 2 DCG = 1/log2(2+2) = 1/2, IDCG = 1.
    ndcg = ((1 / LOG2_3) / (1 + 1 / LOG2_3 + 0.5) + 1 + 0.5) / 3
    metrics = ranking_metrics.ranking_metrics(TOP, RELEVANT, k=3)
    assert metrics == pytest.approx({"recall@3": recall, "ndcg@3": ndcg, "hit@3": 1.0})
    assert metrics["recall@3"] == pytest.approx(0.777777, abs=1e-6)
    assert metrics["ndcg@3"] == pytest.approx(0.598693, abs=1e-6)


def test_metrics_at_2_cut_the_list_and_the_ideal():
    # User 2's hit at rank 2 falls outside; user 0's IDCG now covers min(3, 2) = 2 positions.
    recall = (1 / 3 + 1 + 0) / 3
    ndcg = ((1 / LOG2_3) / (1 + 1 / LOG2_3) + 1 + 0) / 3
    metrics = ranking_metrics.ranking_metrics(TOP, RELEVANT, k=2)
    assert metrics == pytest.approx({"recall@2": recall, "ndcg@2": ndcg, "hit@2": 2 / 3})
    assert metrics["ndcg@2"] == pytest.approx(0.462284, abs=1e-6)


def test_users_without_relevant_items_are_ignored():
    top = np.vstack([TOP, [[1, 2, 3]]])
    relevant = _csr([[1, 4, 5], [3], [2], []], 6)
    assert (ranking_metrics.ranking_metrics(top, relevant, k=3)
            == pytest.approx(ranking_metrics.ranking_metrics(TOP, RELEVANT, k=3)))
    np.testing.assert_allclose(ranking_metrics.recall_curve(top, relevant, 3),
                               ranking_metrics.recall_curve(TOP, RELEVANT, 3))
    with pytest.raises(ValueError, match="no user"):
        ranking_metrics.ranking_metrics(top[3:], relevant[3:], k=3)


def test_padding_is_never_a_hit():
    # PAD = -1 must not alias the previous user's last item (user 0's item 5).
    top = np.array([[5, 0], [ranking_metrics.PAD, ranking_metrics.PAD]])
    relevant = _csr([[5], [5]], 6)
    assert ranking_metrics.ranking_metrics(top, relevant, k=2)["hit@2"] == 0.5


def test_recall_curve_matches_hand_values_and_metrics():
    # Recall@1: only user 1 hits -> 1/3; @2 adds user 0's 1/3; @3 adds user 2.
    np.testing.assert_allclose(ranking_metrics.recall_curve(TOP, RELEVANT, 3),
                               [1 / 3, 4 / 9, 7 / 9])


def test_recall_curve_is_monotone_and_agrees_with_ranking_metrics():
    rng = np.random.default_rng(0)
    relevant = sp.random(50, 200, density=0.05, format="csr", random_state=1)
    top = np.argsort(rng.random((50, 200)), axis=1)[:, :30]
    curve = ranking_metrics.recall_curve(top, relevant, 30)
    assert curve.shape == (30,)
    assert np.all(np.diff(curve) >= 0)
    for k in (1, 10, 30):
        assert curve[k - 1] == pytest.approx(
            ranking_metrics.ranking_metrics(top, relevant, k)[f"recall@{k}"])


def test_metrics_need_k_columns():
    with pytest.raises(ValueError, match="at least k"):
        ranking_metrics.ranking_metrics(TOP, RELEVANT, k=4)
    with pytest.raises(ValueError, match="at least max_k"):
        ranking_metrics.recall_curve(TOP, RELEVANT, 4)


# --- coverage --------------------------------------------------------------------------------

def test_coverage_counts_distinct_listed_items_over_the_catalogue():
    top = np.array([[0, 1, 2], [1, 2, 3], [1, ranking_metrics.PAD, ranking_metrics.PAD]])
    # Items 0..3 appear in some top 3 of a 10-item catalogue; PAD is not an item.
    assert ranking_metrics.coverage(top, 10, k=3) == pytest.approx(0.4)
    # Only the first k columns count: at k=1 the lists hold items 0 and 1.
    assert ranking_metrics.coverage(top, 10, k=1) == pytest.approx(0.2)


def test_coverage_rejects_short_lists():
    with pytest.raises(ValueError, match="k=3"):
        ranking_metrics.coverage(np.zeros((2, 2), np.int64), 10, k=3)

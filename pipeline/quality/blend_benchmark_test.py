"""The blend benchmark's pairs and metrics on planted cases."""
import numpy as np
import pytest
import scipy.sparse as sp

from crossfade.pipeline.quality import blend_benchmark as bb


def _rows(*sets, items=8):
    matrix = sp.lil_matrix((len(sets), items), dtype=np.float32)
    for row, values in enumerate(sets):
        for item in values:
            matrix[row, item] = 1.0
    return matrix.tocsr()


def test_friend_pairs_are_known_users_once_whichever_way_round(tmp_path):
    (tmp_path / "friends.csv").write_text("user_id,friend_id\na,b\nb,a\na,c\nc,zz\nd,d\n")
    users = np.array([b"a", b"b", "c", "d"], dtype=object)  # bytes as read from examples
    assert bb.friend_pairs(str(tmp_path), users).tolist() == [[0, 1], [0, 2]]
    with pytest.raises(ValueError, match="needs friend pairs"):
        bb.friend_pairs(str(tmp_path / "nowhere"), users)


def test_pairs_need_both_members_to_keep_a_test_item_outside_their_union():
    seen = _rows({0}, {1}, {2}, set())
    test = _rows({1, 3}, {4}, {0}, {5})
    train = _rows({0}, {1}, {2}, set())
    # (0, 1): 0 keeps 3, 1 keeps 4. (0, 2): 2's only test item is 0's seen item 0.
    # (1, 3): 3 has no training play.
    pairs = np.array([[0, 1], [0, 2], [1, 3]])
    assert bb.eligible(pairs, seen, test, train).tolist() == [[0, 1]]


def test_random_pairs_are_distinct_and_seeded():
    pairs = bb.random_pairs(np.arange(10), 12, seed=3)
    assert len({tuple(p) for p in pairs}) == 12 and (pairs[:, 0] < pairs[:, 1]).all()
    assert pairs.tolist() == bb.random_pairs(np.arange(10), 12, seed=3).tolist()
    assert len(bb.random_pairs(np.arange(3), 12, seed=0)) == 3  # only three exist


def test_pair_metrics_on_a_planted_pair():
    # Member a's relevant items {0, 1}, b's {2, 3}; solo lists find one each... a: 0, b: 2, 3.
    relevant_a, relevant_b = _rows({0, 1}), _rows({2, 3})
    solo = np.array([[[0, 5, 6], [2, 3, 7]]])
    blend = np.array([[0, 2, 4]])  # a: 1 of 2 (solo 1 of 2), b: 1 of 2 (solo 2 of 2)
    content = sp.csr_matrix(np.eye(8, dtype=np.float32))  # every track its own genre
    more = np.array([True])  # a is the more mainstream
    result = bb.pair_metrics(blend, solo, relevant_a, relevant_b, more, content, k=3)
    assert result["recall ratio"] == pytest.approx((0.5 + 0.5) / (0.5 + 1.0))
    assert result["worst-member ratio"] == pytest.approx(0.5)
    assert result["per-pair gap"] == pytest.approx(0.0)  # one hit each
    # ...but a keeps all of their solo hits (1 of 1) and b half (1 of 2): 100 · 0.5 / 1.5.
    assert result["share gap"] == pytest.approx(100 / 3)
    assert result["mainstream lead"] == pytest.approx(100 / 3)  # a, the mainstream one
    flipped = bb.pair_metrics(blend, solo, relevant_a, relevant_b, ~more, content, k=3)
    assert flipped["mainstream lead"] == pytest.approx(-100 / 3)
    assert flipped["share gap"] == pytest.approx(100 / 3)
    assert result["coherence"] == pytest.approx(0.0)  # nothing alike
    lopsided = bb.pair_metrics(np.array([[0, 1, 4]]), solo, relevant_a, relevant_b, more,
                               None, 3)
    assert lopsided["share gap"] == pytest.approx(100.0)
    assert lopsided["per-pair gap"] == pytest.approx(100.0)
    assert lopsided["worst-member ratio"] == pytest.approx(0.0)
    assert "coherence" not in lopsided


def test_mainstream_lead_pools_pairs_by_role():
    # Each pair's blend serves one member only, the more mainstream in the first pair and the
    # other in the second: lopsided per pair, but neither role is favoured.
    blend_hits = np.array([[1, 0], [1, 0]])
    solo_hits = np.array([[1, 1], [1, 1]])
    lead = bb.mainstream_lead
    assert lead(blend_hits, solo_hits, np.array([True, False])) == pytest.approx(0.0)
    # The more mainstream member takes every hit in both pairs; then the other one does.
    assert lead(blend_hits, solo_hits, np.array([True, True])) == pytest.approx(100.0)
    assert lead(blend_hits, solo_hits, np.array([False, False])) == pytest.approx(-100.0)
    assert np.isnan(lead(blend_hits, np.array([[1, 0], [1, 0]]), np.array([True] * 2)))


def test_mainstreamness_is_the_mean_popularity_of_a_users_items():
    # Item 0 is played by three users, item 1 by one, item 2 by two; user 3 plays nothing.
    train = sp.csr_matrix(np.array([[1, 0, 1], [1, 1, 0], [1, 0, 1], [0, 0, 0]], float))
    assert bb.mainstreamness(train).tolist() == pytest.approx([2.5, 2.0, 2.5, 0.0])

"""Consumption diversity on planted vectors and genres whose answers are worked out by hand."""
import math

import numpy as np
import pytest

from crossfade.components.simulation import consumption

# Three directions in the plane: east, north, west (scaled: cosine ignores length).
EAST, NORTH, WEST = [1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]


def _brute_ild(vectors, consumed):
    """The definition, pair by pair."""
    out = []
    for vecs, mask in zip(vectors, consumed, strict=True):
        chosen = vecs[mask]
        dists = [1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)
                 for i, a in enumerate(chosen) for b in chosen[i + 1:]]
        out.append(np.mean(dists) if dists else np.nan)
    return np.array(out)


def _brute_gs(users, tracks, vectors, weights):
    """Anderson et al.'s formula taken literally: weighted mean cosine to the weighted centre."""
    scores = []
    for u in np.unique(users):
        rows = users == u
        unit = vectors[tracks[rows]] / np.linalg.norm(vectors[tracks[rows]], axis=1)[:, None]
        w = weights[rows]
        mu = (w[:, None] * unit).sum(0) / w.sum()
        scores.append((w * (unit @ mu) / np.linalg.norm(mu)).sum() / w.sum())
    return np.array(scores)


def test_ild_planted_list():
    vectors = np.array([[EAST, NORTH, WEST]] * 4)
    consumed = np.array([[True, True, True],     # distances 1 (E-N), 2 (E-W), 1 (N-W)
                         [True, True, False],    # E-N only
                         [False, False, True],   # one track: no pair
                         [False, False, False]])
    got = consumption.intra_list_diversity(vectors, consumed)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got[:2], [4 / 3, 1.0], atol=1e-12)
    assert np.isnan(got[2:]).all()


def test_ild_identical_tracks_are_zero_and_opposite_ones_two():
    vectors = np.array([[EAST, EAST, EAST], [EAST, WEST, EAST]])
    got = consumption.intra_list_diversity(vectors, np.array([[True] * 3, [True, True, False]]))
    np.testing.assert_allclose(got, [0.0, 2.0], atol=1e-12)
    assert (got >= 0).all()


def test_ild_matches_pairwise_definition_and_ignores_unconsumed_zero_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 6, 4))
    consumed = rng.random((50, 6)) < 0.6
    vectors[~consumed] = 0.0  # unconsumed slots are never looked at, even with no direction
    np.testing.assert_allclose(consumption.intra_list_diversity(vectors, consumed),
                               _brute_ild(vectors, consumed), atol=1e-12, equal_nan=True)


def test_ild_rejects_bad_input():
    vectors = np.array([[EAST, [0.0, 0.0]]])
    with pytest.raises(ValueError, match=r"vectors\[0, 1\] is consumed but has zero norm"):
        consumption.intra_list_diversity(vectors, np.array([[True, True]]))
    with pytest.raises(ValueError, match="consumed has shape"):
        consumption.intra_list_diversity(vectors, np.array([[True, True, True]]))
    with pytest.raises(ValueError, match="consumed must be a bool"):
        consumption.intra_list_diversity(vectors, np.array([[1, 0]]))
    with pytest.raises(ValueError, match="vectors must be"):
        consumption.intra_list_diversity(vectors[0], np.array([True, True]))
    with pytest.raises(ValueError, match="finite"):
        consumption.intra_list_diversity(np.full((1, 2, 2), np.nan), np.array([[True, True]]))


def test_genre_entropy_planted():
    assert consumption.genre_entropy(np.array([0, 0, 1, 1]), 2) == pytest.approx(1.0)
    assert consumption.genre_entropy(np.array([3, 1, 2, 0]), 4) == pytest.approx(2.0)
    # Absent genres add nothing: the same plays over a bigger genre vocabulary.
    assert consumption.genre_entropy(np.array([0, 0, 1, 1]), 10) == pytest.approx(1.0)
    assert consumption.genre_entropy(np.array([5, 5, 5]), 6) == 0.0
    assert consumption.genre_entropy(np.array([], dtype=int), 3) == 0.0


def test_genre_entropy_weights_act_as_repeats():
    # p = (3/4, 1/4): H = -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.811278...
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    weighted = consumption.genre_entropy(np.array([0, 1]), 2, weights=np.array([3.0, 1.0]))
    assert weighted == pytest.approx(expected)
    assert consumption.genre_entropy(np.array([0, 0, 0, 1]), 2) == pytest.approx(expected)
    assert consumption.genre_entropy(np.array([0, 1]), 2, weights=np.zeros(2)) == 0.0


def test_genre_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match=r"genres must be in \[0, 2\)"):
        consumption.genre_entropy(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="genres must be integers"):
        consumption.genre_entropy(np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="num_genres"):
        consumption.genre_entropy(np.array([0]), 0)
    with pytest.raises(ValueError, match="weights must be finite and non-negative"):
        consumption.genre_entropy(np.array([0, 1]), 2, weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="weights has shape"):
        consumption.genre_entropy(np.array([0, 1]), 2, weights=np.ones(3))


# Catalogue rows: 0 east, 1 north, 2 west, 3 north-east, 4 no direction (never played below).
VECTORS = np.array([EAST, NORTH, WEST, [1.0, 1.0], [0.0, 0.0]])


def test_gs_planted_users():
    # User 7: east twice, north once -> mu = (2/3, 1/3), GS = |mu| = sqrt(5)/3.
    # User 3: east and west cancel -> mu = 0 -> GS 0.  User 5: one track -> GS 1.
    users = np.array([7, 3, 7, 5, 3, 7, 5])
    tracks = np.array([0, 0, 1, 3, 2, 0, 3])
    ids, scores = consumption.generalist_specialist(users, tracks, VECTORS)
    np.testing.assert_array_equal(ids, [3, 5, 7])
    np.testing.assert_allclose(scores, [0.0, 1.0, math.sqrt(5) / 3], atol=1e-12)


def test_gs_weights_act_as_play_counts_and_zero_weight_user_is_nan():
    ids, scores = consumption.generalist_specialist(
        np.array([7, 7, 9]), np.array([0, 1, 2]), VECTORS, weights=np.array([2.0, 1.0, 0.0]))
    np.testing.assert_array_equal(ids, [7, 9])
    assert scores[0] == pytest.approx(math.sqrt(5) / 3)
    assert np.isnan(scores[1])


def test_gs_equals_the_papers_formula_on_random_plays():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 8))
    users, tracks = rng.integers(0, 12, 400), rng.integers(0, 30, 400)
    weights = rng.random(400) + 0.1
    ids, scores = consumption.generalist_specialist(users, tracks, vectors, weights)
    np.testing.assert_array_equal(ids, np.unique(users))
    np.testing.assert_allclose(scores, _brute_gs(users, tracks, vectors, weights), atol=1e-12)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_gs_empty_plays():
    ids, scores = consumption.generalist_specialist(np.array([], int), np.array([], int), VECTORS)
    assert ids.shape == scores.shape == (0,)


def test_gs_rejects_bad_input():
    with pytest.raises(ValueError, match=r"track_vectors\[4\] has zero norm"):
        consumption.generalist_specialist(np.array([1, 1]), np.array([0, 4]), VECTORS)
    with pytest.raises(ValueError, match="tracks has shape"):
        consumption.generalist_specialist(np.array([1, 1]), np.array([0]), VECTORS)
    with pytest.raises(ValueError, match=r"tracks must be in \[0, 5\)"):
        consumption.generalist_specialist(np.array([1]), np.array([5]), VECTORS)
    with pytest.raises(ValueError, match="weights has shape"):
        consumption.generalist_specialist(np.array([1]), np.array([0]), VECTORS, np.ones(2))
    with pytest.raises(ValueError, match="track_vectors must be"):
        consumption.generalist_specialist(np.array([1]), np.array([0]), VECTORS[0])
    with pytest.raises(ValueError, match="users must be 1-D"):
        consumption.generalist_specialist(np.array([[1]]), np.array([0]), VECTORS)

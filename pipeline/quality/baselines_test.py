"""Baselines on tiny matrices whose right answer is known, and EASE against its dense formula."""
import copy
import json
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from crossfade.pipeline.quality import baselines


def _csr(rows, num_items):
    """Binary csr matrix from one list of item indices per user."""
    pairs = [(u, i) for u, items in enumerate(rows) for i in items]
    return sp.csr_matrix((np.ones(len(pairs)), ([u for u, _ in pairs], [i for _, i in pairs])),
                         shape=(len(rows), num_items))


def _random_binary(num_users, num_items, seed, density=0.3):
    matrix = sp.random(num_users, num_items, density=density, format="csr", random_state=seed)
    matrix.data[:] = 1.0
    return matrix


def _dense_ease_scores(train, l2):
    """Steck (2019), Algorithm 1, on dense matrices."""
    x = train.toarray()
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return x @ b


# Items 0 and 1 always go together; item 2 is shared with item 3 by user 3.
TRAIN = _csr([[0, 1], [0, 1], [0, 1, 2], [2, 3], [0]], 4)


def test_names_are_the_benchmark_keys():
    assert [baselines.MostPopular.name, baselines.ItemKNN.name, baselines.EASE.name,
            baselines.IALS.name, baselines.ContentKNN.name] == list(baselines.METHODS)
    assert list(baselines.METHODS) == ["most-popular", "item-knn", "ease", "ials",
                                       "content-knn"]
    assert set(baselines.DEFAULT_GRIDS) == {"item-knn", "ease", "ials"}


def test_most_popular_counts_training_users_per_item():
    # Item popularity: 0 -> 4 users, 1 -> 3, 2 -> 2, 3 -> 1. Duplicates and weights don't
    # count twice: the matrix is binarised.
    weighted = TRAIN.copy()
    weighted.data *= 7.0
    model = baselines.MostPopular().fit(weighted)
    scores = model.scores(np.array([0, 4]))
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, [[4, 3, 2, 1], [4, 3, 2, 1]])
    # User 4 has seen item 0, so its list starts at item 1.
    np.testing.assert_array_equal(
        baselines.recommend(model, np.array([4]), TRAIN[[4]], 3), [[1, 2, 3]])


def test_item_knn_cosine_values_and_co_occurring_item():
    model = baselines.ItemKNN(neighbours=10).fit(TRAIN)
    # User 4 holds only item 0. Co-occurrence: (0,1) = 3 users, (0,2) = 1; item norms are
    # sqrt(4), sqrt(3), sqrt(2), sqrt(1). Its own similarity is not used.
    scores = model.scores(np.array([4]))[0]
    np.testing.assert_allclose(scores, [0.0, 3 / np.sqrt(12), 1 / np.sqrt(8), 0.0], rtol=1e-6)
    np.testing.assert_array_equal(baselines.recommend(model, np.array([4]), TRAIN[[4]], 1),
                                  [[1]])


def test_item_knn_prunes_neighbours_per_target_item():
    # Item 2's most similar item is 3 (1/sqrt(2) against 1/sqrt(8) for item 0), so with one
    # neighbour item 0 no longer contributes to item 2; item 1 keeps item 0 (3/sqrt(12)).
    scores = baselines.ItemKNN(neighbours=1).fit(TRAIN).scores(np.array([4]))[0]
    np.testing.assert_allclose(scores, [0.0, 3 / np.sqrt(12), 0.0, 0.0], rtol=1e-6)


def test_item_knn_shrink():
    scores = baselines.ItemKNN(neighbours=10, shrink=1.0).fit(TRAIN).scores(np.array([4]))[0]
    np.testing.assert_allclose(scores[1], 3 / (np.sqrt(12) + 1), rtol=1e-6)


@pytest.mark.parametrize("shape", [(15, 40), (40, 15)], ids=["users<items", "users>items"])
def test_ease_solvers_match_dense_formula(shape):
    train = _random_binary(*shape, seed=0)
    users = np.arange(shape[0])
    expected = _dense_ease_scores(train, l2=3.0)
    for solver in ("auto", "woodbury", "dense"):
        scores = baselines.EASE(l2=3.0, solver=solver).fit(train).scores(users)
        assert scores.dtype == np.float32 and scores.shape == shape
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5, err_msg=solver)


def test_ease_auto_picks_woodbury_only_with_fewer_users():
    wide = baselines.EASE(l2=1.0).fit(_random_binary(5, 9, seed=1))
    assert wide.weights is None and wide.kernel_inverse.shape == (5, 5)
    tall = baselines.EASE(l2=1.0).fit(_random_binary(9, 5, seed=1))
    assert tall.kernel_inverse is None and tall.weights.shape == (5, 5)


def test_ease_has_zero_diagonal():
    train = _random_binary(12, 20, seed=2)
    dense = baselines.EASE(l2=2.0, solver="dense").fit(train)
    np.testing.assert_array_equal(np.diag(dense.weights), 0.0)
    # A user holding only item i gets score B_ii = 0 for item i from either solver.
    one_item_users = sp.vstack([train, sp.identity(20, format="csr")]).tocsr()
    for solver in ("dense", "woodbury"):
        model = baselines.EASE(l2=2.0, solver=solver).fit(one_item_users)
        scores = model.scores(np.arange(12, 32))
        np.testing.assert_allclose(np.diag(scores), 0.0, atol=1e-6, err_msg=solver)


@pytest.mark.skipif(not baselines.IALS_AVAILABLE, reason="implicit is not installed")
def test_ials_recovers_two_communities():
    # Users 0-9 interact with items 0-9 and users 10-19 with items 10-19, each user missing
    # two items of their own block (every item keeps 8 users). A two-community factorisation
    # should recommend exactly each user's two missing items.
    rows, missing = [], []
    for user in range(20):
        base = 0 if user < 10 else 10
        held_out = {base + user % 10, base + (user + 3) % 10}
        rows.append([item for item in range(base, base + 10) if item not in held_out])
        missing.append(held_out)
    train = _csr(rows, 20)

    def fit():
        return baselines.IALS(factors=4, regularization=1.0, alpha=1.0, iterations=15,
                              seed=0).fit(train)

    model = fit()
    scores = model.scores(np.arange(20))
    assert scores.shape == (20, 20) and scores.dtype == np.float32
    top = baselines.recommend(model, np.arange(20), train, 2)
    assert [set(row) for row in top.tolist()] == missing
    np.testing.assert_array_equal(fit().item_factors, model.item_factors)  # seeded


class _FavouriteItem:
    """Scores one fixed item 1 and every other item 0."""

    name = "favourite"

    def __init__(self, item):
        self.item = item
        self.num_items = None

    def fit(self, train):
        self.num_items = train.shape[1]
        return self

    def scores(self, users):
        scores = np.zeros((len(users), self.num_items), dtype=np.float32)
        scores[:, self.item] = 1.0
        return scores


def test_tune_picks_best_value_and_reports_all():
    # k = 1: the list is the favourite item unless the user trained on it, then item 0
    # (lowest index among the zero scores that remain).
    train = _csr([[2], [], [], []], 4)
    validation = _csr([[0], [1], [1], []], 4)  # user 3 has no validation item: not scored
    best, recalls = baselines.tune(_FavouriteItem, [3, 1, 2], train, validation, k=1)
    # favourite 3: lists [3], [3], [3] -> 0 hits; favourite 1: [1], [1], [1] -> users 1, 2;
    # favourite 2: user 0 trained on item 2 so gets [0] -> user 0 only.
    assert recalls == pytest.approx({3: 0.0, 1: 2 / 3, 2: 1 / 3})
    assert best == 1


def test_tune_ties_go_to_the_first_value():
    validation = _csr([[0], [1]], 3)
    best, recalls = baselines.tune(_FavouriteItem, [2, 1, 0], sp.csr_matrix((2, 3)),
                                   validation, k=1)
    assert recalls == pytest.approx({2: 0.0, 1: 0.5, 0: 0.5})
    assert best == 1


def test_tune_needs_hashable_values():
    with pytest.raises(TypeError, match="Params"):
        baselines.tune(_FavouriteItem, [{"item": 0}], sp.csr_matrix((1, 2)),
                       _csr([[0]], 2), k=1)


def test_params_is_a_hashable_keyword_dict():
    params = baselines.Params(factors=8, regularization=0.1)
    assert dict(**params) == {"factors": 8, "regularization": 0.1}
    assert list(params) == ["factors", "regularization"]
    assert {params: 1}[baselines.Params(factors=8, regularization=0.1)] == 1
    assert params == baselines.Params(regularization=0.1, factors=8)
    assert params != baselines.Params(factors=8, regularization=1.0)
    assert str(params) == "factors=8, regularization=0.1"
    assert json.loads(json.dumps(params)) == {"factors": 8, "regularization": 0.1}
    with pytest.raises(TypeError, match="immutable"):
        params["factors"] = 16
    assert pickle.loads(pickle.dumps(params)) == params
    assert copy.deepcopy(params) == params
    assert all(isinstance(value, baselines.Params)
               for value in baselines.DEFAULT_GRIDS["ials"])


def test_recommend_blocks_users(monkeypatch):
    monkeypatch.setattr(baselines, "_SCORE_BLOCK_USERS", 2)
    model = baselines.ItemKNN(neighbours=10).fit(TRAIN)
    users = np.array([4, 0, 3, 2, 1])
    expected = np.vstack([baselines.recommend(model, users[[i]], TRAIN[users[[i]]], 2)
                          for i in range(len(users))])
    np.testing.assert_array_equal(baselines.recommend(model, users, TRAIN[users], 2), expected)


def test_default_factories_build_named_models():
    for name, grid in baselines.DEFAULT_GRIDS.items():
        if name == baselines.IALS_NAME and not baselines.IALS_AVAILABLE:
            continue
        assert baselines.FACTORIES[name](grid[0]).name == name
    assert baselines.FACTORIES["most-popular"](None).name == "most-popular"


def test_content_knn_ranks_never_played_items_by_shared_rare_tokens():
    # Items 0-3 were played; 4 and 5 never were. Token columns: 0 "rock" (items 0, 1, 4,
    # 5: common), 1 "shoegaze" (items 0 and 4: rare), 2 "jazz" (items 2, 3).
    content = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1],
                                      [1, 1, 0], [1, 0, 0]], dtype=float))
    train = _csr([[0], [2]], 6)
    model = baselines.ContentKNN(content).fit(train)
    scores = model.scores(np.array([0, 1]))
    assert scores.shape == (2, 6) and scores.dtype == np.float32
    # The shoegaze fan: the unplayed shoegaze item first, then plain rock, jazz last.
    assert baselines.recommend(model, np.array([0]), train[[0]], 5).tolist() == [[4, 1, 5, 2, 3]]
    assert scores[1, 3] == pytest.approx(1.0) and scores[1, 4] == 0.0  # jazz fan
    with pytest.raises(ValueError, match="content tokens"):
        baselines.ContentKNN(sp.csr_matrix((3, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        baselines.ContentKNN(content).scores(np.array([0]))

"""list_metrics against hand-computed values and a brute-force reading of the definitions."""
import math

import numpy as np
import pytest

from crossfade.components.evaluator import list_metrics

# Five tracks: 0 {genre a, tag x}, 1 {genre a}, 2 {tag x}, 3 {genre b}, 4 no content.
GENRES = np.array([[b"a", b""], [b"a", b""], [b"", b""], [b"b", b""], [b"", b""]], dtype=object)
TAGS = np.array([[b"x"], [b""], [b"x"], [b""], [b""]], dtype=object)


def test_content_matrix_keeps_genres_and_tags_apart():
    content = list_metrics.content_matrix(GENRES, TAGS, pad=b"")
    # Columns: genre a, genre b, tag x; padding is no token.
    np.testing.assert_array_equal(content.toarray(), [[1, 0, 1], [1, 0, 0], [0, 0, 1],
                                                      [0, 1, 0], [0, 0, 0]])
    # The genre "rock" and the tag "rock" are two columns, not one.
    same_word = list_metrics.content_matrix(np.array([["rock"]]), np.array([["rock"]]))
    assert same_word.shape == (1, 2) and same_word.sum() == 2


def test_content_matrix_reads_bytes_and_str_alike_and_counts_a_token_once():
    as_text = list_metrics.content_matrix(GENRES.astype(str), TAGS.astype(str), pad="")
    as_bytes = list_metrics.content_matrix(GENRES, TAGS, pad="")  # "" pads bytes too
    np.testing.assert_array_equal(as_text.toarray(), as_bytes.toarray())
    repeated = list_metrics.content_matrix(np.array([["pop", "pop"]]), np.array([["pop"]]))
    np.testing.assert_array_equal(repeated.toarray(), [[1, 1]])


def test_content_matrix_of_an_empty_catalogue_side():
    content = list_metrics.content_matrix(np.zeros((2, 0), dtype=object),
                                          np.array([["x"], [""]], dtype=object))
    np.testing.assert_array_equal(content.toarray(), [[1], [0]])
    with pytest.raises(ValueError, match="same C"):
        list_metrics.content_matrix(np.array([["a"]]), np.array([["x"], ["y"]]))


def test_intra_list_diversity_by_hand():
    content = list_metrics.content_matrix(GENRES, TAGS)
    lists = np.array([
        [0, 1, 2, -1],    # cos(0,1) = cos(0,2) = 1/sqrt(2), cos(1,2) = 0
        [1, 3, 4, -1],    # 4 has no content, -1 is empty: only the pair (1, 3), distance 1
        [4, 0, -1, -1],   # one track with content: no pair
        [-1, -1, -1, -1],
        [0, 0, 3, -1],    # a repeated track is a pair at distance 0
    ])
    ild = list_metrics.intra_list_diversity(lists, content)
    assert ild[0] == pytest.approx((2 * (1 - 1 / math.sqrt(2)) + 1) / 3)
    assert ild[1] == pytest.approx(1.0)
    assert np.isnan(ild[2]) and np.isnan(ild[3])
    assert ild[4] == pytest.approx((0 + 1 + 1) / 3)
    assert ild.dtype == np.float64


def test_a_genre_and_a_tag_of_the_same_word_are_unrelated():
    content = list_metrics.content_matrix(np.array([["rock"], [""]]), np.array([[""], ["rock"]]))
    assert list_metrics.intra_list_diversity(np.array([[0, 1]]), content)[0] == pytest.approx(1)


def test_intra_list_diversity_matches_the_pairwise_definition(monkeypatch):
    monkeypatch.setattr(list_metrics, "_BLOCK_LISTS", 7)  # several blocks
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 6)) < 0.3).astype(float)  # some tracks have no content
    genres = np.where(dense[:, :3] > 0, np.array(["g0", "g1", "g2"]), "")
    tags = np.where(dense[:, 3:] > 0, np.array(["t0", "t1", "t2"]), "")
    content = list_metrics.content_matrix(genres, tags)
    lists = rng.integers(-1, 40, size=(30, 10))
    expected = []
    for row in lists:
        vectors = [dense[i] for i in row if i >= 0 and dense[i].any()]
        distances = [1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)
                     for n, a in enumerate(vectors) for b in vectors[n + 1:]]
        expected.append(np.mean(distances) if distances else np.nan)
    np.testing.assert_allclose(list_metrics.intra_list_diversity(lists, content), expected)


def test_lists_must_name_catalogue_rows():
    content = list_metrics.content_matrix(GENRES, TAGS)
    with pytest.raises(ValueError, match="beyond the catalogue of 5"):
        list_metrics.intra_list_diversity(np.array([[0, 5]]), content)
    with pytest.raises(ValueError, match="integer"):
        list_metrics.novelty(np.array([[0.0, 1.0]]), np.ones(5))


def test_self_information_in_bits():
    # 4 training plays over 3 tracks: p = (plays + 1) / 7.
    information = list_metrics.self_information(np.array([3, 0, 1]))
    np.testing.assert_allclose(information, -np.log2(np.array([4, 1, 2]) / 7))
    assert np.sum(2.0 ** -information) == pytest.approx(1.0)  # a distribution
    with pytest.raises(ValueError, match="non-negative"):
        list_metrics.self_information(np.array([1, -1]))


def test_novelty_is_the_mean_information_of_the_listed_tracks():
    information = np.array([1.0, 2.0, 4.0])
    novelty = list_metrics.novelty(np.array([[0, 1, 2], [2, -1, -1], [-1, -1, -1]]),
                                   information)
    np.testing.assert_allclose(novelty[:2], [7 / 3, 4.0])
    assert np.isnan(novelty[2])

"""content_tokens and the in-graph list metrics against the numpy definitions."""
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from crossfade.components.evaluator import list_metrics
from crossfade.components.trainer import list_content


def test_graph_metrics_equal_numpy_on_random_lists():
    rng = np.random.default_rng(0)
    genres = rng.choice(["rock", "pop", "jazz", ""], size=(30, 3)).astype(object)
    tags = rng.choice(["rock", "love", "night", "", ""], size=(30, 8)).astype(object)
    genres[:3] = ""
    tags[:3] = ""  # three tracks without content
    content = list_metrics.content_matrix(genres, tags)
    tokens = list_content.content_tokens(content)
    lists = np.stack([rng.permutation(30)[:10] for _ in range(20)])
    lists[0, 1:] = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    lists[1, :] = [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]  # one track with content: no pair
    graph = list_content.intra_list_diversity(tf.gather(tokens, lists)).numpy()
    expected = list_metrics.intra_list_diversity(lists, content)
    np.testing.assert_allclose(graph, expected, atol=1e-6)
    assert np.isnan(graph[1])
    information = list_metrics.self_information(rng.integers(0, 50, 30))
    np.testing.assert_allclose(
        list_content.novelty(tf.constant(information[lists], tf.float32)).numpy(),
        list_metrics.novelty(lists, information), rtol=1e-6)


def test_too_many_tokens_is_an_error():
    with pytest.raises(ValueError, match="more than 11"):
        list_content.content_tokens(sp.csr_matrix(np.ones((1, 12))))

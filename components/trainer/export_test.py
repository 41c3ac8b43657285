"""The exported SavedModel's signatures, loaded back as TF Serving would load them."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components import features
from crossfade.components.testing_data import analyze_and_transform, raw_play, serialize
from crossfade.components.trainer import export, train
from crossfade.components.trainer import model as model_lib
from crossfade.components.trainer.hyperparameters import Hyperparameters

CATALOGUE = ["t1", "t2", "t3", "t4", "t5"]  # t5 is never played
PLAYS = {"t1": 4, "t2": 2, "t3": 1, "t4": 1}
HP = Hyperparameters(embedding_dim=8, id_embedding_dim=8, content_embedding_dim=4,
                               hidden_units=16)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    rows = []
    for index, (track, count) in enumerate(PLAYS.items()):
        for play in range(count):
            rows.append(raw_play(f"u{play}", track, history=["t1"], ts=3600 * (index + play),
                                 artist=f"artist{index % 2}", genres=[f"g{index}"]))
    _, transform_output = analyze_and_transform(rows, str(tmp_path_factory.mktemp("tft")))
    counts = train.track_play_counts(transform_output)
    two_tower = model_lib.TwoTowerModel(train.vocabularies(transform_output), HP,
                                        train.sampling_probabilities(transform_output, counts))
    raw = features.default_raw_values(tf.constant(len(CATALOGUE)))
    raw[features.TRACK_ID] = tf.constant(CATALOGUE)
    raw[features.ARTIST] = tf.constant(["artist0", "artist1", "artist0", "artist1", "artist0"])
    embeddings = two_tower.candidate_tower(
        transform_output.transform_features_layer()(raw)).numpy()
    module = export.RecommenderModule(
        two_tower, transform_output, np.array(CATALOGUE, dtype=object), embeddings,
        np.array([counts.get(t.encode(), 0) for t in CATALOGUE]), default_k=2, max_k=100)
    export_dir = str(tmp_path_factory.mktemp("model"))
    export.save(module, export_dir)
    return tf.saved_model.load(export_dir)


def _recommend(model, users, k, history=None, platform="android"):
    history = history if history is not None else [[""]] * len(users)
    return model.signatures[export.SERVING_DEFAULT](
        user_id=tf.constant(users), recent_track_ids=tf.constant(history),
        timestamp=tf.constant([1_700_000_000] * len(users), tf.int64),
        platform=tf.constant([platform] * len(users)), k=tf.constant([k] * len(users)))


def test_signatures_are_named(served):
    assert set(served.signatures) == {export.SERVING_DEFAULT, export.SIMILAR_TRACKS,
                                      export.QUERY_EMBEDDING, export.CANDIDATE_EMBEDDING,
                                      export.EVALUATE_EXAMPLES}
    outputs = served.signatures[export.SERVING_DEFAULT].structured_outputs
    assert set(outputs) == {"track_ids", "scores"}


def test_recommend_returns_k_distinct_catalogue_tracks_best_first(served):
    result = _recommend(served, ["u0", "u1"], 4, history=[["t1", "t2"], ["t3", ""]])
    ids = result["track_ids"].numpy()
    assert ids.shape == (2, 4)
    for row in ids:
        assert len(set(row)) == 4 and {t.decode() for t in row} <= set(CATALOGUE)
    scores = result["scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_k_defaults_and_cap(served):
    assert _recommend(served, ["u0"], 0)["track_ids"].shape == (1, 2)  # default_k
    assert _recommend(served, ["u0"], 50)["track_ids"].shape == (1, len(CATALOGUE))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 100"):
        _recommend(served, ["u0"], 101)


def test_cold_query_gets_the_most_popular_tracks(served):
    result = _recommend(served, ["somebody-new"], 3)
    assert [t.decode() for t in result["track_ids"].numpy()[0]][:2] == ["t1", "t2"]
    # A new user with a known recent track is not cold: the towers answer.
    warm = _recommend(served, ["somebody-new"], 3, history=[["t3"]])
    assert np.all(np.abs(warm["scores"].numpy()) <= 1.0 + 1e-5)


def test_similar_tracks_and_candidate_embeddings(served):
    similar = served.signatures[export.SIMILAR_TRACKS](
        track_id=tf.constant(["t5", "nope"]), k=tf.constant([4, 4]))
    assert similar["found"].numpy().tolist() == [True, False]
    assert b"t5" not in similar["track_ids"].numpy()[0].tolist()
    embedding = served.signatures[export.CANDIDATE_EMBEDDING](track_id=tf.constant(["t5", "x"]))
    norms = np.linalg.norm(embedding["embedding"].numpy(), axis=1)
    assert norms[0] == pytest.approx(1.0, rel=1e-5) and norms[1] == 0.0
    query = served.signatures[export.QUERY_EMBEDDING](
        user_id=tf.constant(["u0"]), recent_track_ids=tf.constant([["t1"]]),
        timestamp=tf.constant([0], tf.int64), platform=tf.constant(["ios"]))
    assert query["embedding"].shape == (1, HP.embedding_dim)


def test_evaluate_examples_ranks_agree_with_serving(served):
    play = raw_play("u1", "t3", history=["t1", "t2"], ts=1_700_000_000)
    ranks = served.signatures[export.EVALUATE_EXAMPLES](examples=tf.constant([serialize(play)]))
    ranking = _recommend(served, ["u1"], len(CATALOGUE), history=[["t1", "t2"]])
    served_order = [t.decode() for t in ranking["track_ids"].numpy()[0]]
    assert int(ranks["label_rank"][0]) == served_order.index("t3")
    assert int(ranks["popularity_rank"][0]) == 2  # t1, t2, then t3 (ties by catalogue order)
    assert int(ranks["catalogue_size"][0]) == len(CATALOGUE)
    unknown = raw_play("u1", "not-in-catalogue")
    ranks = served.signatures[export.EVALUATE_EXAMPLES](examples=tf.constant([serialize(unknown)]))
    assert int(ranks["label_rank"][0]) == len(CATALOGUE)

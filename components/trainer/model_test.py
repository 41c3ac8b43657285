"""Towers: shapes, normalisation, padding masks and OOV training; the model learns."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components import features
from crossfade.components.trainer import model as model_lib
from crossfade.components.trainer import recency
from crossfade.components.trainer.hyperparameters import CATALOGUE, Hyperparameters

VOCABULARIES = model_lib.Vocabularies(users=5, tracks=7, artists=3, genres=4, tags=6,
                                      platforms=2)
HP = Hyperparameters(embedding_dim=8, id_embedding_dim=8, content_embedding_dim=4,
                               hidden_units=16, batch_size=4, id_dropout=0.0)


@pytest.fixture(autouse=True)
def _seeded():
    # Weights and dropout draw from TF's global generator: seeded per test, a test's outcome
    # does not depend on which tests ran before it.
    tf.keras.utils.set_random_seed(0)


def _batch(size=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        features.USER_INDEX: tf.constant(rng.integers(0, 5, size), tf.int64),
        features.TRACK_INDEX: tf.constant(rng.integers(0, 7, size), tf.int64),
        features.RECENT_TRACK_INDICES: tf.constant(
            rng.integers(0, 9, (size, features.HISTORY_LENGTH)), tf.int64),
        features.HOUR: tf.constant(rng.integers(0, 24, size), tf.int64),
        features.WEEKDAY: tf.constant(rng.integers(0, 7, size), tf.int64),
        features.PLATFORM_INDEX: tf.constant(rng.integers(0, 3, size), tf.int64),
        features.ARTIST_INDEX: tf.constant(rng.integers(0, 4, size), tf.int64),
        features.GENRE_INDICES: tf.constant(rng.integers(0, 6, (size, features.MAX_GENRES)),
                                            tf.int64),
        features.TAG_INDICES: tf.constant(rng.integers(0, 8, (size, features.MAX_TAGS)),
                                          tf.int64),
        features.AUDIO: tf.constant(rng.normal(size=(size, len(features.AUDIO_DESCRIPTORS))),
                                    tf.float32),
        features.SAMPLE_WEIGHT: tf.ones([size]),
    }


def _model(hp=HP):
    return model_lib.TwoTowerModel(VOCABULARIES, hp, np.full(8, 1 / 7, np.float32))


def _catalogue():
    """Candidate features of a 7-track catalogue whose row r is track r."""
    catalogue = {name: values for name, values in _batch(size=7, seed=2).items()
                 if name in (features.TRACK_INDEX, features.ARTIST_INDEX,
                             features.GENRE_INDICES, features.TAG_INDICES, features.AUDIO)}
    catalogue[features.TRACK_INDEX] = tf.range(7, dtype=tf.int64)
    return catalogue


def _catalogue_model(hp, **kwargs):
    catalogue = _catalogue()
    return model_lib.TwoTowerModel(VOCABULARIES, hp, np.full(8, 1 / 7, np.float32),
                                   catalogue=catalogue,
                                   catalogue_row=np.append(np.arange(7), 0).astype(np.int32),
                                   **kwargs), catalogue


def _catalogue_loss(model, batch, candidates, bias=0.0):
    """Summed softmax cross-entropy of `batch`'s plays over catalogue `candidates` [7, D]."""
    logits = ((model.query_tower(batch).numpy() @ np.asarray(candidates).T + bias)
              / model.loss_layer.temperature)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(logits)), batch[features.TRACK_INDEX].numpy()].sum()


def test_towers_return_unit_vectors_of_the_embedding_size():
    model = _model()
    batch = _batch()
    for tower in (model.query_tower, model.candidate_tower):
        embeddings = tower(batch).numpy()
        assert embeddings.shape == (4, HP.embedding_dim)
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_masked_mean_ignores_padding():
    layer = model_lib.MaskedMean(padding_index=9)
    indices = tf.constant([[1, 9, 9], [9, 9, 9]])
    embeddings = tf.constant([[[2.0], [100.0], [100.0]], [[5.0], [5.0], [5.0]]])
    np.testing.assert_allclose(layer(indices, embeddings).numpy(), [[2.0], [0.0]])


def test_weighted_mean_starts_as_the_mean_and_weights_by_learned_logits():
    layer = model_lib.WeightedMean(padding_index=9)
    indices = tf.constant([[1, 2, 9], [9, 9, 9]])
    embeddings = tf.constant([[[2.0], [4.0], [100.0]], [[5.0], [5.0], [5.0]]])
    np.testing.assert_allclose(layer(indices, embeddings).numpy(), [[3.0], [0.0]])
    logits = np.zeros((10, 1), np.float32)
    logits[2] = np.log(3.0)  # track 2 weighs three times track 1: (2 + 3 x 4) / 4
    layer.logits.set_weights([logits])
    np.testing.assert_allclose(layer(indices, embeddings).numpy(), [[3.5], [0.0]], rtol=1e-6)


def test_weighted_history_pooling_learns_its_weights_in_the_model():
    hp = Hyperparameters(**{**HP.__dict__, "history_pooling": "weighted"})
    model = model_lib.TwoTowerModel(VOCABULARIES, hp, np.full(8, 1 / 8, np.float32))
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
    model.fit(tf.data.Dataset.from_tensors(_batch(seed=3)).repeat(5), verbose=0)
    learned = model.query_tower.history_mean.logits.get_weights()[0]
    assert np.abs(learned).max() > 0  # zeros at first: the weights moved


def test_id_dropout_only_in_training():
    layer = model_lib.IdDropout(rate=1.0, replacement_index=99)
    ids = tf.constant([1, 2, 3], tf.int64)
    assert layer(ids, training=False).numpy().tolist() == [1, 2, 3]
    assert layer(ids, training=True).numpy().tolist() == [99, 99, 99]


def test_history_dropout_masks_entries_as_padding_only_in_training():
    layer = model_lib.IdDropout(rate=0.5, replacement_index=9, seed=1)
    history = tf.constant(np.arange(8 * 50).reshape(8, 50) % 9, tf.int64)
    assert layer(history, training=False).numpy().tolist() == history.numpy().tolist()
    dropped = layer(history, training=True).numpy()
    kept = dropped != 9
    assert (dropped[kept] == history.numpy()[kept]).all()
    share = 1 - kept.sum() / (history.numpy() != 9).sum()
    assert 0.35 < share < 0.65


def test_shared_track_table_between_history_and_candidates():
    model = _model()
    assert model.query_tower.track_embedding is model.candidate_tower.track_embedding


def test_training_reduces_the_loss():
    model = _model(Hyperparameters(**{**HP.__dict__, "learning_rate": 0.5}))
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
    batch = _batch(size=16, seed=1)
    dataset = tf.data.Dataset.from_tensors(batch).repeat(40)
    history = model.fit(dataset, epochs=1, verbose=0)
    first = float(model.compute_loss(batch))  # after training
    fresh = _model()
    assert first < float(fresh.compute_loss(batch))
    assert np.isfinite(history.history["loss"][-1])


def test_catalogue_negatives_score_the_positive_against_every_track():
    model, catalogue = _catalogue_model(Hyperparameters(**{**HP.__dict__,
                                                           "negatives": CATALOGUE}))
    batch = _batch(size=16, seed=1)
    expected = _catalogue_loss(model, batch, model.candidate_tower(catalogue))
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(40), epochs=1, verbose=0)
    assert float(model.compute_loss(batch)) < expected
    with pytest.raises(ValueError, match="negatives must be one of"):
        Hyperparameters(negatives="sampled")


def test_without_user_id_and_time_context_a_query_depends_only_on_history_and_platform():
    model = _model(Hyperparameters(**{**HP.__dict__, "use_user_id": False,
                                                "time_context": False}))
    batch = _batch()
    others = dict(batch, **{features.USER_INDEX: tf.constant([4, 3, 2, 1], tf.int64),
                            features.HOUR: tf.constant([5, 6, 7, 8], tf.int64),
                            features.WEEKDAY: tf.constant([0, 1, 2, 3], tf.int64)})
    np.testing.assert_allclose(model.query_tower(batch).numpy(),
                               model.query_tower(others).numpy())
    assert not any("user_embedding" in v.name for v in model.query_tower.trainable_variables)
    full = _model()
    assert not np.allclose(full.query_tower(batch).numpy(), full.query_tower(others).numpy())


def test_the_content_loss_adds_a_softmax_over_content_only_candidates_in_training():
    hp = Hyperparameters(**{**HP.__dict__, "negatives": CATALOGUE,
                            "content_loss_weight": 0.5})
    model, catalogue = _catalogue_model(hp)
    batch = _batch(size=16, seed=1)
    plain = _catalogue_loss(model, batch, model.candidate_tower(catalogue))
    content_only = _catalogue_loss(model, batch, model.candidate_tower(
        catalogue, track_ids=tf.fill([7], tf.constant(VOCABULARIES.tracks, tf.int64))))
    assert content_only != pytest.approx(plain, rel=1e-3)
    assert float(model.compute_loss(batch, training=False)) == pytest.approx(plain, rel=1e-4)
    assert float(model.compute_loss(batch, training=True)) == pytest.approx(
        plain + 0.5 * content_only, rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_content_loss_trains_the_content_only_path_in_batch(seed):
    # Both arms start from the same weights; on so small a batch the gain varies with them
    # (a ratio of 0.08 to 0.57 on these seeds, about 0.9 on some others).
    batch = _batch(size=16, seed=1)
    content_only_losses = []
    for weight in (0.0, 1.0):
        tf.keras.utils.set_random_seed(seed)
        model = _model(Hyperparameters(**{**HP.__dict__, "content_loss_weight": weight}))
        model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
        model.fit(tf.data.Dataset.from_tensors(batch).repeat(40), epochs=1, verbose=0)
        content_only_losses.append(float(model._softmax_loss(
            model.query_tower(batch), batch, training=False, content_only=True)))
    assert content_only_losses[1] < 0.75 * content_only_losses[0]


def _dated_model(negatives):
    """Catalogue row r is track r; tracks 0-1 come out on day 100, the rest are old."""
    hp = Hyperparameters(**{**HP.__dict__, "negatives": negatives, "new_release_dropout": 0.0})
    return _catalogue_model(hp, catalogue_release_days=np.array([100, 100, 1, 1, 1, 1, 1],
                                                                np.int64))


def _new_release_plays(size=16):
    """Plays of the new tracks (0-1) on their release day (UTC day 100)."""
    batch = _batch(size=size, seed=1)
    batch[features.TRACK_INDEX] = tf.constant(np.arange(size) % 2, tf.int64)
    batch[features.PLAY_TIME] = tf.fill([size], tf.constant(100 * 86400 + 3600, tf.int64))
    return batch


def test_the_recency_bias_is_added_to_every_logit_before_the_temperature():
    model, catalogue = _dated_model(CATALOGUE)
    batch = _new_release_plays()
    model.recency_bias.build(None)
    unbiased = float(model.compute_loss(batch))
    bias = np.zeros((2, recency.NUM_BUCKETS), np.float32)
    # Released today: bucket 1; the old tracks are 99 days old: the 60-179 days bucket. Every
    # track is in the vocabulary and nothing is dropped: only the id-known row counts.
    old = recency.AGE_BOUNDARIES.index(60) + 1
    bias[recency.ID_KNOWN, 1], bias[recency.ID_KNOWN, old] = 0.1, 0.3
    bias[recency.CONTENT_ONLY] = 9.0
    model.recency_bias.bias.assign(bias)
    expected = _catalogue_loss(model, batch, model.candidate_tower(catalogue),
                               bias=np.array([0.1, 0.1, 0.3, 0.3, 0.3, 0.3, 0.3]))
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)
    assert expected > unbiased + 16  # the old tracks' boost costs every play at least 1 nat


def test_the_paired_recency_bias_is_the_diagonal_of_the_in_batch_one():
    # Release days and play days spread over several age buckets; two OOV (content-only) ids.
    model = model_lib.TwoTowerModel(
        VOCABULARIES, HP, np.full(8, 1 / 7, np.float32),
        catalogue_row=np.append(np.arange(7), 0).astype(np.int32),
        catalogue_release_days=np.array([100, 94, 93, 1, 101, 40, 99], np.int64))
    model.recency_bias.build(None)
    model.recency_bias.bias.assign(
        np.random.default_rng(0).normal(size=(2, recency.NUM_BUCKETS)).astype(np.float32))
    batch = _batch(size=6, seed=3)
    batch[features.PLAY_TIME] = tf.constant([100, 101, 100, 120, 300, 99], tf.int64) * 86400
    tracks = tf.constant([0, 1, 2, 3, 4, 5], tf.int64)
    rows = tf.gather(model.catalogue_row, tracks)
    embedded = tf.constant([0, 7, 2, 3, 7, 5], tf.int64)
    whole, paired = (bias.numpy() for bias in
                     model._in_batch_score_biases(batch, rows, embedded))
    assert len(set(np.round(np.diag(whole), 6))) >= 4  # not one bucket for all
    np.testing.assert_array_equal(paired, np.diag(whole))


@pytest.mark.parametrize("negatives", ["in_batch", CATALOGUE])
def test_the_recency_bias_learns_that_listeners_play_new_releases(negatives):
    model, _ = _dated_model(negatives)
    batch = _new_release_plays()
    if negatives == "in_batch":  # in-batch negatives need old tracks in the batch
        tracks = np.arange(16) % 7
        batch[features.TRACK_INDEX] = tf.constant(tracks, tf.int64)
        batch[features.SAMPLE_WEIGHT] = tf.constant(np.where(tracks < 2, 1.0, 0.1), tf.float32)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(30), epochs=1, verbose=0)
    learned = model.recency_bias.bias.numpy()[recency.ID_KNOWN]
    assert learned[1] > learned[recency.AGE_BOUNDARIES.index(60) + 1]  # day 0 above 99 days
    assert learned[recency.UNKNOWN_BUCKET] == 0.0  # no track without a release day: untouched
    # No id was dropped (HP.id_dropout = 0): the content-only row never took part.
    assert not model.recency_bias.bias.numpy()[recency.CONTENT_ONLY].any()


def test_dropped_ids_take_the_content_only_row_in_training_only():
    hp = Hyperparameters(**{**HP.__dict__, "id_dropout": 0.5})
    model = model_lib.TwoTowerModel(
        VOCABULARIES, hp, np.full(8, 1 / 7, np.float32),
        catalogue_row=np.append(np.arange(7), 0).astype(np.int32),
        catalogue_release_days=np.full(7, 100, np.int64))
    batch = _new_release_plays()
    model.recency_bias.build(None)
    bias = np.zeros((2, recency.NUM_BUCKETS), np.float32)
    bias[recency.CONTENT_ONLY] = 0.5
    model.recency_bias.bias.assign(bias)
    evaluated = float(model.compute_loss(batch, training=False))
    model.recency_bias.bias.assign(np.zeros_like(bias))
    assert float(model.compute_loss(batch, training=False)) == pytest.approx(evaluated)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(5), epochs=1, verbose=0)
    assert model.recency_bias.bias.numpy()[recency.CONTENT_ONLY].any()


def test_new_release_dropout_takes_track_and_artist_ids_of_young_candidates_only():
    hp = Hyperparameters(**{**HP.__dict__, "new_release_dropout": 0.9999})
    release_days = np.array([100, 94, 93, 1, 101, 1, 1], np.int64)  # ages 0, 6, 7, 99, -1
    model = model_lib.TwoTowerModel(
        VOCABULARIES, hp, np.full(8, 1 / 7, np.float32),
        catalogue_row=np.append(np.arange(7), 0).astype(np.int32),
        catalogue_release_days=release_days)
    batch = _new_release_plays(size=7)
    tracks = tf.range(7, dtype=tf.int64)
    batch[features.TRACK_INDEX] = tracks
    inputs, ids = model._new_releases_dropped(batch, tf.range(7), tracks)
    young = [True, True, False, False, False, False, False]  # the first week only
    assert ids.numpy().tolist() == [VOCABULARIES.tracks if y else t
                                    for t, y in zip(range(7), young, strict=True)]
    artists = batch[features.ARTIST_INDEX].numpy()
    assert inputs[features.ARTIST_INDEX].numpy().tolist() == [
        VOCABULARIES.artists if y else a for a, y in zip(artists, young, strict=True)]
    with pytest.raises(ValueError, match="new_release_dropout must be in"):
        Hyperparameters(new_release_dropout=1.0)


def test_artist_dropout_takes_the_artists_of_dropped_ids_only():
    hp = Hyperparameters(**{**HP.__dict__, "id_dropout": 0.5, "artist_dropout": 1.0})
    model = _model(hp)
    batch = _batch(size=64, seed=4)
    tracks = batch[features.TRACK_INDEX]
    embedded = model.candidate_tower.track_dropout(tracks, training=True)
    inputs = model._artists_dropped(batch, tracks, embedded)
    dropped = (embedded.numpy() == VOCABULARIES.tracks) & (tracks.numpy() != VOCABULARIES.tracks)
    assert 0 < dropped.sum() < 64
    artists = inputs[features.ARTIST_INDEX].numpy()
    assert (artists[dropped] == VOCABULARIES.artists).all()
    np.testing.assert_array_equal(artists[~dropped], batch[features.ARTIST_INDEX].numpy()[~dropped])
    assert _model()._artists_dropped(batch, tracks, embedded) is batch  # artist_dropout 0
    with pytest.raises(ValueError, match=r"artist_dropout must be in \[0, 1\]"):
        Hyperparameters(artist_dropout=1.5)

"""preprocessing_fn on a handful of plays, analysed and applied with tf.Transform on Beam."""
import numpy as np
import pytest
import tensorflow as tf

from crossfade.components import features
from crossfade.components.testing_data import analyze_and_transform, raw_play


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    plays = [
        raw_play("u1", "t1", [], 0, tempo=100.0),
        raw_play("u1", "t2", ["t1"], 3600 * 25, tempo=140.0),
        raw_play("u2", "t1", [], 86400 * 4 + 3600 * 13, tempo=100.0),
        raw_play("u2", "t1", ["t1"], 86400 * 4 + 3600 * 14, tempo=100.0),
    ]
    return analyze_and_transform(plays, str(tmp_path_factory.mktemp("transform")))


def test_track_indices_follow_frequency_and_padding_is_its_own_index(transformed):
    rows, output = transformed
    vocabulary = output.vocabulary_by_name(features.TRACK_VOCABULARY)
    assert vocabulary == [b"t1", b"t2"]  # most played first
    assert [r[features.TRACK_INDEX] for r in rows] == [0, 1, 0, 0]
    history = rows[1][features.RECENT_TRACK_INDICES]
    assert history[0] == 0 and all(index == 3 for index in history[1:])  # V=2: OOV 2, pad 3


def test_frequency_vocabulary_holds_play_counts(transformed):
    _, output = transformed
    path = output.vocabulary_file_by_name(features.TRACK_FREQUENCY_VOCABULARY)
    with tf.io.gfile.GFile(path) as handle:
        counts = dict(reversed(line.split()) for line in handle.read().splitlines())
    assert counts == {"t1": "3", "t2": "1"}


def test_context_and_audio(transformed):
    rows, _ = transformed
    assert [r[features.HOUR] for r in rows] == [0, 1, 13, 14]
    assert [r[features.WEEKDAY] for r in rows] == [3, 4, 0, 0]  # Thu, Fri, Mon, Mon
    tempo = np.array([r[features.AUDIO][0] for r in rows])
    assert tempo.mean() == pytest.approx(0.0, abs=1e-6)
    assert tempo[1] > 0 > tempo[0]


def test_unknown_values_map_to_the_oov_index(transformed):
    _, output = transformed
    layer = output.transform_features_layer()
    raw = features.default_raw_values(tf.constant(1))
    raw[features.USER_ID] = tf.constant(["never-seen"])
    raw[features.TRACK_ID] = tf.constant(["t9"])
    result = layer(raw)
    assert int(result[features.USER_INDEX][0]) == 2  # users u1, u2 -> OOV 2
    assert int(result[features.TRACK_INDEX][0]) == 2
    assert set(result[features.GENRE_INDICES][0].numpy().tolist()) == {2}  # all padding: V+1

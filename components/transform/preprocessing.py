"""Transform module: raw play and track features -> model-ready tensors.

Full-pass analysis (over the train split) gives the vocabularies of users, tracks, artists,
genres, tags and platforms, the play count of every track (the candidate sampling
probabilities used for logQ correction, and the most-popular fallback), and the moments that
z-score the audio descriptors. All outputs are dense. `play_time` passes the timestamp through
unchanged: the towers do not read it; the Trainer orders each user's plays by it to store their
latest history in the served model (components/trainer/user_history.py).

Index conventions for a vocabulary of size V built with one OOV bucket: known values map to
[0, V), unseen values to V, and list padding (`features.PAD_TOKEN`) to V + 1, so embedding
tables have V + 2 rows and the towers can mask padding.
"""
from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from crossfade.components import features

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400
# 1970-01-01 was a Thursday; with Monday = 0 that is weekday 3.
EPOCH_WEEKDAY = 3


def _non_padding(values: tf.Tensor) -> tf.SparseTensor:
    """The non-padding entries of a dense [batch, n] string list, for vocabulary analysis."""
    return tf.sparse.from_dense(values)  # drops "" (PAD_TOKEN), the zero value for strings


def _apply_with_padding(values: tf.Tensor, vocabulary: tf.Tensor) -> tf.Tensor:
    """Vocabulary indices of a [batch, n] list: unknown -> V, padding -> V + 1."""
    indices = tft.apply_vocabulary(values, vocabulary, num_oov_buckets=1)
    padding_index = tft.get_num_buckets_for_transformed_feature(indices)
    return tf.where(tf.equal(values, features.PAD_TOKEN), padding_index, indices)


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, tf.Tensor]:
    """tf.Transform callback; see the module docstring for the outputs' semantics.

    `custom_config` carries only the pipeline's code version (it keys TFX's cache).
    """
    del custom_config
    outputs = {}
    outputs[features.USER_INDEX] = tft.compute_and_apply_vocabulary(
        inputs[features.USER_ID], num_oov_buckets=1, vocab_filename=features.USER_VOCABULARY)

    tracks = inputs[features.TRACK_ID]
    track_vocabulary = tft.vocabulary(tracks, vocab_filename=features.TRACK_VOCABULARY)
    outputs[features.TRACK_INDEX] = tft.apply_vocabulary(tracks, track_vocabulary,
                                                         num_oov_buckets=1)
    outputs[features.RECENT_TRACK_INDICES] = _apply_with_padding(
        inputs[features.RECENT_TRACK_IDS], track_vocabulary)
    # Play counts per track: the Trainer turns them into sampling probabilities (logQ) and
    # the popularity ranking. Stored beside the index vocabulary, keyed by track id.
    tft.vocabulary(tracks, vocab_filename=features.TRACK_FREQUENCY_VOCABULARY,
                   store_frequency=True)

    outputs[features.ARTIST_INDEX] = tft.compute_and_apply_vocabulary(
        inputs[features.ARTIST], num_oov_buckets=1, vocab_filename=features.ARTIST_VOCABULARY)
    for raw_name, output_name, vocabulary_name in (
            (features.GENRES, features.GENRE_INDICES, features.GENRE_VOCABULARY),
            (features.TAGS, features.TAG_INDICES, features.TAG_VOCABULARY)):
        vocabulary = tft.vocabulary(_non_padding(inputs[raw_name]),
                                    vocab_filename=vocabulary_name)
        outputs[output_name] = _apply_with_padding(inputs[raw_name], vocabulary)
    outputs[features.PLATFORM_INDEX] = tft.compute_and_apply_vocabulary(
        inputs[features.PLATFORM], num_oov_buckets=1,
        vocab_filename=features.PLATFORM_VOCABULARY)

    outputs[features.AUDIO] = tf.stack(
        [tft.scale_to_z_score(inputs[name]) for name in features.AUDIO_DESCRIPTORS], axis=1)

    timestamps = inputs[features.TIMESTAMP]
    outputs[features.HOUR] = tf.math.floormod(timestamps // SECONDS_PER_HOUR, 24)
    outputs[features.WEEKDAY] = tf.math.floormod(
        timestamps // SECONDS_PER_DAY + EPOCH_WEEKDAY, 7)
    outputs[features.SAMPLE_WEIGHT] = inputs[features.WEIGHT]
    outputs[features.PLAY_TIME] = timestamps
    return outputs

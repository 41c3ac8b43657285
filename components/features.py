"""The feature contract between ExampleGen, Transform, Trainer, Evaluator and serving.

Raw features are what the example gens write into tf.Examples (and what serving clients send);
transformed features are what `preprocessing_fn` produces and the towers consume. Every list
feature has a fixed length, padded with `PAD_TOKEN`, so all features are dense and batches need
no ragged handling on the training hot path.
"""
from typing import Dict

import tensorflow as tf

PAD_TOKEN = ""

# Tracks the query tower sees: the plays before the current one (most recent first), or for
# unordered data the user's other training tracks. 40 holds a whole HetRec Last.fm training
# profile (at most 50 artists per user, 40 of them in train under 8:1:1), where the profile
# bag is what makes the model competitive; it costs the default pipeline about a third more
# time in the data components than 10 did.
HISTORY_LENGTH = 40
MAX_GENRES = 3
MAX_TAGS = 8

# Raw play (query side and label).
USER_ID = "user_id"
TRACK_ID = "track_id"  # the played track: the positive candidate
RECENT_TRACK_IDS = "recent_track_ids"  # [HISTORY_LENGTH], strictly before TIMESTAMP
TIMESTAMP = "ts"  # Unix seconds, UTC
PLATFORM = "platform"
COUNTRY = "country"
MS_PLAYED = "ms_played"
SKIPPED = "skipped"  # 0/1
REASON_END = "reason_end"
WEIGHT = "weight"  # interaction strength (1.0 for a play)

# Raw track content (candidate side), joined from the catalogue.
TITLE = "track_title"  # display only: in catalogue examples, not in plays or the towers
# A catalogue fact like the title (catalogue examples only; the Trainer reads it row-aligned
# with the catalogue):
# the release day in days since 1970-01-01 UTC, NO_RELEASE_DAY when unknown. The towers do
# not read it; the model's recency bias (components/trainer/recency.py) and the
# `released_within_days` control do.
RELEASE_DAY = "track_release_day"
NO_RELEASE_DAY = -(2**31)  # far before any real date, so never mistaken for one
ARTIST = "track_artist"
GENRES = "track_genres"  # [MAX_GENRES]
TAGS = "track_tags"  # [MAX_TAGS]
AUDIO_DESCRIPTORS = (
    "track_tempo",
    "track_energy",
    "track_danceability",
    "track_valence",
    "track_acousticness",
    "track_loudness",
    "track_duration_ms",
)

QUERY_RAW_FEATURES = (USER_ID, RECENT_TRACK_IDS, TIMESTAMP, PLATFORM)
CANDIDATE_RAW_FEATURES = (TRACK_ID, ARTIST, GENRES, TAGS) + AUDIO_DESCRIPTORS

RAW_FEATURE_SPEC: Dict[str, tf.io.FixedLenFeature] = {
    USER_ID: tf.io.FixedLenFeature([], tf.string),
    TRACK_ID: tf.io.FixedLenFeature([], tf.string),
    RECENT_TRACK_IDS: tf.io.FixedLenFeature([HISTORY_LENGTH], tf.string),
    TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    PLATFORM: tf.io.FixedLenFeature([], tf.string),
    COUNTRY: tf.io.FixedLenFeature([], tf.string),
    MS_PLAYED: tf.io.FixedLenFeature([], tf.int64),
    SKIPPED: tf.io.FixedLenFeature([], tf.int64),
    REASON_END: tf.io.FixedLenFeature([], tf.string),
    WEIGHT: tf.io.FixedLenFeature([], tf.float32),
    ARTIST: tf.io.FixedLenFeature([], tf.string),
    GENRES: tf.io.FixedLenFeature([MAX_GENRES], tf.string),
    TAGS: tf.io.FixedLenFeature([MAX_TAGS], tf.string),
    **{name: tf.io.FixedLenFeature([], tf.float32) for name in AUDIO_DESCRIPTORS},
}

# Catalogue examples carry the candidate features, the title (the served model shows it) and
# the release day (defaults keep catalogue examples written before either readable).
CATALOGUE_FEATURE_SPEC = {
    **{name: RAW_FEATURE_SPEC[name] for name in CANDIDATE_RAW_FEATURES},
    TITLE: tf.io.FixedLenFeature([], tf.string, default_value=PAD_TOKEN),
    RELEASE_DAY: tf.io.FixedLenFeature([], tf.int64, default_value=NO_RELEASE_DAY),
}

# Transformed features (outputs of preprocessing_fn).
USER_INDEX = "user_index"
TRACK_INDEX = "track_index"
RECENT_TRACK_INDICES = "recent_track_indices"  # padding -> history_padding_index
HOUR = "hour"
WEEKDAY = "weekday"
PLATFORM_INDEX = "platform_index"
ARTIST_INDEX = "artist_index"
GENRE_INDICES = "genre_indices"
TAG_INDICES = "tag_indices"
AUDIO = "audio"  # [len(AUDIO_DESCRIPTORS)] z-scored
SAMPLE_WEIGHT = "sample_weight"
PLAY_TIME = "play_time"  # TIMESTAMP passed through: orders a user's plays for stored history
# The transformed int64 features whose values are vocabulary indices or calendar fields, all far
# below 2**31: the Trainer holds them as int32 in memory (components/trainer/example_columns.py).
SMALL_INT_FEATURES = (USER_INDEX, TRACK_INDEX, RECENT_TRACK_INDICES, HOUR, WEEKDAY,
                      PLATFORM_INDEX, ARTIST_INDEX, GENRE_INDICES, TAG_INDICES)

# Vocabulary files written by Transform (names used to look them up in the Trainer).
USER_VOCABULARY = "user_id"
TRACK_VOCABULARY = "track_id"
TRACK_FREQUENCY_VOCABULARY = "track_id_frequency"
ARTIST_VOCABULARY = "track_artist"
GENRE_VOCABULARY = "track_genres"
TAG_VOCABULARY = "track_tags"
PLATFORM_VOCABULARY = "platform"


def default_raw_values(batch_size: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Neutral raw values for every raw feature, shaped [batch_size, ...].

    The transform graph needs all raw inputs; serving and catalogue encoding fill the side they
    do not have (e.g. the query side when encoding catalogue tracks) with these values.
    """
    values = {}
    for name, spec in RAW_FEATURE_SPEC.items():
        shape = tf.concat([[batch_size], tf.constant(spec.shape, tf.int32)], axis=0)
        if spec.dtype == tf.string:
            values[name] = tf.fill(shape, PAD_TOKEN)
        else:
            values[name] = tf.zeros(shape, spec.dtype)
    values[WEIGHT] = tf.ones_like(values[WEIGHT])
    return values

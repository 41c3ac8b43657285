"""Release recency: a learned score bias by how many days before a request a track came out.

Listeners meet new releases through channels of their own (release radars, new-music
shelves, an artist's announcement), so a track's age at the moment of a request says
something its content cannot, and a track released yesterday has no plays for its id
embedding to learn from. The bias is one learned scalar per age bucket and per kind of
candidate embedding, in cosine units: training adds it to q . c before the temperature
divides, serving adds it to the cosine.

Two kinds of candidate, two rows of biases: a track embedded with its own id (row 0), and a
track seen through its content only (row 1) - in serving a track without training plays
(its id is out of the vocabulary), in training a track whose id `IdDropout` replaced by the
OOV id. A content-only embedding matches a query less closely than an id-trained one (it
cannot carry what only plays reveal), so a new release that nobody has played yet would rank
below established tracks of the same appeal; row 1 learns how much to lift it, from the very
training steps in which the model had to judge a track by its content, as serving must.

  age = request day - release day   (whole UTC days since 1970-01-01)

  bucket  0       age < 0 (not released yet on the request's day)
  bucket  1..14   age 0, 1, ..., 13: one bucket per day, as new-release attention fades
                  over the first two weeks
  bucket 15..20   14-20, 21-27, 28-59, 60-179, 180-364 days, 365 and more: the back
                  catalogue ages slowly, so its buckets widen
  bucket 21       release day unknown (`features.NO_RELEASE_DAY`)

A catalogue without release dates puts every track in the unknown bucket: what remains is
the lift of content-only candidates over id-known ones (for items that appear after
training, such as the held-out artists of the Last.fm cold-item benchmark). Only stock ops
(Bucketize, GatherV2, Unique), so the stock TF Serving image runs it.
"""
from typing import Sequence

import numpy as np
import tensorflow as tf

from crossfade.components import features

SECONDS_PER_DAY = 86400
AGE_BOUNDARIES: Sequence[int] = tuple(range(15)) + (21, 28, 60, 180, 365)
UNKNOWN_BUCKET = len(AGE_BOUNDARIES) + 1
NUM_BUCKETS = UNKNOWN_BUCKET + 1


def request_days(timestamps: tf.Tensor) -> tf.Tensor:
    """[B] UTC day (days since 1970-01-01, int64) of Unix-second timestamps [B]."""
    return tf.math.floordiv(tf.cast(timestamps, tf.int64), SECONDS_PER_DAY)


def _per_row(values: tf.Tensor) -> tf.Tensor:
    """[C] values shared by every row as [1, C]; [B, N] per-row values as they are."""
    return values if values.shape.rank == 2 else values[None, :]


def _ages(days: tf.Tensor, release_days: tf.Tensor) -> tf.Tensor:
    """[B, C] int64 days between each track's release and each request day."""
    return days[:, None] - _per_row(tf.cast(release_days, tf.int64))


def age_buckets(days: tf.Tensor, release_days: tf.Tensor) -> tf.Tensor:
    """[B, C] int32 bucket (see the module docstring) of each track's age on each day.

    Args:
      days: [B] int64 request days.
      release_days: int64 release days, `features.NO_RELEASE_DAY` where unknown: [C] the
        catalogue's, or [B, C] each row's candidates'.
    """
    release_days = tf.cast(release_days, tf.int64)
    buckets = tf.raw_ops.Bucketize(input=_ages(days, release_days),
                                   boundaries=[float(b) for b in AGE_BOUNDARIES])
    unknown = _per_row(tf.equal(release_days, features.NO_RELEASE_DAY))
    return tf.where(unknown, UNKNOWN_BUCKET, buckets)


def released_within(days: tf.Tensor, release_days: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """[B, C] bool: the track came out 0..window-1 days before the row's day (window > 0).

    Args:
      days: [B] int64 request days; release_days: int64, [C] or [B, C] (as `age_buckets`);
      window: [B] int32 days.
    """
    age = _ages(days, release_days)
    known = _per_row(tf.not_equal(release_days, features.NO_RELEASE_DAY))
    return tf.logical_and(known, tf.logical_and(
        age >= 0, age < tf.cast(window, tf.int64)[:, None]))


def has_release_dates(release_days: np.ndarray) -> bool:
    """Whether any of the catalogue's [C] release days is known."""
    return bool(np.any(np.asarray(release_days) != features.NO_RELEASE_DAY))


ID_KNOWN, CONTENT_ONLY = 0, 1  # rows of `RecencyBias.bias`
# A track's first week: in serving most tracks this young have not been played in training.
NEW_RELEASE_DAYS = 7


class RecencyBias(tf.keras.layers.Layer):
    """A learned bias [2, NUM_BUCKETS] in cosine units: row `ID_KNOWN` for candidates
    embedded with their id, row `CONTENT_ONLY` for candidates seen through content alone;
    columns by `age_buckets`.

    Call with request days [B], release days and content_only (bool) of the candidates,
    either [C] (the catalogue, shared by every row) or [B, C] (each row's own); returns
    [B, C] float32. Starts at zero, so an untrained bias leaves the model's scores as they
    are.
    """

    def build(self, input_shape=None):
        self.bias = self.add_weight(name="recency_bias", shape=[2, NUM_BUCKETS],
                                    initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, days: tf.Tensor, release_days: tf.Tensor,
             content_only: tf.Tensor) -> tf.Tensor:
        if release_days.shape.rank == 2:  # each row its own candidates
            return self._lookup(days, release_days, content_only)
        # Shared candidates: rows of the same day get the same biases, so bucket and look up
        # once per distinct day ([U, C]; a batch of plays spans a few dozen days) and copy
        # rows. Bucketing all [B, C] and scattering its gradient into the table took 40 % of
        # a training step at B = C = 1024 (16 ms of its 38 ms here); this takes 2 ms.
        distinct_days, day_of_row = tf.unique(days)
        return tf.gather(self._lookup(distinct_days, release_days, content_only), day_of_row)

    def _lookup(self, days: tf.Tensor, release_days: tf.Tensor,
                content_only: tf.Tensor) -> tf.Tensor:
        rows = _per_row(tf.cast(content_only, tf.int32)) * NUM_BUCKETS
        return tf.gather(tf.reshape(self.bias, [-1]), rows + age_buckets(days, release_days))

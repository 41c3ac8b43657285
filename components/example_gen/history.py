"""The `recent_track_ids` feature: what the query tower knows of a user's listening.

Two constructions, matching the split protocol (components/example_gen/split_protocols.py):

* `recent_tracks` (sequential protocols): a play's history is the user's plays strictly before
  it, most recent first, whatever their split. A held-out play thus sees the training-period
  plays before it, as a served request would.
* `sampled_train_tracks` (the random protocol, where plays have no order): a training play's
  history is a random draw from the user's *other* training tracks, so the model learns to
  predict a held-out taste from the rest of the profile rather than to copy its input; a
  held-out play's history is one draw from all the user's training tracks, the same for every
  held-out play of that user (one query per user, as in the published protocols). Held-out
  tracks never appear in any history.

Both return [n, length] object arrays padded with `features.PAD_TOKEN`.
"""
import numpy as np

from crossfade.components import features
from crossfade.components.example_gen import split_protocols

# Rows of one user whose draws are made together: bounds the [rows, tracks] key matrix.
_DRAW_BLOCK = 512


def recent_tracks(user_id: np.ndarray, track_id: np.ndarray, length: int) -> np.ndarray:
    """[n, length] previous tracks of each play's user, most recent first, PAD_TOKEN-padded.

    Plays must be sorted by user, then time: row i's history is rows i-1, i-2, ... of the same
    user, so it never contains the play itself or anything after it.
    """
    size = len(track_id)
    history = np.full((size, length), features.PAD_TOKEN, dtype=object)
    for lag in range(1, min(length, size - 1) + 1):
        same_user = user_id[lag:] == user_id[:-lag]
        history[lag:, lag - 1] = np.where(same_user, track_id[:-lag], features.PAD_TOKEN)
    return history


def _draw(rng: np.random.Generator, pool: np.ndarray, own: np.ndarray,
          length: int) -> np.ndarray:
    """Per row, up to `length` distinct tracks of `pool` other than the row's `own` track."""
    keys = rng.random((len(own), len(pool)))
    keys[own[:, None] == pool[None, :]] = np.inf  # never the play's own track
    width = min(length, len(pool))
    chosen = np.argsort(keys, axis=1)[:, :width]
    drawn = np.where(np.isfinite(np.take_along_axis(keys, chosen, axis=1)),
                     pool[chosen], features.PAD_TOKEN)
    result = np.full((len(own), length), features.PAD_TOKEN, dtype=object)
    result[:, :width] = drawn
    return result


def sampled_train_tracks(user_id: np.ndarray, track_id: np.ndarray, labels: np.ndarray,
                         length: int, seed: int) -> np.ndarray:
    """[n, length] histories drawn from each user's training tracks (module docstring).

    Rows must be grouped by user in a deterministic order; `labels` are split labels
    (`split_protocols.TRAIN` etc.). Draws depend only on the user id, the seed and the user's
    rows, not on how plays are sharded.
    """
    history = np.full((len(track_id), length), features.PAD_TOKEN, dtype=object)
    bounds = split_protocols.user_bounds(user_id)
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        user_tracks = track_id[start:end]
        is_train = labels[start:end] == split_protocols.TRAIN
        pool = np.array(sorted(set(user_tracks[is_train])), dtype=object)
        if len(pool) == 0:
            continue
        rng = np.random.default_rng(split_protocols.user_seed(user_id[start], seed + 1))
        train_rows = np.flatnonzero(is_train)
        for block in range(0, len(train_rows), _DRAW_BLOCK):
            rows = train_rows[block:block + _DRAW_BLOCK]
            history[start + rows] = _draw(rng, pool, user_tracks[rows], length)
        held_out_rows = np.flatnonzero(~is_train)
        if len(held_out_rows):
            shared = _draw(rng, pool, np.array([None], dtype=object), length)
            history[start + held_out_rows] = shared
    return history

"""Likes in the training data: a saved track is a stronger positive than a stream.

`apply` works on one user shard: its plays (sorted by user, then time, as `shard_examples`
orders them), their split labels and histories, and the shard's likes (`sources.Likes`).

**Which split a like follows.** A like saved at a known time under the ``time`` protocol falls
in the period of its time, like a play would. Every other like -- saved at an unknown time
(Spotify's ``YourLibrary.json``), or under the per-user protocols, which split plays, not
time -- is *held out* when the user has a held-out play of the liked track (training on it
would tell the model that held-out play) and a training like otherwise. A held-out like is
not used at all: held-out splits measure streams, and a like never becomes an eval target.

**What a training like does.**

1. Every training play of its (user, track) weighs `like_weight` times its own weight (a
   liked skip stays a down-weighted positive: StreamQualifier's factors multiply).
2. If the user has no training play of the track, the like becomes one training example of
   its own, weight `like_weight` (a *library example*): the liked track as the positive, with
   the query the user had just after their latest training play at or before the like's time
   (at an unknown time: their latest training play) -- that *anchor* play's history with the
   anchor's track in front under sequential protocols (the anchor's own history under
   ``random``, whose histories are unordered draws), its platform and country -- at the
   like's time (at an unknown time, the anchor's). ``ms_played`` 0 and no ``reason_end``:
   StreamQualifier counts it as a stream of unknown duration and keeps its weight. A like
   with no anchor (the user has no training play early enough) is not used.

Weights rather than a second loss: the two-tower's softmax already takes a weight per
example, so a liked play pulls its user and track together `like_weight` times harder and
in-batch negatives keep their composition. `like_weight` is `PipelineConfig.like_weight`;
README (Likes) has the Recall change it brings.
"""
import dataclasses
from typing import Dict, Tuple

import numpy as np
import pandas as pd

from crossfade.components.example_gen import split_protocols
from crossfade.components.listening_data import sources
from crossfade.components.listening_data.play_checks import (
    LIKED_PLAYS,
    LIKES_AS_EXAMPLES,
    LIKES_HELD_OUT,
    LIKES_ON_PLAYS,
    LIKES_WITHOUT_ANCHOR,
)

# Ids never hold control characters (sources rejects them), so this joins a pair unambiguously.
_PAIR_SEPARATOR = "\x1f"
# Sorting key of a like at an unknown time: after every play (Unix seconds fit in 33 bits).
_TIME_BITS = 33


@dataclasses.dataclass
class LikedShard:
    """A shard's training data with its likes applied."""

    plays: sources.Plays  # the shard's plays (training weights multiplied), then library examples
    labels: np.ndarray  # split label per row of `plays`
    recent: np.ndarray  # [len(plays), history length] histories
    counts: Dict[str, int]


def _pairs(user_id: np.ndarray, track_id: np.ndarray) -> pd.Index:
    return pd.Index(user_id.astype(object) + _PAIR_SEPARATOR + track_id.astype(object))


def like_labels(likes: sources.Likes, play_pairs: pd.Index, labels: np.ndarray,
                protocol: split_protocols.SplitProtocol,
                periods: Tuple[int, int]) -> np.ndarray:
    """Split label per like (module docstring: which split a like follows)."""
    held_pairs = play_pairs[labels != split_protocols.TRAIN]
    held = _pairs(likes.user_id, likes.track_id).isin(held_pairs)
    result = np.where(held, split_protocols.EVAL, split_protocols.TRAIN)
    if protocol.name == split_protocols.TIME:
        timed = likes.ts != sources.NO_TIME
        result[timed] = split_protocols.time_labels(likes.ts[timed], *periods)
    # A cold item is never trained on, so its likes are held out (unused) too.
    cold = split_protocols.cold_item_rows(likes.track_id, protocol.cold_items, protocol.seed)
    result[cold] = split_protocols.EVAL
    return result


def anchors(plays: sources.Plays, is_train: np.ndarray, likes: sources.Likes) -> np.ndarray:
    """Row of each like's anchor: its user's latest training play at or before its time
    (any time for `NO_TIME`), or -1. `plays` sorted by user, then time."""
    train_rows = np.flatnonzero(is_train)
    codes, _ = pd.factorize(np.concatenate([plays.user_id[train_rows], likes.user_id]))
    play_codes, like_codes = codes[:len(train_rows)], codes[len(train_rows):]
    # Users are sorted, so codes in order of first appearance rise with the rows: one key
    # (user code, time) is sorted too, and a binary search finds each like's anchor.
    play_keys = (play_codes.astype(np.int64) << _TIME_BITS) + plays.ts[train_rows]
    like_ts = np.where(likes.ts == sources.NO_TIME, (1 << _TIME_BITS) - 1, likes.ts)
    like_keys = (like_codes.astype(np.int64) << _TIME_BITS) + like_ts
    position = np.searchsorted(play_keys, like_keys, side="right") - 1
    found = (position >= 0) & (play_codes[np.maximum(position, 0)] == like_codes)
    return np.where(found, train_rows[np.maximum(position, 0)], -1)


def _library_examples(plays: sources.Plays, recent: np.ndarray, likes: sources.Likes,
                      anchor: np.ndarray, like_weight: float,
                      sequential: bool) -> Tuple[sources.Plays, np.ndarray]:
    """One training example per like at its anchor's query (module docstring, point 2)."""
    size = len(likes)
    if sequential:  # the anchor play is the latest before the like: it leads the history
        history = np.concatenate([plays.track_id[anchor][:, None], recent[anchor][:, :-1]],
                                 axis=1)
    else:
        history = recent[anchor]
    timed = likes.ts != sources.NO_TIME
    examples = sources.Plays(
        user_id=likes.user_id, track_id=likes.track_id,
        ts=np.where(timed, likes.ts, plays.ts[anchor]),
        platform=plays.platform[anchor], country=plays.country[anchor],
        ms_played=np.zeros(size, dtype=np.int64), skipped=np.zeros(size, dtype=np.int64),
        reason_end=np.full(size, "", dtype=object),
        weight=np.full(size, like_weight, dtype=np.float32))
    return examples, history


def apply(plays: sources.Plays, labels: np.ndarray, recent: np.ndarray, likes: sources.Likes,
          like_weight: float, protocol: split_protocols.SplitProtocol,
          periods: Tuple[int, int]) -> LikedShard:
    """The shard's plays with `likes` applied, and what the likes did (counts named in
    `play_checks.LIKE_COUNT_NAMES`)."""
    play_pairs = _pairs(plays.user_id, plays.track_id)
    is_train = labels == split_protocols.TRAIN
    used = likes.take(like_labels(likes, play_pairs, labels, protocol, periods)
                      == split_protocols.TRAIN)
    used_pairs = _pairs(used.user_id, used.track_id)
    liked_play = is_train & play_pairs.isin(used_pairs)
    weights = np.where(liked_play, plays.weight * np.float32(like_weight), plays.weight)
    on_plays = used_pairs.isin(play_pairs[is_train])
    library = used.take(~on_plays)
    anchor = anchors(plays, is_train, library)
    library = library.take(anchor >= 0)
    examples, history = _library_examples(plays, recent, library, anchor[anchor >= 0],
                                          like_weight, protocol.sequential)
    counts = {LIKES_HELD_OUT: len(likes) - len(used), LIKES_ON_PLAYS: int(on_plays.sum()),
              LIKED_PLAYS: int(liked_play.sum()), LIKES_AS_EXAMPLES: len(library),
              LIKES_WITHOUT_ANCHOR: int((anchor < 0).sum())}
    weighted = dataclasses.replace(plays, weight=weights)
    return LikedShard(
        plays=sources.Plays.concat([weighted, examples]),
        labels=np.concatenate([labels, np.full(len(library), split_protocols.TRAIN,
                                               dtype=labels.dtype)]),
        recent=np.concatenate([recent, history]), counts=counts)

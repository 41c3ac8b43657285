"""Likes applied to a shard: which split each like follows, the weights, library examples."""
import numpy as np

from crossfade.components import features
from crossfade.components.example_gen import history, likes, split_protocols
from crossfade.components.listening_data import play_checks, sources

DAY = 86400
START = 19_675 * DAY
TIME = split_protocols.SplitProtocol(name=split_protocols.TIME, eval_days=1)
RANDOM = split_protocols.SplitProtocol(name=split_protocols.RANDOM)
PERIODS = (START + 2 * DAY, START + 3 * DAY)  # day 2 is eval, no test
TRAIN, EVAL = split_protocols.TRAIN, split_protocols.EVAL


def _plays(rows):
    """rows: (user, track, day, hour); sorted by user, then time, as shard_examples sorts."""
    rows = sorted(rows, key=lambda r: (r[0], r[2] * DAY + r[3] * 3600, r[1]))
    size = len(rows)
    return sources.Plays(
        user_id=np.array([r[0] for r in rows], object),
        track_id=np.array([r[1] for r in rows], object),
        ts=np.array([START + r[2] * DAY + r[3] * 3600 for r in rows], np.int64),
        platform=np.array([f"p-{r[1]}" for r in rows], object),
        country=np.full(size, "SE", object), ms_played=np.full(size, 200_000, np.int64),
        skipped=np.zeros(size, np.int64), reason_end=np.full(size, "trackdone", object),
        weight=np.ones(size, np.float32))


def _likes(rows):
    """rows: (user, track, day or None, hour)."""
    return sources.Likes(
        user_id=np.array([r[0] for r in rows], object),
        track_id=np.array([r[1] for r in rows], object),
        ts=np.array([sources.NO_TIME if r[2] is None else START + r[2] * DAY + r[3] * 3600
                     for r in rows], np.int64))


def _apply(plays, like_rows, weight=3.0, protocol=TIME):
    labels = split_protocols.time_labels(plays.ts, *PERIODS)
    recent = history.recent_tracks(plays.user_id, plays.track_id, features.HISTORY_LENGTH)
    return likes.apply(plays, labels, recent, _likes(like_rows), weight, protocol, PERIODS)


PLAYS = _plays([("u1", "a", 0, 1), ("u1", "b", 0, 2), ("u1", "a", 1, 5), ("u1", "c", 2, 3),
                ("u2", "b", 0, 9), ("u2", "d", 2, 1)])


def test_a_training_like_multiplies_the_weight_of_its_training_plays_only():
    result = _apply(PLAYS, [("u1", "a", 0, 1)])
    pairs = zip(result.plays.user_id, result.plays.ts, strict=True)
    weights = dict(zip(pairs, result.plays.weight, strict=True))
    assert weights[("u1", START + 3600)] == 3.0
    assert weights[("u1", START + DAY + 5 * 3600)] == 3.0
    assert weights[("u1", START + 2 * 3600)] == 1.0  # b: not liked
    assert len(result.plays) == len(PLAYS)  # no library example: the pair has training plays
    assert result.counts[play_checks.LIKES_ON_PLAYS] == 1
    assert result.counts[play_checks.LIKED_PLAYS] == 2


def test_a_like_in_the_eval_period_is_held_out_and_changes_nothing():
    result = _apply(PLAYS, [("u1", "a", 2, 5), ("u1", "z", 2, 6)])
    np.testing.assert_array_equal(result.plays.weight, PLAYS.weight)
    assert len(result.plays) == len(PLAYS)
    assert result.counts[play_checks.LIKES_HELD_OUT] == 2


def test_an_untimed_like_of_a_track_played_in_eval_is_held_out():
    # u1 streams c on the eval day: a library like of c with no time could be after it.
    result = _apply(PLAYS, [("u1", "c", None, 0), ("u2", "b", None, 0)])
    assert result.counts[play_checks.LIKES_HELD_OUT] == 1
    assert result.counts[play_checks.LIKES_ON_PLAYS] == 1  # u2's b: played in training only


def test_a_liked_track_never_played_in_training_becomes_one_example_at_its_anchor():
    result = _apply(PLAYS, [("u1", "z", 1, 8), ("u2", "y", None, 0)])
    assert len(result.plays) == len(PLAYS) + 2
    added = result.plays.take(np.arange(len(PLAYS), len(result.plays)))
    assert added.track_id.tolist() == ["z", "y"]
    assert added.weight.tolist() == [3.0, 3.0]
    assert added.ms_played.tolist() == [0, 0] and added.reason_end.tolist() == ["", ""]
    # z at its own time; the anchor is u1's latest training play before it (a, day 1)...
    assert added.ts[0] == START + DAY + 8 * 3600 and added.platform[0] == "p-a"
    recent = result.recent[len(PLAYS):]
    assert recent[0][:4].tolist() == ["a", "b", "a", ""]  # the anchor's track leads
    # ... y has no time: u2's latest training play (b, day 0), at that play's time.
    assert added.ts[1] == START + 9 * 3600 and recent[1][:2].tolist() == ["b", ""]
    assert result.labels[len(PLAYS):].tolist() == [TRAIN, TRAIN]
    assert result.counts[play_checks.LIKES_AS_EXAMPLES] == 2


def test_a_like_before_any_training_play_of_its_user_is_not_used():
    result = _apply(PLAYS, [("u2", "z", 0, 1), ("u9", "z", 0, 1)])
    assert len(result.plays) == len(PLAYS)
    assert result.counts[play_checks.LIKES_WITHOUT_ANCHOR] == 2


def test_under_a_per_user_protocol_a_like_of_a_held_out_pair_is_held_out():
    labels = np.full(len(PLAYS), TRAIN)
    labels[3] = EVAL  # u1's c
    recent = history.recent_tracks(PLAYS.user_id, PLAYS.track_id, features.HISTORY_LENGTH)
    like_rows = _likes([("u1", "c", 0, 0), ("u1", "a", 2, 9)])
    result = likes.apply(PLAYS, labels, recent, like_rows, 2.0, RANDOM, PERIODS)
    assert result.counts[play_checks.LIKES_HELD_OUT] == 1  # c, though liked on day 0
    assert result.counts[play_checks.LIKED_PLAYS] == 2  # a, though liked on day 2: no time split
    assert len(result.plays) == len(PLAYS)


def test_anchors_search_each_users_training_plays_by_time():
    is_train = np.array([True, True, True, False, True, False])
    found = likes.anchors(PLAYS, is_train, _likes([
        ("u1", "x", 0, 1), ("u1", "x", 0, 0), ("u1", "x", None, 0), ("u2", "x", 3, 0),
        ("u0", "x", 1, 0)]))
    assert found.tolist() == [0, -1, 2, 4, -1]


def test_likes_of_cold_items_are_held_out():
    tracks = np.array([f"track-{i}" for i in range(200)], dtype=object)
    protocol = split_protocols.SplitProtocol(name=split_protocols.RANDOM, cold_items=0.5)
    cold = split_protocols.cold_item_rows(tracks, 0.5, protocol.seed)
    like_rows = _likes([("u1", track, None, 0) for track in tracks])
    labels = likes.like_labels(like_rows, likes._pairs(PLAYS.user_id, PLAYS.track_id),
                               np.full(len(PLAYS), TRAIN), protocol, PERIODS)
    assert (labels == EVAL).tolist() == cold.tolist() and 0 < cold.sum() < 200

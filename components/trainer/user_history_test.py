"""latest_histories: each user's latest play and its history, padding elsewhere."""
import numpy as np

from crossfade.components import features
from crossfade.components.trainer.user_history import latest_histories

PAD = 99
WIDTH = features.HISTORY_LENGTH


def _history(*tracks):
    return list(tracks) + [PAD] * (WIDTH - len(tracks))


def test_latest_play_then_its_history_per_user():
    stored = latest_histories(
        user_index=np.array([0, 1, 0, 0]), track_index=np.array([5, 6, 7, 8]),
        recent_indices=np.array([_history(), _history(), _history(5), _history(1)]),
        play_time=np.array([10, 10, 30, 20]), users=3, padding_index=PAD)
    assert stored.shape == (5, WIDTH) and stored.dtype == np.int32
    assert stored[0].tolist() == _history(7, 5)  # the play at 30, then what preceded it
    assert stored[1].tolist() == _history(6)
    assert stored[2].tolist() == stored[3].tolist() == stored[4].tolist() == _history()


def test_ties_take_the_later_example_and_long_histories_are_cut():
    long = list(range(WIDTH))
    stored = latest_histories(np.array([0, 0]), np.array([1, 2]),
                              np.array([_history(), long]), np.array([0, 0]), users=1,
                              padding_index=PAD)
    assert stored[0].tolist() == [2] + long[:WIDTH - 1]

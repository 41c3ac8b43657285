"""The history the served model keeps for every training user.

History is the query tower's strongest input, but a client that knows only a user id (a home
page, a notification job) has none to send. The export therefore stores, for every user of the
user vocabulary, their most recent `features.HISTORY_LENGTH` training tracks: the track of
their latest training play followed by that play's own history (most recent first), in the
transformed index space the query tower reads. A request of a known user whose
`recent_track_ids` are all padding uses this row; a request that sends any track keeps its own.

Under the random split protocol (data without order) "latest" is the last example read; its
history is a draw from the user's other training tracks (components/example_gen/history.py),
so the row is a bag of the user's training profile, as the model was trained on.

Size: (users + 2) x HISTORY_LENGTH int32, 16 MB for 100,000 users at 40 tracks
(bench/model_size_bench.py). Any later per-user feature (friends, say) is kept the same way: a
[users + 2, ...] variable gathered by the transformed user index, never a new input of
`serving_default`, whose clients must not break.
"""
import numpy as np

from crossfade.components import features


def latest_histories(user_index: np.ndarray, track_index: np.ndarray,
                     recent_indices: np.ndarray, play_time: np.ndarray, users: int,
                     padding_index: int) -> np.ndarray:
    """[users + 2, HISTORY_LENGTH] int32 stored history per user index.

    Args:
      user_index: [N] transformed user index of each training example (0..users-1 known).
      track_index: [N] its played track's index.
      recent_indices: [N, HISTORY_LENGTH] its history's indices (`padding_index` padding).
      play_time: [N] its timestamp (ties: the later example wins).
      users: user vocabulary size; rows `users` (OOV) and `users + 1` are all padding, as is
        any user without an example.
      padding_index: the track lists' padding index (track vocabulary size + 1).
    """
    width = features.HISTORY_LENGTH
    user_index = np.asarray(user_index).ravel()
    recent_indices = np.asarray(recent_indices).reshape(len(user_index), width)
    stored = np.full((users + 2, width), padding_index, dtype=np.int32)
    known = (user_index >= 0) & (user_index < users)
    order = np.lexsort((np.arange(len(user_index)), np.asarray(play_time).ravel(), user_index))
    order = order[known[order]]
    if order.size == 0:
        return stored
    ordered_users = user_index[order]
    last = np.flatnonzero(np.append(ordered_users[1:] != ordered_users[:-1], True))
    latest = order[last]
    stored[user_index[latest]] = np.concatenate(
        [np.asarray(track_index).ravel()[latest, None], recent_indices[latest, :width - 1]],
        axis=1)
    return stored

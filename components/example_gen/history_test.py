"""History features: sequential history, and draws from the user's training tracks."""
import numpy as np

from crossfade.components.example_gen import history
from crossfade.components.example_gen import split_protocols as protocols

T, E, X = protocols.TRAIN, protocols.EVAL, protocols.TEST


def test_recent_tracks_holds_only_earlier_plays_of_the_same_user():
    users = np.array(["a", "a", "a", "b", "b"], dtype=object)
    tracks = np.array(["t1", "t2", "t3", "t4", "t5"], dtype=object)
    assert history.recent_tracks(users, tracks, 3).tolist() == [
        ["", "", ""],
        ["t1", "", ""],
        ["t2", "t1", ""],
        ["", "", ""],  # user b: nothing from user a leaks in
        ["t4", "", ""],
    ]


def test_sampled_train_tracks_exclude_the_label_and_held_out_tracks():
    users = np.array(["a"] * 6 + ["b"] * 2, dtype=object)
    tracks = np.array(["t1", "t2", "t3", "t4", "t5", "t1", "t9", "t8"], dtype=object)
    labels = np.array([T, T, T, T, E, X, T, X])
    drawn = history.sampled_train_tracks(users, tracks, labels, length=3, seed=0)
    for row in range(4):  # user a's train plays: 3 of the other train tracks
        assert len(set(drawn[row])) == 3 and tracks[row] not in drawn[row]
        assert set(drawn[row]) <= {"t1", "t2", "t3", "t4"}
    # Held-out plays share one draw from all train tracks (t5 is held out: never drawn).
    assert drawn[4].tolist() == drawn[5].tolist()
    assert set(drawn[4]) <= {"t1", "t2", "t3", "t4"} and len(set(drawn[4])) == 3
    assert drawn[6].tolist() == ["", "", ""]  # b's only train track is its own label
    assert drawn[7].tolist() == ["t9", "", ""]


def test_sampled_train_tracks_are_reproducible_and_vary_with_the_seed():
    users = np.array(["a"] * 30, dtype=object)
    tracks = np.array([f"t{i}" for i in range(30)], dtype=object)
    labels = np.full(30, T)
    first = history.sampled_train_tracks(users, tracks, labels, 5, seed=1)
    assert first.tolist() == history.sampled_train_tracks(users, tracks, labels, 5,
                                                          seed=1).tolist()
    assert first.tolist() != history.sampled_train_tracks(users, tracks, labels, 5,
                                                          seed=2).tolist()
    # Rows are drawn independently: not every play gets the same history.
    assert len({tuple(sorted(row)) for row in first}) > 1

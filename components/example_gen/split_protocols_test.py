"""Split protocols: time periods, leave-last-out, and RecBole-style random 8:1:1 per user."""
import numpy as np
import pytest

from crossfade.components.example_gen import split_protocols as protocols

DAY = 86400


def test_period_starts_without_and_with_a_test_period():
    latest = 10 * DAY + 500
    assert protocols.period_starts(latest, 1, 0) == (10 * DAY, latest + 1)
    assert protocols.period_starts(latest, 3, 0) == (8 * DAY, latest + 1)
    # test: day 10; eval: days 8 and 9.
    assert protocols.period_starts(latest, 2, 1) == (8 * DAY, 10 * DAY)


def test_time_labels():
    ts = np.array([0, 5, 10, 15])
    assert protocols.time_labels(ts, 5, 15).tolist() == [protocols.TRAIN, protocols.EVAL,
                                                          protocols.EVAL, protocols.TEST]


def test_leave_last_out_holds_out_the_last_two_plays_of_users_with_three_or_more():
    users = np.array(["a", "a", "a", "a", "b", "b", "c", "c", "c"], dtype=object)
    t, e, x = protocols.TRAIN, protocols.EVAL, protocols.TEST
    assert protocols.leave_last_out_labels(users).tolist() == [t, t, e, x, t, t, t, e, x]


@pytest.mark.parametrize("size, expected", [
    (50, (40, 5, 5)),
    (10, (8, 1, 1)),
    # floor(0.1 x 5) = 0, but the exact share is in (0, 1): one each, taken from train.
    (5, (3, 1, 1)),
    (3, (1, 1, 1)),
    # Train must keep more than one play before it gives one away.
    (2, (1, 0, 1)),
    (1, (1, 0, 0)),
    (19, (17, 1, 1)),
])
def test_held_out_counts_round_as_recbole(size, expected):
    assert protocols.held_out_counts(size, (0.8, 0.1, 0.1)) == expected


def test_random_labels_follow_the_counts_and_depend_only_on_user_and_seed():
    users = np.array(["a"] * 10 + ["b"] * 5, dtype=object)
    labels = protocols.random_labels(users, (0.8, 0.1, 0.1), seed=1)
    assert np.bincount(labels[:10], minlength=3).tolist() == [8, 1, 1]
    assert np.bincount(labels[10:], minlength=3).tolist() == [3, 1, 1]
    # User b alone (as on another shard) is split the same way.
    alone = protocols.random_labels(users[10:], (0.8, 0.1, 0.1), seed=1)
    assert alone.tolist() == labels[10:].tolist()
    other_seed = [protocols.random_labels(users, (0.8, 0.1, 0.1), seed=s).tolist()
                  for s in range(2, 8)]
    assert any(other != labels.tolist() for other in other_seed)


def test_protocol_validation_and_resolution():
    with pytest.raises(ValueError, match="must be one of"):
        protocols.SplitProtocol(name="kfold")
    with pytest.raises(ValueError, match="sum"):
        protocols.SplitProtocol(ratios=(0.8, 0.1, 0.2))
    assert protocols.SplitProtocol().resolve(has_timestamps=True).name == protocols.TIME
    assert protocols.SplitProtocol().resolve(has_timestamps=False).name == protocols.RANDOM
    with pytest.raises(ValueError, match="needs timestamps"):
        protocols.SplitProtocol(name=protocols.LEAVE_LAST_OUT).resolve(has_timestamps=False)
    assert protocols.SplitProtocol(name="time").split_names() == ["train", "eval"]
    assert protocols.SplitProtocol(name="time", test_days=1).split_names() == [
        "train", "eval", "test"]
    assert protocols.SplitProtocol(name="random").split_names() == ["train", "eval", "test"]
    assert protocols.SplitProtocol(name="random", seed=2).describe() == (
        "random 8:1:1 per user, seed 2")
    round_trip = protocols.SplitProtocol.from_dict(
        {**protocols.SplitProtocol(name="random", seed=2).to_dict(), "seed": 2.0})
    assert round_trip == protocols.SplitProtocol(name="random", seed=2)


def test_cold_items_are_a_seeded_share_of_items_with_every_play():
    items = np.array([f"artist-{i}" for i in range(20_000)], dtype=object)
    cold = protocols.cold_item_rows(items, 0.1, seed=0)
    assert 0.09 < cold.mean() < 0.11
    # Every play of a cold item is cold, wherever it is and whatever else is in the batch.
    plays = np.concatenate([items[:500], items[:500][::-1]])
    part = protocols.cold_item_rows(plays, 0.1, seed=0)
    assert part.tolist() == np.concatenate([cold[:500], cold[:500][::-1]]).tolist()
    other = protocols.cold_item_rows(items, 0.1, seed=1)
    assert 0.0 < (cold & other).mean() < 0.02  # another seed holds out other items
    assert not protocols.cold_item_rows(items, 0.0, seed=0).any()


def test_cold_items_need_the_random_split():
    with pytest.raises(ValueError, match="cold_items must be in"):
        protocols.SplitProtocol(name=protocols.RANDOM, cold_items=1.0)
    for name in (protocols.TIME, protocols.LEAVE_LAST_OUT):
        with pytest.raises(ValueError, match="cold_items needs the 'random' split"):
            protocols.SplitProtocol(name=name, test_days=3, cold_items=0.1)
    with pytest.raises(ValueError, match="cold_items needs the 'random' split, not 'time'"):
        protocols.SplitProtocol(cold_items=0.1).resolve(has_timestamps=True)
    protocol = protocols.SplitProtocol(cold_items=0.1).resolve(has_timestamps=False)
    assert protocol.describe() == "random 8:1:1 per user, seed 0; 10% of items cold (test only)"
    assert protocols.SplitProtocol.from_dict(protocol.to_dict()) == protocol

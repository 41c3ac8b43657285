"""BlendPolicy over a fake backend: one call row per group, the group's list for every member."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from crossfade.components.simulation import blend_policy
from crossfade.components.simulation.blend_policy import BlendPolicy
from crossfade.components.simulation.policies import PolicyError, Requests
from crossfade.serving import signatures

TRACK_IDS = np.array([f"t{i:02d}" for i in range(30)], dtype=object)


class FakeBackend:
    """Answers `blend` with, per group row, the tracks after the sum of its members'
    latest tracks: a list that depends on every member and on nothing else."""

    export_dir = "fake"
    signature_names = {signatures.BLEND, signatures.RECOMMEND}

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def predict(self, signature_name: str, inputs: dict) -> dict:
        assert signature_name == signatures.BLEND
        self.calls.append(inputs)
        latest = inputs["recent_track_ids"][:, :, 0]
        total = np.array([[int(t.decode()[1:]) for t in row if t] for row in latest],
                         dtype=object)
        start = np.array([sum(row) for row in total])
        k = int(inputs["k"][0])
        ids = [[TRACK_IDS[(s + j) % len(TRACK_IDS)] for j in range(k)] for s in start]
        return {"track_ids": np.array(ids, dtype=object).astype(bytes)}


def _requests(users: np.ndarray, k: int = 4) -> Requests:
    recent = np.full((len(users), 3), -1)
    recent[:, 0] = users
    return Requests(day=2, users=users, user_ids=np.array([f"u{u}" for u in users], object),
                    recent=recent, timestamps=1_000 + users.astype(np.int64),
                    platforms=np.array([f"p{u}" for u in users], object), k=k)


def test_every_member_gets_the_groups_list() -> None:
    backend = FakeBackend()
    policy = BlendPolicy(backend, [np.array([3, 1]), np.array([5, 6, 7])], "average",
                         TRACK_IDS)
    lists = policy.recommend(_requests(np.array([1, 3, 4, 5, 6, 7])))
    # Group (3, 1): start 4; group (5, 6, 7): start 18; listener 4 is in no group.
    assert lists.tracks[[0, 1]].tolist() == [[4, 5, 6, 7]] * 2
    assert lists.tracks[[3, 4, 5]].tolist() == [[18, 19, 20, 21]] * 3
    assert lists.tracks[2].tolist() == [-1] * 4
    assert (lists.propensities == 1).all()
    (call,) = backend.calls
    # One row per group, members in group order, the first member's session context.
    assert call["user_ids"].tolist() == [[b"u3", b"u1", b""], [b"u5", b"u6", b"u7"]]
    assert call["timestamp"].tolist() == [1_003, 1_005]
    assert call["platform"].tolist() == [b"p3", b"p5"]
    assert call["strategy"].tolist() == [signatures.BLEND_STRATEGIES["average"]] * 2


def test_groups_are_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blend_policy, "MAX_ROWS", 2)
    backend = FakeBackend()
    groups = [np.array([2 * g, 2 * g + 1]) for g in range(5)]
    lists = BlendPolicy(backend, groups, "fair-interleave", TRACK_IDS).recommend(
        _requests(np.arange(10)))
    assert [len(c["user_ids"]) for c in backend.calls] == [2, 2, 1]
    assert lists.tracks[:, 0].tolist() == [1, 1, 5, 5, 9, 9, 13, 13, 17, 17]


@pytest.mark.parametrize("groups, users, message", [
    ([np.array([1, 2]), np.array([2, 3])], [1, 2, 3], "listener 2 is in groups 0 and 1"),
    ([np.array([1, 2])], [1], "listener 2's group is requested without them"),
    ([np.arange(6)], range(6), "a blend has 1 to 5 members, got 6"),
])
def test_refuses_groups_it_cannot_serve(groups, users, message) -> None:
    with pytest.raises(PolicyError, match=message):
        BlendPolicy(FakeBackend(), groups, "average", TRACK_IDS).recommend(
            _requests(np.array(list(users))))


def test_refuses_an_export_without_blend_and_an_unknown_strategy() -> None:
    old = SimpleNamespace(export_dir="old", signature_names={signatures.SERVING_DEFAULT})
    with pytest.raises(PolicyError, match="old: no 'blend' signature"):
        BlendPolicy(old, [np.array([0, 1])], "average", TRACK_IDS)
    with pytest.raises(PolicyError, match="unknown blend strategy 'loudest'"):
        BlendPolicy(FakeBackend(), [np.array([0, 1])], "loudest", TRACK_IDS)

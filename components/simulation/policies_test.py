"""Policy specs, the chart and random baselines, export paths, and model policies over a toy
SavedModel (``serving_default`` only) and over a fake backend with ``recommend``."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

from crossfade.components.simulation import policies
from crossfade.components.simulation.policies import (
    ChartPolicy,
    ModelPolicy,
    PolicyError,
    PolicySpec,
    RandomPolicy,
    Requests,
    SavedModelBackend,
    latest_export,
    parse_spec,
)
from crossfade.serving import signatures
from crossfade.serving.toy_model import save_toy_model

TRACK_IDS = np.array([f"spotify:track:t{i:03d}" for i in range(60)], dtype=object)


def _requests(n: int, k: int = 5, day: int = 3, users: "np.ndarray | None" = None) -> Requests:
    users = np.arange(n) if users is None else users
    recent = np.full((n, 4), -1)
    recent[:, 0] = users % len(TRACK_IDS)
    return Requests(day=day, users=users,
                    user_ids=np.array([f"user{u % 7}" for u in users], dtype=object),
                    recent=recent, timestamps=np.full(n, 1_709_300_000, np.int64),
                    platforms=np.array(["android"] * n, dtype=object), k=k)


# -- specs -----------------------------------------------------------------------------------


def test_parse_spec_reads_controls() -> None:
    spec = parse_spec("model:diversity=0.3,explore=0.1")
    assert spec == PolicySpec("model", {"diversity": 0.3, "explore": 0.1})
    assert spec.name == "model:diversity=0.3,explore=0.1"
    assert parse_spec("chart") == PolicySpec("chart", {})
    assert parse_spec("random").name == "random"


@pytest.mark.parametrize("text, message", [
    ("model:temperature=0.5", "unknown control 'temperature'"),
    ("model:explore=lots", "explore='lots' is not a number"),
    ("model:explore=1.5", r"explore must be in \[0, 1\]"),
    ("model:diversity=-0.1", r"diversity must be in \[0, 1\]"),
    ("model:explore=nan", r"explore must be in \[0, 1\]"),
    ("chart:diversity=0.2", "chart takes no controls"),
    ("random:explore=0.1", "random takes no controls"),
])
def test_parse_spec_refuses(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_spec(text)


def test_parse_spec_keeps_a_path_with_colons() -> None:
    assert parse_spec("/runs/a:b/export") == PolicySpec("/runs/a:b/export", {})
    spec = parse_spec("/runs/a:b/export:explore=0.2")
    assert spec == PolicySpec("/runs/a:b/export", {"explore": 0.2})
    assert spec.name == "/runs/a:b/export:explore=0.2"  # exports are named by their path


# -- baselines -------------------------------------------------------------------------------


def test_chart_policy_serves_the_chart_to_everyone_padded() -> None:
    lists = ChartPolicy(np.array([7, 3, 9])).recommend(_requests(4, k=5))
    np.testing.assert_array_equal(lists.tracks, np.tile([7, 3, 9, -1, -1], (4, 1)))
    np.testing.assert_array_equal(lists.propensities, np.ones((4, 5)))
    cut = ChartPolicy(np.arange(20)).recommend(_requests(2, k=5))
    np.testing.assert_array_equal(cut.tracks, np.tile(np.arange(5), (2, 1)))


RELEASE_DAY = np.array([-30, 1, 0, 2, 3, 4, 10, -5, 1, 7, 5, 3])  # 3 released by day 0, 8 by 3


def test_random_policy_draws_distinct_released_tracks_with_their_propensities() -> None:
    lists = RandomPolicy(RELEASE_DAY, seed=1).recommend(_requests(300, k=5, day=3))
    released = np.flatnonzero(RELEASE_DAY <= 3)
    assert len(released) == 8
    assert np.isin(lists.tracks, released).all()
    assert all(len(set(row)) == 5 for row in lists.tracks.tolist())
    np.testing.assert_allclose(lists.propensities, np.tile(1 / (8 - np.arange(5)), (300, 1)))


def test_random_policy_is_uniform_over_released_tracks() -> None:
    lists = RandomPolicy(RELEASE_DAY, seed=2).recommend(_requests(4000, k=3, day=3))
    counts = np.bincount(lists.tracks[:, 0], minlength=len(RELEASE_DAY))
    released = RELEASE_DAY <= 3
    assert (counts[~released] == 0).all()
    # 500 expected per track; 5 standard deviations is about 110.
    assert np.abs(counts[released] - 500).max() < 110


def test_random_policy_is_deterministic_per_day_and_seed() -> None:
    policy = RandomPolicy(RELEASE_DAY, seed=1)
    first = policy.recommend(_requests(50, day=3)).tracks
    np.testing.assert_array_equal(first, policy.recommend(_requests(50, day=3)).tracks)
    assert not np.array_equal(first, policy.recommend(_requests(50, day=4)).tracks)
    other = RandomPolicy(RELEASE_DAY, seed=2).recommend(_requests(50, day=3)).tracks
    assert not np.array_equal(first, other)


def test_random_policy_pads_when_fewer_tracks_are_released_than_k() -> None:
    lists = RandomPolicy(RELEASE_DAY, seed=0).recommend(_requests(10, k=5, day=0))
    assert set(lists.tracks[:, :3].ravel()) == {0, 2, 7}
    assert (lists.tracks[:, 3:] == -1).all()
    np.testing.assert_allclose(lists.propensities[0], [1 / 3, 1 / 2, 1.0, 1.0, 1.0])


# -- export paths ----------------------------------------------------------------------------


def test_latest_export_of_a_saved_model_folder_is_itself(tmp_path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert latest_export(str(tmp_path)) == str(tmp_path)


def test_latest_export_of_a_base_path_is_its_highest_version(tmp_path) -> None:
    for name in ("1", "2", "10", ".staging-11", "notes"):
        (tmp_path / name).mkdir()
    assert latest_export(str(tmp_path)) == os.path.join(str(tmp_path), "10")


def test_latest_export_refuses_a_missing_or_empty_folder(tmp_path) -> None:
    with pytest.raises(PolicyError, match="no such folder"):
        latest_export(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match="neither a SavedModel"):
        latest_export(str(tmp_path / "empty"))


# -- model policies over a toy SavedModel ----------------------------------------------------


@pytest.fixture(scope="module")
def toy_backend(tmp_path_factory) -> SavedModelBackend:
    path = str(tmp_path_factory.mktemp("toy") / "export")
    save_toy_model(path, list(TRACK_IDS), seed=0, warmup_users=None)
    return SavedModelBackend(path)


def _direct(backend: SavedModelBackend, requests: Requests) -> np.ndarray:
    """The toy's own answer on serving_default, as catalogue indices."""
    recent = [TRACK_IDS[r[r >= 0]].tolist() for r in requests.recent]
    inputs = signatures.recommend_inputs(requests.user_ids.tolist(), recent, requests.k,
                                         requests.platforms.tolist(),
                                         requests.timestamps.tolist())
    ids = [[t.decode() for t in row] for row in backend.predict("serving_default", inputs)[
        "track_ids"]]
    index = {t: i for i, t in enumerate(TRACK_IDS)}
    return np.array([[index[t] for t in row] for row in ids])


def test_model_policy_without_controls_calls_serving_default(toy_backend) -> None:
    assert signatures.RECOMMEND not in toy_backend.signature_names
    requests = _requests(6, k=4)
    policy = ModelPolicy("toy", toy_backend, {"explore": 0.0}, TRACK_IDS)
    lists = policy.recommend(requests)
    np.testing.assert_array_equal(lists.tracks, _direct(toy_backend, requests))
    np.testing.assert_array_equal(lists.propensities, np.ones((6, 4)))
    assert policy.source == toy_backend.export_dir


@pytest.mark.parametrize("controls", [{"explore": 0.1}, {"diversity": 0.3}])
def test_model_policy_with_controls_needs_recommend(toy_backend, controls) -> None:
    with pytest.raises(PolicyError, match="no 'recommend' signature"):
        ModelPolicy("toy", toy_backend, controls, TRACK_IDS)


def test_model_policy_maps_unknown_ids_to_minus_one_and_pads(tmp_path) -> None:
    served = list(TRACK_IDS[[5, 17, 42]]) + ["spotify:track:elsewhere"]
    save_toy_model(str(tmp_path / "small"), served, seed=1, warmup_users=None)
    policy = ModelPolicy("small", SavedModelBackend(str(tmp_path / "small")), {}, TRACK_IDS)
    lists = policy.recommend(_requests(3, k=7))
    assert lists.tracks.shape == (3, 7)
    for row in lists.tracks:
        assert set(row[row >= 0]) == {5, 17, 42}
        assert (row[4:] == -1).all()  # only 4 tracks in the toy: 3 padded slots
    np.testing.assert_array_equal(lists.propensities, np.ones((3, 7)))


def test_model_policy_splits_more_rows_than_max_rows(toy_backend) -> None:
    calls = []

    class Counting:
        export_dir = toy_backend.export_dir
        signature_names = toy_backend.signature_names
        signature_defs = toy_backend.signature_defs

        def predict(self, name, inputs):
            calls.append(len(inputs["user_id"]))
            return toy_backend.predict(name, inputs)

    n = 2 * policies.MAX_ROWS + 52
    lists = ModelPolicy("toy", Counting(), {}, TRACK_IDS).recommend(_requests(n, k=3))
    assert len(calls) == 3 and max(calls) <= policies.MAX_ROWS and sum(calls) == n
    # Every row is answered for its own listener (user ids cycle over 7).
    np.testing.assert_array_equal(lists.tracks, np.tile(_direct(toy_backend, _requests(7, k=3)),
                                                        (n // 7 + 1, 1))[:n])


# -- model policies over a backend with `recommend` ------------------------------------------


class FakeRecommendBackend:
    """`recommend` with crossfade's inputs and outputs; answers planted lists."""

    export_dir = "fake-export"
    signature_names = {signatures.RECOMMEND}

    def __init__(self, outputs=("track_ids", "scores", "propensities")) -> None:
        inputs = ("user_id", "recent_track_ids", "timestamp", "platform", "k",
                  *signatures.CONTROL_INPUTS)
        self.signature_defs = {signatures.RECOMMEND: SimpleNamespace(
            inputs=dict.fromkeys(inputs), outputs=dict.fromkeys(outputs))}
        self.calls = []

    def predict(self, name, inputs):
        self.calls.append((name, inputs))
        n, k = len(inputs["user_id"]), int(inputs["k"][0])
        ids = np.array([[TRACK_IDS[(r + j) % len(TRACK_IDS)].encode() for j in range(k)]
                        for r in range(n)], dtype=object)
        return {"track_ids": ids, "propensities": np.full((n, k), 0.25, np.float32)}


def test_model_policy_sends_controls_and_per_row_seeds_to_recommend() -> None:
    backend = FakeRecommendBackend()
    policy = ModelPolicy("m", backend, {"explore": 0.2}, TRACK_IDS, seed=4)
    lists = policy.recommend(_requests(5, k=3, day=2))
    policy.recommend(_requests(5, k=3, day=3))
    (name, day2), (_, day3) = backend.calls
    assert name == signatures.RECOMMEND
    np.testing.assert_allclose(day2["explore"], 0.2)
    np.testing.assert_allclose(day2["diversity"], 0.0)
    assert len(set(day2["seed"].tolist())) == 5
    assert not set(day2["seed"].tolist()) & set(day3["seed"].tolist())
    np.testing.assert_array_equal(lists.tracks, [[r, r + 1, r + 2] for r in range(5)])
    np.testing.assert_allclose(lists.propensities, 0.25)


def test_model_policy_refuses_a_recommend_without_propensities() -> None:
    with pytest.raises(PolicyError, match=r"lacks \['propensities'\]; not a crossfade export"):
        ModelPolicy("m", FakeRecommendBackend(outputs=("track_ids",)), {}, TRACK_IDS)

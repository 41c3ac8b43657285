"""Off-policy estimation: target slot probabilities on planted lists, and the whole estimate from
an exploring (random) logger, whose per-slot SNIPS for a random target is exact."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from crossfade.components import testing_simulation
from crossfade.components.simulation import experiment
from crossfade.components.simulation.policies import (
    ChartPolicy,
    ModelPolicy,
    PolicyError,
    RandomPolicy,
    Requests,
)
from crossfade.components.simulation.simulated_data import SimulatedData
from crossfade.pipeline.simulation import estimate
from crossfade.serving import signatures

_MICRO = testing_simulation.MICRO


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> SimulatedData:
    return SimulatedData.load(testing_simulation.micro_folder(tmp_path_factory, _MICRO))


def _requests(n: int, k: int, day: int = 2) -> Requests:
    return Requests(day=day, users=np.arange(n),
                    user_ids=np.array([f"u{i}" for i in range(n)], dtype=object),
                    recent=np.full((n, 2), -1), timestamps=np.zeros(n, np.int64),
                    platforms=np.array(["web"] * n, dtype=object), k=k)


def test_random_target_gives_each_filled_slot_one_over_the_remaining_tracks() -> None:
    release_day = np.array([-3, 0, 1, 2, 5, 9, -1])  # 5 released by day 2
    logged = np.array([[0, 3, -1], [6, 1, 2]])
    pi = estimate.target_probabilities(RandomPolicy(release_day), _requests(2, 3), logged)
    np.testing.assert_allclose(pi, [[1 / 5, 1 / 4, 0.0], [1 / 5, 1 / 4, 1 / 3]])


def test_deterministic_target_gives_one_where_it_shows_the_logged_track() -> None:
    logged = np.array([[5, 7, -1], [6, 6, 7], [5, 6, 7]])
    pi = estimate.target_probabilities(ChartPolicy(np.array([5, 6, 7])), _requests(3, 3),
                                       logged)
    np.testing.assert_array_equal(pi, [[1, 0, 0], [0, 1, 1], [1, 1, 1]])


class _RecommendBackend:
    """Just enough of an export with crossfade's `recommend` to build a ModelPolicy."""

    export_dir = "fake-export"
    signature_names = {signatures.RECOMMEND}
    signature_defs = {signatures.RECOMMEND: SimpleNamespace(
        inputs=dict.fromkeys(signatures.CONTROL_INPUTS),
        outputs=dict.fromkeys(("track_ids", "propensities")))}

    def predict(self, name, inputs):
        raise AssertionError("an exploring target must not be asked")


def test_an_exploring_model_target_is_refused() -> None:
    policy = ModelPolicy("model:explore=0.2", _RecommendBackend(), {"explore": 0.2},
                         np.array(["t0", "t1"], dtype=object))
    with pytest.raises(PolicyError, match="target model:explore=0.2: an exploring target"):
        estimate.target_probabilities(policy, _requests(1, 2), np.array([[0, 1]]))


class _RandomLogger:
    """An exploring logging policy: random lists (another seed than the target) with their
    per-slot propensities."""

    name, source = "random-logger", "test"

    def __init__(self, release_day: np.ndarray) -> None:
        self._random = RandomPolicy(release_day, seed=99)

    def recommend(self, requests: Requests):
        return self._random.recommend(requests)


@pytest.fixture(scope="module")
def estimated(data):
    settings = experiment.SimulationSettings(days=3, k=10)
    release_day = data.world.catalogue.release_day
    targets = [RandomPolicy(release_day, seed=0), ChartPolicy(data.chart)]
    entry, arms = estimate.estimate(data, _RandomLogger(release_day), targets, settings)
    return entry, arms


def test_estimate_entry_has_the_documented_keys(estimated) -> None:
    entry, arms = estimated
    assert set(entry) == {"logging_policy", "estimator", "logged_stream_rate", "targets"}
    assert entry["logging_policy"] == "random-logger"
    assert [row["policy"] for row in entry["targets"]] == ["random", "chart"]
    for row in entry["targets"]:
        assert set(row) == {"policy", "on_policy", "ips", "snips", "effective_sample_size",
                            "snips_unclipped", "unclipped_effective_sample_size",
                            "snips_pooled", "matched", "num_samples",
                            "unsupported_positions", "per_list_effective_sample_size"}
    assert [arm.policy.name for arm in arms] == ["random-logger", "random", "chart"]
    assert all(len(arm.logs) == 3 for arm in arms)


def test_snips_of_a_random_target_from_random_logs_is_the_logged_rate(estimated) -> None:
    entry, arms = estimated
    random_row = entry["targets"][0]
    logger = arms[0]
    slots = sum(int((log.tracks >= 0).sum()) for log in logger.logs)
    streams = sum(int(log.responses.streamed.sum()) for log in logger.logs)
    # pi = mu in every slot: every weight is 1.
    assert random_row["num_samples"] == random_row["matched"] == slots
    # Equal weights: each position's ESS is its number of slots (the smallest is reported).
    k = logger.logs[0].tracks.shape[1]
    assert random_row["effective_sample_size"] == pytest.approx(slots / k)
    assert random_row["unclipped_effective_sample_size"] == pytest.approx(slots / k)
    assert random_row["unsupported_positions"] == []
    assert random_row["per_list_effective_sample_size"] == pytest.approx(
        sum(len(log.users) for log in logger.logs))
    assert random_row["snips_pooled"] == pytest.approx(streams / slots)
    per_position = np.mean([sum(int(log.responses.streamed[:, j].sum()) for log in logger.logs)
                            / (slots / k) for j in range(k)])
    assert random_row["snips"] == pytest.approx(per_position)  # weights 1: no clipping
    assert random_row["snips_unclipped"] == pytest.approx(per_position)
    assert random_row["ips"] == pytest.approx(streams / slots)
    assert entry["logged_stream_rate"] == pytest.approx(streams / slots)
    # Its on-policy value is another random draw of the same distribution: close.
    assert random_row["on_policy"] == pytest.approx(random_row["snips"], abs=0.05)
    assert random_row["on_policy"] != random_row["snips"]


def test_a_deterministic_target_matches_where_the_logger_showed_its_track(data,
                                                                          estimated) -> None:
    entry, arms = estimated
    chart_row = entry["targets"][1]
    top = data.chart[:10]
    matched = sum(int((log.tracks == top).sum()) for log in arms[0].logs)
    assert chart_row["matched"] == matched > 0
    chart_arm = arms[2]
    on_policy = (sum(int(log.responses.streamed.sum()) for log in chart_arm.logs)
                 / sum(int((log.tracks >= 0).sum()) for log in chart_arm.logs))
    assert chart_row["on_policy"] == pytest.approx(on_policy)


class _AskedLogger(_RandomLogger):
    asked = False

    def recommend(self, requests: Requests):
        self.asked = True
        return super().recommend(requests)


def test_an_exploring_target_is_refused_before_the_first_simulated_day(data) -> None:
    exploring = ModelPolicy("model:explore=0.2", _RecommendBackend(), {"explore": 0.2},
                            data.world.catalogue.track_id)
    logger = _AskedLogger(data.world.catalogue.release_day)
    with pytest.raises(PolicyError, match="an exploring target"):
        estimate.estimate(data, logger, [ChartPolicy(data.chart), exploring],
                          experiment.SimulationSettings(users=5))
    assert not logger.asked


def test_clipping_caps_one_explored_match_that_would_decide_a_position() -> None:
    # Position 0: four agreeing slots (mu 0.8, reward 1) and one explored match (mu 0.001,
    # reward 0); position 1: two agreeing slots with reward 0 and 1.
    r = np.array([[1, 0], [1, 1], [1, 0], [1, 0], [0, 0]], dtype=np.float64)
    pi = np.array([[1, 1], [1, 1], [1, 0], [1, 0], [1, 0]], dtype=np.float64)
    mu = np.array([[0.8, 0.8], [0.8, 0.8], [0.8, 0.8], [0.8, 0.8], [0.001, 0.8]])
    filled = np.ones_like(r, dtype=bool)
    value, ess, unsupported = estimate._per_position_snips(r, pi, mu, filled)
    heavy = 1000.0
    assert value == pytest.approx((4 * 1.25 / (4 * 1.25 + heavy) + 0.5) / 2)
    assert ess < 1.1 and unsupported == []
    value, ess, _ = estimate._per_position_snips(r, pi, mu, filled, clip=10.0)
    assert value == pytest.approx((5.0 / 15.0 + 0.5) / 2)
    assert ess == pytest.approx(min(15.0 ** 2 / (4 * 1.25 ** 2 + 100), 2.0))
    no_match = estimate._per_position_snips(r, np.zeros_like(pi), mu, filled)
    assert np.isnan(no_match[0]) and no_match[2] == [0, 1]

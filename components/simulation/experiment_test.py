"""The simulated A/B test on a micro world: requests, shared listeners, common random numbers and
each arm's own listening state."""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from crossfade.components import testing_simulation
from crossfade.components.listening_data.simulator.vocabulary import COUNTRY_OFFSET_S, PLATFORMS
from crossfade.components.simulation import experiment
from crossfade.components.simulation.policies import ChartPolicy, RandomPolicy
from crossfade.components.simulation.simulated_data import SimulatedData

_MICRO = testing_simulation.MICRO


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> SimulatedData:
    return SimulatedData.load(testing_simulation.micro_folder(tmp_path_factory, _MICRO))


def _quiet(text: str) -> None:
    pass


def test_with_streams_puts_the_days_streams_first_last_stream_first() -> None:
    recent = np.array([[5, 6, -1, -1], [5, 6, 7, 8], [9, -1, -1, -1]])
    tracks = np.array([[1, 2, 3], [1, 2, 3], [1, 2, -1]])
    streamed = np.array([[True, False, True], [False, True, False], [False, False, False]])
    np.testing.assert_array_equal(experiment._with_streams(recent, tracks, streamed),
                                  [[3, 1, 5, 6], [2, 5, 6, 7], [9, -1, -1, -1]])


def test_requests_are_each_listeners_peak_hour_on_the_day_in_utc(data) -> None:
    users = data.humans
    day = data.num_days
    requests = experiment.requests_for(data, users, day, data.recent, k=7)
    w = data.world
    dates = {dt.datetime.fromtimestamp(int(t), dt.timezone.utc).date()
             for t in requests.timestamps}
    assert dates == {w.start + dt.timedelta(days=day)}
    midnight = dt.datetime.combine(w.start + dt.timedelta(days=day), dt.time(),
                                   tzinfo=dt.timezone.utc).timestamp()
    local = (requests.timestamps - midnight + COUNTRY_OFFSET_S[w.users.country[users]]) % 86_400
    hours = w.users.peak_hour[users] % 24
    # Whole seconds: the local time is the peak hour to within one second (or across midnight).
    gap = np.abs(local / 3600.0 - hours)
    assert (np.minimum(gap, 24 - gap) < 1 / 3600).all()
    assert set(requests.platforms) <= set(PLATFORMS)
    mix = np.diff(w.users.platform_cdf[users], axis=1, prepend=0.0)
    assert list(requests.platforms) == [PLATFORMS[i] for i in np.argmax(mix, axis=1)]
    np.testing.assert_array_equal(requests.user_ids, w.users.user_id[users])
    np.testing.assert_array_equal(requests.recent, data.recent[users])
    assert (requests.day, requests.k) == (day, 7)


def test_arms_serve_the_same_listeners_on_consecutive_days(data) -> None:
    settings = experiment.SimulationSettings(users=50, days=2, k=5)
    policies = [ChartPolicy(data.chart), RandomPolicy(data.world.catalogue.release_day)]
    arms = experiment.run(data, policies, settings, progress=_quiet)
    for arm in arms:
        assert [log.day for log in arm.logs] == [data.num_days, data.num_days + 1]
        for log in arm.logs:
            np.testing.assert_array_equal(log.users, data.humans[:50])
            assert log.tracks.shape == (50, 5)
    assert not np.array_equal(arms[0].logs[0].tracks, arms[1].logs[0].tracks)


def test_the_same_policy_in_two_arms_gets_identical_responses(data) -> None:
    settings = experiment.SimulationSettings(days=2, k=6)
    twice = experiment.run(data, [ChartPolicy(data.chart), ChartPolicy(data.chart)], settings,
                        progress=_quiet)
    for a, b in zip(twice[0].logs, twice[1].logs, strict=True):
        for name in ("heard", "streamed", "skipped", "ms_played", "liked"):
            np.testing.assert_array_equal(getattr(a.responses, name),
                                          getattr(b.responses, name))
    np.testing.assert_array_equal(twice[0].recent, twice[1].recent)


def test_an_arms_responses_do_not_depend_on_the_other_arms(data) -> None:
    settings = experiment.SimulationSettings(days=2, k=6)
    chart = ChartPolicy(data.chart)
    alone = experiment.run(data, [chart], settings, progress=_quiet)[0]
    beside = experiment.run(data, [RandomPolicy(data.world.catalogue.release_day), chart],
                         settings, progress=_quiet)[1]
    for a, b in zip(alone.logs, beside.logs, strict=True):
        np.testing.assert_array_equal(a.responses.ms_played, b.responses.ms_played)
    another_seed = experiment.run(data, [chart], dataclasses.replace(settings, seed=1),
                               progress=_quiet)[0]
    assert not np.array_equal(alone.logs[0].responses.ms_played,
                              another_seed.logs[0].responses.ms_played)


def test_next_query_carries_the_days_streams_most_recent_first(data) -> None:
    settings = experiment.SimulationSettings(k=8)
    arm = experiment.new_arm(data, RandomPolicy(data.world.catalogue.release_day), settings)
    users = data.humans
    before = data.recent.copy()
    first = experiment.run_day(data, arm, users, data.num_days, settings.k)
    width = data.recent.shape[1]
    streams = 0
    for row, user in enumerate(users):
        new = first.tracks[row][first.responses.streamed[row]][::-1].tolist()
        old = [t for t in before[user] if t >= 0]
        expected = (new + old)[:width]
        assert arm.recent[user].tolist() == expected + [-1] * (width - len(expected))
        streams += len(new)
    assert streams > 0
    np.testing.assert_array_equal(data.recent, before)  # the data's own state is untouched
    second = experiment.run_day(data, arm, users, data.num_days + 1, settings.k)
    after_first = experiment._with_streams(before[users], first.tracks, first.responses.streamed)
    np.testing.assert_array_equal(second.requests.recent, after_first)


@pytest.mark.parametrize("changes, message", [
    ({"users": 0}, "users must be at least 1"),
    ({"days": 0}, "days must be at least 1"),
    ({"k": 0}, r"k must be in \[1, 100\]"),
    ({"k": 101}, r"k must be in \[1, 100\]"),
])
def test_settings_refuse_out_of_range_values(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        experiment.SimulationSettings(**changes)

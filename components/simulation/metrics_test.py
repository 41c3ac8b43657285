"""summarise on planted day logs with hand-computed metrics, and NaN where a metric is undefined."""
from __future__ import annotations

import math

import numpy as np
import pytest

from crossfade.components import testing_simulation
from crossfade.components.listening_data.simulator.environment import Responses
from crossfade.components.listening_data.simulator.presets import resolve_preset
from crossfade.components.listening_data.simulator.world import World, build_world
from crossfade.components.simulation.metrics import METRICS, DayLog, metric_table, summarise

_MICRO = testing_simulation.MICRO


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(resolve_preset(_MICRO), seed=3)


@pytest.fixture(scope="module")
def tracks(world):
    """A new release (released on day 2) and two old tracks of two other genres."""
    cat = world.catalogue
    new = int(np.flatnonzero(cat.release_day == 2)[0])
    old = np.flatnonzero((cat.release_day < -100) & (cat.genre != cat.genre[new]))
    other = old[cat.genre[old] != cat.genre[old[0]]]
    return new, int(old[0]), int(other[0])


def _log(day: int, users, tracks, ms, skipped, liked=None) -> DayLog:
    tracks, ms = np.array(tracks), np.array(ms, dtype=np.int64)
    heard = ms > 0
    liked = np.zeros(tracks.shape, bool) if liked is None else np.array(liked)
    responses = Responses(heard=heard, streamed=ms >= 30_000, skipped=np.array(skipped),
                          ms_played=ms, liked=liked,
                          skip_probability=np.where(heard, 0.5, np.nan))
    return DayLog(day, np.array(users), tracks, np.ones(tracks.shape), responses, None)


def _planted(tracks, day: int = 5) -> DayLog:
    new, a, b = tracks
    return _log(day, [0, 1],
                tracks=[[a, new, -1], [b, new, a]],
                ms=[[200_000, 10_000, 0], [180_000, 60_000, 0]],
                skipped=[[False, True, False], [False, False, False]],
                liked=[[True, False, False], [False, False, False]])


def test_summarise_planted_rates(world, tracks) -> None:
    s = summarise(world, [_planted(tracks)])
    # 5 slots hold a track, 4 were heard, 3 streamed, 1 skipped; 450 s over 2 sessions.
    assert s["stream_rate"] == pytest.approx(3 / 5)
    assert s["skip_rate"] == pytest.approx(1 / 4)
    assert s["minutes_per_session"] == pytest.approx(450 / 60 / 2)
    assert s["likes_per_session"] == pytest.approx(1 / 2)
    assert s["coverage"] == pytest.approx(3 / 400)
    # Streams: a (old), b (old), new (released day 2, 3 days before day 5).
    assert s["new_release_share"] == pytest.approx(1 / 3)


def test_summarise_planted_consumption_diversity(world, tracks) -> None:
    new, a, b = tracks
    s = summarise(world, [_planted(tracks)])
    vec = world.catalogue.vec.astype(np.float64)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    # Listener 0 streamed a (0 bits, GS 1); listener 1 streamed b and new, two genres.
    assert s["genre_entropy"] == pytest.approx(0.5)
    assert s["intra_list_diversity"] == pytest.approx(1 - unit[b] @ unit[new])
    gs_1 = np.linalg.norm(unit[b] + unit[new]) / 2
    assert s["generalist_specialist"] == pytest.approx((1 + gs_1) / 2)


def test_new_release_share_uses_each_days_age(world, tracks) -> None:
    new, a, _ = tracks
    fresh = _log(5, [0], [[new, a]], [[40_000, 40_000]], [[False, False]])
    stale = _log(16, [0], [[new, a]], [[40_000, 40_000]], [[False, False]])  # 14 days old
    assert summarise(world, [fresh])["new_release_share"] == pytest.approx(1 / 2)
    assert summarise(world, [stale])["new_release_share"] == 0.0
    assert summarise(world, [fresh, stale])["new_release_share"] == pytest.approx(1 / 4)


def test_a_release_before_its_day_is_not_a_new_release(world, tracks) -> None:
    new, a, _ = tracks
    early = _log(1, [0], [[new, a]], [[40_000, 40_000]], [[False, False]])
    assert summarise(world, [early])["new_release_share"] == 0.0


def test_undefined_metrics_are_nan(world, tracks) -> None:
    new, a, _ = tracks
    unheard = _log(5, [0, 1], [[new, a], [a, -1]], [[0, 0], [0, 0]],
                   [[False, False], [False, False]])
    s = summarise(world, [unheard])
    assert s["stream_rate"] == 0.0 and s["minutes_per_session"] == 0.0
    assert s["coverage"] == pytest.approx(2 / 400)
    for name in ("skip_rate", "new_release_share", "intra_list_diversity", "genre_entropy",
                 "generalist_specialist"):
        assert math.isnan(s[name]), name
    empty = _log(5, [0], [[-1, -1]], [[0, 0]], [[False, False]])
    assert math.isnan(summarise(world, [empty])["stream_rate"])


def test_summary_has_every_metric_of_the_table(world, tracks) -> None:
    assert set(summarise(world, [_planted(tracks)])) == {name for name, *_ in METRICS}
    assert [m["name"] for m in metric_table()] == [name for name, *_ in METRICS]

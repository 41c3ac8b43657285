"""Tests of the simulated listeners as an environment: determinism, the documented equations on
planted cases, and satiation and discovery switched on and off."""

from __future__ import annotations

import numpy as np
import pytest

from crossfade.components import testing_simulation
from crossfade.components.listening_data.simulator import responses
from crossfade.components.listening_data.simulator.environment import (
    ListeningEnvironment,
    ListeningParameters,
    LongTermEffects,
)
from crossfade.components.listening_data.simulator.presets import resolve_preset
from crossfade.components.listening_data.simulator.world import World, build_world

_MICRO = testing_simulation.MICRO
_STAY = ListeningParameters(leave_probability=0.0, leave_after_skip=0.0)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(resolve_preset(_MICRO), seed=5)


def _back_catalogue(world: World) -> np.ndarray:
    return np.flatnonzero(world.catalogue.release_day < 0)


def _z(world: World, user: int, track: int) -> float:
    pools = world.pools
    # The environment keeps tastes in float64 (discovery moves them), the world in float32.
    return float(responses.standardised_affinity(
        world.users.vec[[user]], world.catalogue.vec[[track]], pools.aff_mean, pools.aff_std
    )[0])


def test_same_seed_and_calls_give_the_same_responses_and_another_seed_differs(world) -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 100, 50)
    tracks = rng.choice(_back_catalogue(world), (50, 10))

    def run(seed: int) -> list[np.ndarray]:
        env = ListeningEnvironment(world, seed=seed)
        return [env.respond(day, users, tracks).ms_played for day in (0, 0, 2)]

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_skip_probability_is_the_documented_equation_without_long_term_effects(world) -> None:
    env = ListeningEnvironment(world, LongTermEffects.off(), _STAY, seed=0)
    user, tracks = 3, _back_catalogue(world)[:4]
    out = env.respond(0, np.array([user]), tracks[None, :])
    bias = world.preset.skip_bias
    for pos, track in enumerate(tracks):
        logit = bias - 0.95 * _z(world, user, track) - 0.8 * (pos == 0)
        assert out.skip_probability[0, pos] == pytest.approx(1 / (1 + np.exp(-logit)), rel=1e-6)


def test_skip_and_like_rates_match_their_probabilities(world) -> None:
    env = ListeningEnvironment(world, LongTermEffects.off(), _STAY, seed=0)
    n, user, track = 40_000, 7, int(_back_catalogue(world)[11])
    out = env.respond(0, np.full(n, user), np.full((n, 2), track))
    p = out.skip_probability[0, 1]
    se = np.sqrt(p * (1 - p) / n)
    assert abs(out.skipped[:, 1].mean() - p) < 4 * se
    z = _z(world, user, track)
    like = 1 / (1 + np.exp(-(responses.LIKE_BIAS + responses.LIKE_AFFINITY_WEIGHT * z)))
    streamed = out.streamed[:, 1]
    rate = out.liked[streamed, 1].mean()
    assert abs(rate - like) < 4 * np.sqrt(like * (1 - like) / streamed.sum())
    assert not out.liked[~out.streamed].any()
    assert (out.ms_played[out.streamed] >= responses.SKIP_THRESHOLD_MS).all()
    assert (out.ms_played[~out.skipped] >= responses.SKIP_THRESHOLD_MS).all()


def test_listeners_leave_and_never_come_back_within_a_list(world) -> None:
    env = ListeningEnvironment(world, LongTermEffects.off(), seed=0)
    tracks = np.tile(_back_catalogue(world)[:10], (2_000, 1))
    out = env.respond(0, np.arange(2_000) % 100, tracks)
    assert out.heard[:, 0].all()
    assert not (out.heard[:, 1:] & ~out.heard[:, :-1]).any()
    assert 0.3 < out.heard[:, -1].mean() < 0.9
    assert (out.ms_played[~out.heard] == 0).all()
    assert np.isnan(out.skip_probability[~out.heard]).all()
    stay = ListeningEnvironment(world, LongTermEffects.off(), _STAY, seed=0)
    assert stay.respond(0, np.arange(100), tracks[:100]).heard.all()


def test_empty_slots_are_not_heard_and_unreleased_tracks_are_skipped(world) -> None:
    cat = world.catalogue
    future = int(np.flatnonzero(cat.release_day == cat.release_day.max())[0])
    env = ListeningEnvironment(world, LongTermEffects.off(), _STAY)
    out = env.respond(0, np.array([1]), np.array([[future, -1, int(_back_catalogue(world)[0])]]))
    assert out.skipped[0, 0] and out.ms_played[0, 0] == 0 and not out.streamed[0, 0]
    assert not out.heard[0, 1] and out.heard[0, 2]


def test_satiation_raises_skips_of_a_repeated_artist_and_fades_with_its_half_life(world) -> None:
    cat = world.catalogue
    artist = int(np.argmax(cat.artist_size))
    tracks = np.flatnonzero(cat.track_artist == artist)[:5]
    users = np.arange(100)
    on = ListeningEnvironment(world, LongTermEffects(discovery=False), _STAY, seed=0)
    off = ListeningEnvironment(world, LongTermEffects.off(), _STAY, seed=0)
    lists = np.tile(tracks, (100, 1))
    a, b = on.respond(0, users, lists), off.respond(0, users, lists)
    # Position 0 has no earlier stream; later positions count the list's own streams.
    np.testing.assert_allclose(a.skip_probability[:, 0], b.skip_probability[:, 0])
    assert (a.skip_probability[:, 1:] >= b.skip_probability[:, 1:] - 1e-12).all()
    assert a.skip_probability[:, -1].mean() > b.skip_probability[:, -1].mean() + 0.05

    e = on.effects
    probe_user, probe_track = users[:1], tracks[:1]
    streams = a.streamed[0].sum()
    same_genre = (cat.genre[tracks][a.streamed[0]] == cat.genre[probe_track[0]]).sum()
    for day, factor in ((3, 0.5), (9, 0.125)):
        on._artist_counts.advance_to(day)
        on._genre_counts.advance_to(day)
        expected = e.artist_satiation * np.log1p(streams * factor) + e.genre_satiation * np.log1p(
            same_genre * factor / e.genre_scale
        )
        assert on.satiation(probe_user, probe_track)[0] == pytest.approx(expected, rel=1e-9)
    assert (off.satiation(users, lists[:, 0]) == 0).all()


def test_discovery_moves_taste_towards_a_new_artist_only(world) -> None:
    cat = world.catalogue
    user = 4
    known_track = int(_back_catalogue(world)[0])
    new_track = int(np.flatnonzero(cat.track_artist != cat.track_artist[known_track])[0])
    history = (np.array([user]), np.array([known_track]))
    always = ListeningParameters(leave_probability=0.0, leave_after_skip=0.0)
    env = ListeningEnvironment(world, LongTermEffects(satiation=False), always, history=history)
    before = env.taste[user].copy()
    for day in range(50):  # until the listener streams each track at least once
        out = env.respond(day, np.array([user]), np.array([[known_track]]))
        if out.streamed.any():
            break
    np.testing.assert_array_equal(env.taste[user], before)  # a known artist: no move
    for day in range(50, 100):
        out = env.respond(day, np.array([user]), np.array([[new_track]]))
        if out.streamed.any():
            break
    assert out.streamed.any()
    eta = env.effects.discovery_rate
    np.testing.assert_allclose(env.taste[user], before + eta * (cat.vec[new_track] - before))
    moved = env.taste[user].copy()
    env.respond(100, np.array([user, user]), np.array([[new_track], [new_track]]))
    np.testing.assert_array_equal(env.taste[user], moved)  # discovered once
    off = ListeningEnvironment(world, LongTermEffects.off(), always)
    for day in range(20):
        off.respond(day, np.array([user]), np.array([[new_track]]))
    np.testing.assert_array_equal(off.taste[user], world.users.vec[user])


@pytest.mark.parametrize(
    "users,tracks,match",
    [
        (np.array([0]), np.array([1, 2]), "users must be"),
        (np.array([10_000]), np.array([[1]]), "user index"),
        (np.array([0]), np.array([[400]]), "track index"),
        (np.array([0]), np.array([[-2]]), "track index"),
    ],
)
def test_bad_requests_are_rejected(world, users, tracks, match) -> None:
    with pytest.raises(ValueError, match=match):
        ListeningEnvironment(world).respond(0, users, tracks)


def test_days_must_not_go_backwards_and_parameters_are_checked(world) -> None:
    env = ListeningEnvironment(world)
    env.respond(3, np.array([0]), np.array([[1]]))
    with pytest.raises(ValueError, match="backwards"):
        env.respond(2, np.array([0]), np.array([[1]]))
    with pytest.raises(ValueError, match="leave_probability"):
        ListeningParameters(leave_probability=1.5)
    with pytest.raises(ValueError, match="discovery_rate"):
        LongTermEffects(discovery_rate=-0.1)


def test_a_requests_responses_do_not_depend_on_the_rest_of_the_batch(world) -> None:
    """Common random numbers: the same request answered beside different neighbours (who
    leave at other positions, or have empty slots) gets the same responses."""
    tracks = np.tile(_back_catalogue(world)[:10], (50, 1))
    users = np.arange(50)
    a = ListeningEnvironment(world, LongTermEffects.off(), seed=4).respond(0, users, tracks)
    other = tracks.copy()
    other[1:, 2:] = -1  # every other request ends early
    b = ListeningEnvironment(world, LongTermEffects.off(), seed=4).respond(0, users, other)
    for field in ("heard", "streamed", "skipped", "ms_played", "liked"):
        np.testing.assert_array_equal(getattr(a, field)[0], getattr(b, field)[0], field)

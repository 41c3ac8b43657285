"""One simulated day of human listening: sessions, the next-track channels, responses, times.

A session starts at an hour drawn from the user's daily rhythm (``peak_hour``,
``hour_spread``) or the global diurnal curve (local time, converted to UTC by the user's
country), on a platform drawn from the user's ``platform_mix``; its length is geometric around
the user's mean. Inside a session each play's track comes from one channel (`_CHANNELS_*`):
the user's pool (reweighted by how well a track's energy suits the local hour), a recent
release of one of the user's genres, a globally popular track, or - for coherence between
consecutive plays - another track by the previous artist, the next track of its album, or a
latent-space neighbour. Skips and play lengths follow the shared response model
(`responses`); timestamps are play *end* times and one user's sessions never overlap.

The steps below draw from one generator in a fixed order: reordering them changes every file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.simulator import responses
from crossfade.components.listening_data.simulator.plays import DayPlays, empty_day
from crossfade.components.listening_data.simulator.sampling import (
    group_cdf,
    row_cdf,
    sample_groups,
    sample_rows,
    stream_rng,
)
from crossfade.components.listening_data.simulator.vocabulary import (
    COUNTRIES,
    COUNTRY_OFFSET_S,
    COUNTRY_SHARE,
    DESKTOP,
    DIURNAL,
    GENRES,
    IOS,
    PLATFORMS,
    REASON_END_INDEX,
    REASON_START_INDEX,
    SPEAKER,
    WEEKDAY_RATE,
)
from crossfade.components.listening_data.simulator.world import World

# Channels for picking the next track.
_POOL, _NEW, _POP, _ARTIST, _ALBUM, _NEIGH = range(6)
_CH_FIRST = np.array([0.82, 0.06, 0.12, 0.0, 0.0, 0.0])
_CH_ORDERED = np.array([0.46, 0.04, 0.06, 0.16, 0.10, 0.18])
_CH_SHUFFLE = np.array([0.68, 0.05, 0.07, 0.07, 0.02, 0.11])
_RS, _RE = REASON_START_INDEX, REASON_END_INDEX


def energy_target(local_hour: np.ndarray, weekday: int) -> np.ndarray:
    """The track energy that suits a local hour: calm at night, energetic at weekend nights."""
    h = local_hour
    target = np.select(
        [h < 5, h < 9, h < 17, h < 21], [0.3, 0.62, 0.55, 0.65], default=0.45
    )
    # Friday and Saturday nights (plus the small hours after) are party time.
    party = ((weekday in (4, 5)) & (h >= 20)) | ((weekday in (5, 6)) & (h < 3))
    return np.where(party, 0.82, target)


def _serialise_sessions(
    user: np.ndarray, start: np.ndarray, duration: np.ndarray, pause: np.ndarray
) -> np.ndarray:
    """Delay sessions so that one user's sessions of a day never overlap.

    Within a user, sorted by start, the actual start is ``x_i = max(s_i, x_{i-1} + d_{i-1} +
    pause)``; with ``c_i`` the prefix sum of ``d + pause`` this is a running maximum of
    ``s_i - c_i``, computed for all users at once by lifting each user's values above the
    previous user's.
    """
    order = np.lexsort((start, user))
    u, s, d = user[order], start[order], duration[order] + pause[order]
    new_user = np.r_[True, u[1:] != u[:-1]]
    group = np.cumsum(new_user) - 1
    cs = np.cumsum(d)
    c = cs - d - (cs - d)[np.flatnonzero(new_user)][group]
    lift = group * 1e7
    y = np.maximum.accumulate(s - c + lift) - lift
    out = np.empty_like(start)
    out[order] = y + c
    return out


@dataclass
class _Sessions:
    """One day's sessions (per session) and their plays laid out session-major (per play)."""

    user: np.ndarray              # per session
    local_hour: np.ndarray
    start_s: np.ndarray           # UTC seconds of the day, before serialisation
    platform: np.ndarray
    shuffle: np.ndarray
    offline: np.ndarray
    country: np.ndarray
    length: np.ndarray
    energy: np.ndarray            # energy target of the session's local hour
    sess: np.ndarray              # per play: its session
    first: np.ndarray             # per session: index of its first play
    pos: np.ndarray               # per play: position in its session

    @property
    def play_user(self) -> np.ndarray:
        return self.user[self.sess]


def _draw_sessions(rng: np.random.Generator, world: World, weekday: int) -> "_Sessions | None":
    users = world.users
    weekend = weekday >= 5
    hu = users.humans
    n_sess = rng.poisson(users.rate[hu] * WEEKDAY_RATE[weekday])
    su = np.repeat(hu, n_sess)
    n_sessions = len(su)
    if n_sessions == 0:
        return None
    use_peak = rng.random(n_sessions) < 0.6
    peak = users.peak_hour[su] + (0.8 if weekend else 0.0)
    h_peak = peak + rng.normal(0.0, 1.0, n_sessions) * users.hour_spread[su]
    h_glob = rng.choice(24, size=n_sessions, p=DIURNAL[int(weekend)]) + rng.random(n_sessions)
    local_h = np.where(use_peak, h_peak, h_glob) % 24.0
    start_s = (local_h * 3600.0 - COUNTRY_OFFSET_S[users.country[su]]) % 86400.0

    platform = (rng.random(n_sessions)[:, None] > users.platform_cdf[su]).sum(axis=1)
    platform = np.minimum(platform, len(PLATFORMS) - 1)
    mobile = platform <= IOS
    premium = users.premium[su]
    shuffle_p = np.where(~premium & mobile, 0.8, np.where(platform == SPEAKER, 0.2, 0.35))
    shuffle = rng.random(n_sessions) < shuffle_p
    offline = premium & mobile & (rng.random(n_sessions) < 0.06)
    country = np.where(
        rng.random(n_sessions) < 0.015,
        rng.choice(len(COUNTRIES), size=n_sessions, p=COUNTRY_SHARE),
        users.country[su],
    )
    mean_len = users.session_len[su] * np.select(
        [platform == DESKTOP, platform == SPEAKER], [1.3, 0.8], default=1.0
    )
    length = np.minimum(rng.geometric(1.0 / np.maximum(mean_len, 1.0)), np.ceil(6 * mean_len))
    length = length.astype(np.int64)

    n_plays = int(length.sum())
    sess = np.repeat(np.arange(n_sessions), length)
    first = np.r_[0, np.cumsum(length)[:-1]]
    return _Sessions(
        user=su, local_hour=local_h, start_s=start_s, platform=platform, shuffle=shuffle,
        offline=offline, country=country, length=length,
        energy=energy_target(local_h, weekday), sess=sess, first=first,
        pos=np.arange(n_plays) - first[sess],
    )


def _draw_channels(rng: np.random.Generator, s: _Sessions) -> np.ndarray:
    probs = np.where(
        (s.pos == 0)[:, None], _CH_FIRST[None, :],
        np.where(s.shuffle[s.sess][:, None], _CH_SHUFFLE[None, :], _CH_ORDERED[None, :]),
    )
    # Voice requests favour what is popular.
    speaker = s.platform[s.sess] == SPEAKER
    probs[speaker, _POP] *= 2.5
    probs /= probs.sum(axis=1, keepdims=True)
    channel = (rng.random(len(s.pos))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    return np.minimum(channel, _NEIGH)


def _draw_pool_tracks(
    rng: np.random.Generator, world: World, day: int, s: _Sessions
) -> np.ndarray:
    # Pool draws, reweighted by how well a track's energy suits the local hour
    # (sampling-importance-resampling over a few candidates): pool tracks are then chosen
    # with probability ~ pool weight x fit, so the hour of day carries signal.
    cat, pools, user = world.catalogue, world.pools, s.play_user
    n_plays = len(user)
    width = pools.width
    flat = pools.track.ravel()
    cands = np.stack(
        [
            flat[user * width + sample_rows(pools.cdf, width, user, rng.random(n_plays))]
            for _ in range(4)
        ],
        axis=1,
    )
    fit = -((cat.energy[cands] - s.energy[s.sess][:, None]) ** 2) / (2 * 0.15**2)
    fit = np.where(cat.release_day[cands] <= day, fit, -np.inf)
    pick = np.argmax(fit + rng.gumbel(size=fit.shape), axis=1)
    return np.where(
        np.isfinite(fit.max(axis=1)), cands[np.arange(n_plays), pick], pools.fallback[user]
    )


def _draw_new_releases(
    rng: np.random.Generator, world: World, day: int, user: np.ndarray, channel: np.ndarray,
    track: np.ndarray,
) -> None:
    """Sets ``track`` of the new-release channel's plays: a recent release of one of the
    user's genres, weighted by popularity and recency (in place)."""
    cat, users = world.catalogue, world.users
    age = day - cat.release_day
    recent = np.flatnonzero((cat.release_day >= 1) & (age >= 0) & (age < 14))
    is_new = channel == _NEW
    if not (len(recent) and is_new.any()):
        return
    order = np.argsort(cat.genre[recent], kind="stable")
    recent = recent[order]
    rg = cat.genre[recent]
    w = np.exp(cat.log_pop[recent] * 0.5 - age[recent] / 5.0)
    gcdf = group_cdf(w, rg)
    gstart = np.full(len(GENRES), -1)
    gsize = np.zeros(len(GENRES), dtype=np.int64)
    gs, gfirst, gcount = np.unique(rg, return_index=True, return_counts=True)
    gstart[gs], gsize[gs] = gfirst, gcount
    ni = np.flatnonzero(is_new)
    slot_cdf = row_cdf(users.slot_weight[user[ni]])
    slot = sample_rows(slot_cdf, 3, np.arange(len(ni)), rng.random(len(ni)))
    g = users.slots[user[ni], slot]
    has = gsize[g] > 0
    pick = sample_groups(
        gcdf, np.maximum(gstart, 0), np.maximum(gsize, 1), g[has], rng.random(int(has.sum()))
    )
    track[ni[has]] = recent[pick]


def _draw_continuations(
    rng: np.random.Generator, world: World, day: int, pos: np.ndarray, channel: np.ndarray,
    track: np.ndarray,
) -> None:
    """Sets ``track`` of the coherent channels (same artist, album, neighbour) in place.

    They depend on the previous track, so they are resolved position by position
    (vectorised over all sessions of the day).
    """
    cat, neigh = world.catalogue, world.neighbours
    u_seq = rng.random(len(pos))
    u_alb = rng.random(len(pos))
    seq = np.flatnonzero(channel >= _ARTIST)
    seq = seq[np.argsort(pos[seq], kind="stable")]
    bounds = np.searchsorted(pos[seq], np.arange(1, int(pos.max(initial=0)) + 2))
    n_tracks = len(cat.genre)
    for k in range(len(bounds) - 1):
        i = seq[bounds[k] : bounds[k + 1]]
        if len(i) == 0:
            continue
        prev = track[i - 1]
        ch = channel[i]
        by_artist = sample_groups(
            cat.artist_cdf, cat.artist_start, cat.artist_size, cat.track_artist[prev], u_seq[i]
        )
        nxt = np.minimum(prev + 1, n_tracks - 1)
        alb = cat.track_album[prev]
        in_order = (cat.track_album[nxt] == alb) & (u_alb[i] < 0.6)
        by_album = np.where(
            in_order, nxt,
            cat.album_start[alb] + (u_seq[i] * cat.album_size[alb]).astype(np.int64),
        )
        by_neigh = neigh[prev, (u_seq[i] * neigh.shape[1]).astype(np.int64)]
        cand = np.select([ch == _ARTIST, ch == _ALBUM], [by_artist, by_album], default=by_neigh)
        track[i] = np.where(cat.release_day[cand] <= day, cand, track[i])


def _draw_tracks(rng: np.random.Generator, world: World, day: int, s: _Sessions) -> np.ndarray:
    channel = _draw_channels(rng, s)
    track = _draw_pool_tracks(rng, world, day, s)
    _draw_new_releases(rng, world, day, s.play_user, channel, track)
    is_pop = channel == _POP
    pop_pick = np.searchsorted(world.pop_cdf, rng.random(int(is_pop.sum())), side="right")
    track[is_pop] = world.pop_tracks[np.minimum(pop_pick, len(world.pop_tracks) - 1)]
    _draw_continuations(rng, world, day, s.pos, channel, track)
    return track


def _draw_reasons(
    rng: np.random.Generator, s: _Sessions, skipped: np.ndarray, stop_early: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(reason_start, reason_end)`` of every play, from how it and the previous one ended."""
    n_plays = len(s.pos)
    last = s.pos == s.length[s.sess] - 1
    reason_end = np.where(
        skipped, _RE["fwdbtn"],
        np.where(
            stop_early,
            np.where(last & (rng.random(n_plays) < 0.35), _RE["logout"], _RE["endplay"]),
            _RE["trackdone"],
        ),
    )
    prev_end = np.r_[-1, reason_end[:-1]]
    u_rs = rng.random(n_plays)
    first_reason = np.where(
        s.platform[s.sess] == SPEAKER, _RS["remote"],
        np.select(
            [u_rs < 0.35, u_rs < 0.75], [_RS["appload"], _RS["clickrow"]], default=_RS["playbtn"]
        ),
    )
    reason_start = np.where(
        s.pos == 0, first_reason,
        np.select(
            [prev_end == _RE["fwdbtn"], prev_end == _RE["trackdone"]],
            [_RS["fwdbtn"], np.where(u_rs < 0.9, _RS["trackdone"], _RS["clickrow"])],
            default=_RS["clickrow"],
        ),
    )
    return reason_start, reason_end


def _play_end_times(
    rng: np.random.Generator, s: _Sessions, ms: np.ndarray, reason_start: np.ndarray
) -> np.ndarray:
    """Play *end* times in UTC seconds of the day (Spotify semantics)."""
    # Picking a row by hand takes a while; automatic transitions are nearly gapless.
    n_plays = len(ms)
    gap = np.where(
        reason_start == _RS["clickrow"],
        rng.uniform(2.0, 40.0, n_plays),
        rng.uniform(0.05, 1.5, n_plays),
    )
    step = gap + ms / 1000.0
    csum = np.cumsum(step)
    first, sess = s.first, s.sess
    within = csum - (csum[first] - step[first])[sess]
    start_s = _serialise_sessions(
        s.user, s.start_s, within[first + s.length - 1], rng.uniform(30.0, 900.0, len(s.user))
    )
    return start_s[sess] + within


def human_day(world: World, day: int, weekday: int) -> DayPlays:
    """Every human play of 0-based ``day`` (``weekday`` 0 is Monday), from its own stream."""
    rng = stream_rng(world.seed, 100, day)
    s = _draw_sessions(rng, world, weekday)
    if s is None:
        return empty_day()
    track = _draw_tracks(rng, world, day, s)
    user = s.play_user
    cat = world.catalogue
    z = responses.standardised_affinity(
        world.users.vec[user], cat.vec[track], world.pools.aff_mean, world.pools.aff_std
    )
    logit = responses.skip_logit(world.preset.skip_bias, z, s.shuffle[s.sess], s.pos == 0)
    skipped = responses.draw_skips(rng, logit)
    last = s.pos == s.length[s.sess] - 1
    ms, stop_early = responses.draw_play_ms(rng, skipped, cat.duration_ms[track], last)
    reason_start, reason_end = _draw_reasons(rng, s, skipped, stop_early)
    end = _play_end_times(rng, s, ms, reason_start)
    # Plays running past midnight are cut, which keeps every row inside its span's day.
    keep = end < 86400.0
    sess = s.sess
    return DayPlays(
        user=user[keep], second=end[keep], platform=s.platform[sess][keep], ms=ms[keep],
        country=s.country[sess][keep], track=track[keep], reason_start=reason_start[keep],
        reason_end=reason_end[keep], shuffle=s.shuffle[sess][keep], skipped=skipped[keep],
        offline=s.offline[sess][keep], order=np.flatnonzero(keep),
    )

"""Streaming-fraud bots: accounts that loop a few obscure tracks just past 30 seconds.

Bots in a farm share a target set of obscure back-catalogue tracks and stream them in bursts
every hour of the day, each play lasting ``BOT_MS_RANGE`` (just over the royalty threshold),
never skipped. They are listed in ``truth/bots.csv``, which the pipeline never reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.simulator.catalogue import Catalogue
from crossfade.components.listening_data.simulator.listeners import Users
from crossfade.components.listening_data.simulator.plays import DayPlays, empty_day
from crossfade.components.listening_data.simulator.presets import SimulatorPreset
from crossfade.components.listening_data.simulator.responses import SKIP_THRESHOLD_MS
from crossfade.components.listening_data.simulator.sampling import stream_rng
from crossfade.components.listening_data.simulator.vocabulary import (
    REASON_END_INDEX,
    REASON_START_INDEX,
)

#: ``ms_played`` of a bot play: just past the royalty threshold.
BOT_MS_RANGE = (SKIP_THRESHOLD_MS, SKIP_THRESHOLD_MS + 1_500)
_RS, _RE = REASON_START_INDEX, REASON_END_INDEX


@dataclass
class Bots:
    loop: np.ndarray              # (n_bots, 6) tracks, cycled
    loop_len: np.ndarray
    rate: np.ndarray              # extra plays per hour
    start_day: np.ndarray
    platform: np.ndarray


def build_bots(p: SimulatorPreset, seed: int, cat: Catalogue, users: Users) -> Bots:
    rng = stream_rng(seed, 4)
    n = len(users.bots)
    # Fraud farms promote obscure back-catalogue tracks; bots in a farm share the target set.
    back = cat.release_day < 0
    obscure = np.flatnonzero(back & (cat.log_pop < np.median(cat.log_pop)))
    if len(obscure) == 0:
        obscure = np.flatnonzero(back)
    n_farms = max(1, int(np.ceil(n / 8)))
    farm_tracks = rng.choice(obscure, size=(n_farms, 8), replace=len(obscure) < n_farms * 8)
    farm = rng.integers(0, n_farms, n)
    loop_len = rng.integers(3, 7, n)
    order = rng.permuted(np.tile(np.arange(8), (n, 1)), axis=1)[:, :6]
    loop = np.take_along_axis(farm_tracks[farm], order, axis=1)
    platform = np.argmax(users.platform_cdf[users.bots] > 0, axis=1)
    return Bots(
        loop=loop, loop_len=loop_len,
        rate=rng.uniform(0.4, 1.6, n) * p.bot_plays_per_hour,
        start_day=rng.integers(0, max(1, p.num_days // 3), n),
        platform=platform,
    )


def bot_day(seed: int, day: int, users: Users, bots: Bots) -> DayPlays:
    rng = stream_rng(seed, 200, day)
    active = np.flatnonzero(bots.start_day <= day)
    if len(active) == 0:
        return empty_day()
    b = np.repeat(active, 24)
    hour = np.tile(np.arange(24), len(active))
    k = 1 + rng.poisson(bots.rate[b])
    n_plays = int(k.sum())
    burst = np.repeat(np.arange(len(b)), k)
    first = np.r_[0, np.cumsum(k)[:-1]]
    j = np.arange(n_plays) - first[burst]
    ms = rng.integers(BOT_MS_RANGE[0], BOT_MS_RANGE[1] + 1, n_plays)
    step = ms / 1000.0 + rng.uniform(0.2, 2.0, n_plays)
    csum = np.cumsum(step)
    rel = csum - (csum[first] - step[first])[burst]
    span = (csum[first + k - 1] - (csum[first] - step[first]))
    start = hour * 3600.0 + rng.random(len(b)) * np.maximum(3599.0 - span, 0.0)
    bot = b[burst]
    offset = rng.integers(0, 6, len(b))[burst]
    track = bots.loop[bot, (offset + j) % bots.loop_len[bot]]
    uid = users.bots[bot]
    end = start[burst] + rel
    keep = end < 86400.0
    zeros = np.zeros(int(keep.sum()), dtype=bool)
    return DayPlays(
        user=uid[keep], second=end[keep], platform=bots.platform[bot][keep], ms=ms[keep],
        country=users.country[uid][keep], track=track[keep],
        reason_start=np.where(j == 0, _RS["clickrow"], _RS["trackdone"])[keep],
        reason_end=np.full(int(keep.sum()), _RE["trackdone"]), shuffle=zeros, skipped=zeros,
        offline=zeros, order=np.flatnonzero(keep),
    )

"""Likes (tracks saved to a listener's library), drawn from the shared response model.

Each streamed human play is liked with ``responses.like_probability`` (a logistic function of
the listener's affinity to the track); a track is saved once, at the end of its first liked
play. Likes have their own random stream per day, so adding them left every other file of a
preset byte-identical. They are written to ``likes.csv`` (`LIKE_COLUMNS`), the timestamped
counterpart of the ``YourLibrary.json`` saved tracks of Spotify's account-data export.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import LIKE_COLUMNS
from crossfade.components.listening_data.simulator import responses
from crossfade.components.listening_data.simulator.plays import DayPlays
from crossfade.components.listening_data.simulator.sampling import stream_rng
from crossfade.components.listening_data.simulator.world import World


@dataclass
class Likes:
    user: np.ndarray              # user index
    track: np.ndarray             # track index
    second: np.ndarray            # UTC seconds of the day (end of the liked play)


def day_like_candidates(world: World, day: int, plays: DayPlays) -> Likes:
    """Every play of ``plays`` (human plays of ``day``) that is liked, in time order: saved or
    not before (see `first_likes`)."""
    rng = stream_rng(world.seed, 300, day)
    z = responses.standardised_affinity(
        world.users.vec[plays.user], world.catalogue.vec[plays.track],
        world.pools.aff_mean, world.pools.aff_std,
    )
    streamed = plays.ms >= responses.SKIP_THRESHOLD_MS
    hit = np.flatnonzero(rng.random(len(z)) < responses.like_probability(z, streamed))
    hit = hit[np.argsort(plays.second[hit], kind="stable")]
    return Likes(user=plays.user[hit], track=plays.track[hit], second=plays.second[hit])


def first_likes(candidates: Likes, liked: set[tuple[int, int]]) -> Likes:
    """The candidates (in time order) whose (user, track) is not in ``liked`` yet, each
    once; ``liked`` is updated."""
    keep = []
    for i in range(len(candidates.user)):  # a Python loop over likes only (a few per cent)
        pair = (int(candidates.user[i]), int(candidates.track[i]))
        if pair not in liked:
            liked.add(pair)
            keep.append(i)
    k = np.array(keep, dtype=np.int64)
    return Likes(user=candidates.user[k], track=candidates.track[k],
                 second=candidates.second[k])


def day_likes(world: World, day: int, plays: DayPlays, liked: set[tuple[int, int]]) -> Likes:
    """The new likes among ``plays`` (human plays of ``day``); ``liked`` holds earlier ones
    as (user, track) pairs and is updated."""
    return first_likes(day_like_candidates(world, day, plays), liked)


def likes_frame(world: World, per_day: list[Likes], first_day: int = 0) -> pd.DataFrame:
    """``likes.csv`` content: one row per like, in time order, ISO-8601 UTC timestamps;
    ``per_day[i]`` holds the likes of day ``first_day + i``."""
    dates = np.concatenate(
        [np.full(len(d.user), (world.start + dt.timedelta(days=first_day + i)).isoformat())
         for i, d in enumerate(per_day)] or [np.zeros(0, dtype=object)]
    )
    seconds = np.concatenate([d.second for d in per_day] or [np.zeros(0)])
    clock = pd.to_datetime(dates) + pd.to_timedelta(np.floor(seconds), unit="s")
    return pd.DataFrame(
        {
            "user_id": world.users.user_id[np.concatenate([d.user for d in per_day])],
            "track_id": world.catalogue.track_id[np.concatenate([d.track for d in per_day])],
            "ts": clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        columns=list(LIKE_COLUMNS),
    )

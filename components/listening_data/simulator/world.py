"""The simulated world: everything about a service that does not change from day to day.

`build_world` is a pure function of ``(preset, seed)``: the catalogue, the listeners, their
candidate pools, each track's latent neighbours, the bots and the chart of back-catalogue
popularity. The log generator (`generator`) draws each day's plays from it and the
environment (`environment`) answers served lists from it, so both share one generative model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.simulator.bots import Bots, build_bots
from crossfade.components.listening_data.simulator.catalogue import (
    Catalogue,
    build_catalogue,
    neighbours,
)
from crossfade.components.listening_data.simulator.listeners import Users, build_users
from crossfade.components.listening_data.simulator.pools import Pools, build_pools
from crossfade.components.listening_data.simulator.presets import SimulatorPreset


@dataclass
class World:
    preset: SimulatorPreset
    seed: int
    start: dt.date                # the date of day 0
    catalogue: Catalogue
    users: Users
    pools: Pools
    neighbours: np.ndarray        # (T, 10) same-genre nearest tracks
    bots: Bots
    pop_tracks: np.ndarray        # back-catalogue tracks, by index
    pop_cdf: np.ndarray           # their popularity CDF (the "popular" channel)


def build_world(preset: SimulatorPreset, seed: int) -> World:
    """The world of a validated ``preset`` and a non-negative ``seed``."""
    start = dt.date.fromisoformat(preset.start_date)
    cat = build_catalogue(preset, seed, start)
    users = build_users(preset, seed, cat)
    pools = build_pools(preset, seed, cat, users)
    neigh = neighbours(cat)
    bots = build_bots(preset, seed, cat, users)
    pop_tracks = np.flatnonzero(cat.release_day < 0)
    pop_w = np.exp(cat.log_pop[pop_tracks])
    return World(
        preset=preset, seed=seed, start=start, catalogue=cat, users=users, pools=pools,
        neighbours=neigh, bots=bots, pop_tracks=pop_tracks,
        pop_cdf=np.cumsum(pop_w) / pop_w.sum(),
    )

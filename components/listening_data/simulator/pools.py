"""Each listener's personal candidate pool and its choice distribution.

``p(track) ∝ popularity ** popularity_weight * exp(affinity / taste_temperature)`` over the best
``pool_per_genre`` tracks of each of the user's three genre slots plus the top tracks of a few
favourite artists (``favourite_artists``), which get ``favourite_bonus`` added to their log
weight. The population's affinity mean and spread (`Pools.aff_mean`, `Pools.aff_std`) turn an
affinity into the standardised score the response model uses (`responses`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.simulator.catalogue import Catalogue
from crossfade.components.listening_data.simulator.listeners import Users
from crossfade.components.listening_data.simulator.presets import SimulatorPreset
from crossfade.components.listening_data.simulator.sampling import row_cdf, sample_rows, stream_rng
from crossfade.components.listening_data.simulator.vocabulary import GENRES


@dataclass
class Pools:
    track: np.ndarray             # (U, K) candidate tracks
    cdf: np.ndarray               # flat row_cdf of the choice weights
    width: int
    fallback: np.ndarray          # per user: best back-catalogue candidate
    aff_mean: float
    aff_std: float


def build_pools(p: SimulatorPreset, seed: int, cat: Catalogue, users: Users) -> Pools:
    rng = stream_rng(seed, 3)
    n_users = p.num_users
    kg = p.pool_per_genre
    n_fav, ka = 6, 6
    width = 3 * kg + n_fav * ka
    track = np.zeros((n_users, width), dtype=np.int64)
    score = np.full((n_users, width), -np.inf, dtype=np.float32)
    prior = (p.popularity_weight * cat.log_pop).astype(np.float32)
    inv_t = np.float32(1.0 / p.taste_temperature)

    # Score each user only against the tracks of its three genre slots: this keeps the cost
    # at users x (3 genres) rather than users x catalogue.
    for g in range(len(GENRES)):
        members = np.flatnonzero(cat.genre == g)
        if len(members) == 0:
            continue
        k = min(kg, len(members))
        vg = cat.vec[members].T
        us, slot = np.nonzero(users.slots == g)
        for lo in range(0, len(us), 1024):
            u = us[lo : lo + 1024]
            s = (users.vec[u] @ vg) * inv_t + prior[members][None, :]
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < len(members) else (
                np.broadcast_to(np.arange(k), (len(u), k))
            )
            cols = slot[lo : lo + 1024, None] * kg + np.arange(k)[None, :]
            track[u[:, None], cols] = members[top]
            score[u[:, None], cols] = np.take_along_axis(s, top, axis=1)

    # Favourite artists: drawn from the user's own slot candidates by choice weight, so they
    # are artists the user already likes; their top tracks get a loyalty bonus.
    slot_w = np.exp(score[:, : 3 * kg] - score[:, : 3 * kg].max(axis=1, keepdims=True))
    slot_cdf = row_cdf(slot_w)
    n_f = np.minimum(1 + rng.poisson(max(p.favourite_artists - 1.0, 0.0), n_users), n_fav)
    rows = np.repeat(np.arange(n_users), n_fav)
    col = sample_rows(slot_cdf, 3 * kg, rows, rng.random(n_users * n_fav))
    fav = cat.track_artist[track[rows, col]].reshape(n_users, n_fav)
    j = np.arange(ka)
    idx = cat.artist_start[fav][:, :, None] + j[None, None, :]
    ok = (j[None, None, :] < cat.artist_size[fav][:, :, None]) & (
        np.arange(n_fav)[None, :, None] < n_f[:, None, None]
    )
    ftrack = cat.artist_by_pop[np.where(ok, idx, 0)].reshape(n_users, n_fav * ka)
    fscore = (
        np.einsum("ud,ukd->uk", users.vec, cat.vec[ftrack]) * inv_t
        + prior[ftrack]
        + np.float32(p.favourite_bonus)
    )
    fscore[~ok.reshape(n_users, n_fav * ka)] = -np.inf
    track[:, 3 * kg :] = ftrack
    score[:, 3 * kg :] = fscore

    weight = np.exp((score - score.max(axis=1, keepdims=True)).astype(np.float64))
    cdf = row_cdf(weight)
    back = np.where(cat.release_day[track] < 0, weight, 0.0)
    fallback = track[np.arange(n_users), np.argmax(back, axis=1)]
    # A pool of nothing but new releases is possible in tiny catalogues.
    catalogue_top = np.flatnonzero(cat.release_day < 0)[np.argmax(cat.log_pop[cat.release_day < 0])]
    fallback = np.where(back.max(axis=1) > 0, fallback, catalogue_top)

    # Population affinity statistics, used to turn an affinity into a skip propensity.
    su = rng.integers(0, n_users, 20_000)
    st = rng.integers(0, len(cat.genre), 20_000)
    aff = np.einsum("ud,ud->u", users.vec[su], cat.vec[st])
    return Pools(
        track=track, cdf=cdf, width=width, fallback=fallback,
        aff_mean=float(aff.mean()), aff_std=float(aff.std()),
    )

"""Simulated listeners: country, account, platforms, daily rhythm and taste vector.

A user mixes one to three genre centroids (Dirichlet weights) plus personal noise
(``taste_noise``); its three genre slots are its own genres by weight, padded with the genres
nearest to its vector. Activity is log-normal around ``sessions_per_user_day``; a few heavy
listeners (``heavy_listener_share``) listen five times as often, night included. ``bot_share``
of the accounts are bots (`bots`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crossfade.components.listening_data.layout import LIST_SEPARATOR, USER_COLUMNS
from crossfade.components.listening_data.simulator.catalogue import Catalogue
from crossfade.components.listening_data.simulator.csv_text import format_weight
from crossfade.components.listening_data.simulator.presets import SimulatorPreset
from crossfade.components.listening_data.simulator.sampling import random_ids, stream_rng
from crossfade.components.listening_data.simulator.vocabulary import (
    ANDROID,
    BASE36,
    COUNTRIES,
    COUNTRY_CODES,
    COUNTRY_IOS,
    COUNTRY_PREMIUM,
    COUNTRY_SHARE,
    DESKTOP,
    GENRE_SHARE,
    GENRES,
    IOS,
    PLATFORMS,
    SPEAKER,
    WEB,
)


@dataclass
class Users:
    user_id: np.ndarray           # object
    country: np.ndarray           # index into COUNTRIES
    premium: np.ndarray           # bool
    platform_cdf: np.ndarray      # (U, 5) cumulative platform mix
    vec: np.ndarray               # (U, D) float32
    slots: np.ndarray             # (U, 3) genre slots
    slot_weight: np.ndarray       # (U, 3)
    rate: np.ndarray              # sessions per day
    peak_hour: np.ndarray
    hour_spread: np.ndarray
    session_len: np.ndarray       # mean plays per session
    is_bot: np.ndarray
    bots: np.ndarray              # indices
    humans: np.ndarray            # indices
    frame: pd.DataFrame


def build_users(p: SimulatorPreset, seed: int, cat: Catalogue) -> Users:
    rng = stream_rng(seed, 2)
    n_users, dim, n_genres = p.num_users, p.latent_dim, len(GENRES)

    country = rng.choice(len(COUNTRIES), size=n_users, p=COUNTRY_SHARE)
    premium = rng.random(n_users) < COUNTRY_PREMIUM[country]

    n_bots = int(round(p.bot_share * n_users))
    bots = np.sort(rng.choice(n_users, size=n_bots, replace=False))
    is_bot = np.zeros(n_users, dtype=bool)
    is_bot[bots] = True
    humans = np.flatnonzero(~is_bot)
    n_heavy = int(round(p.heavy_listener_share * n_users))
    heavy = np.zeros(n_users, dtype=bool)
    heavy[rng.choice(humans, size=min(n_heavy, len(humans)), replace=False)] = True

    # Platform mix: a phone, often a second device, sometimes a third; bots and some humans
    # use exactly one platform, so the mix alone does not reveal a bot.
    mix = np.zeros((n_users, len(PLATFORMS)))
    phone = np.where(rng.random(n_users) < COUNTRY_IOS[country], IOS, ANDROID)
    second = rng.choice([DESKTOP, WEB, SPEAKER], size=n_users, p=[0.55, 0.2, 0.25])
    third = rng.choice([DESKTOP, WEB, SPEAKER], size=n_users, p=[0.3, 0.4, 0.3])
    n_plat = rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.5, 0.15])
    main = rng.choice([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9], size=n_users)
    mix[np.arange(n_users), phone] = np.where(n_plat == 1, 1.0, main)
    rest = 1.0 - main
    two = n_plat == 2
    three = (n_plat == 3) & (third != second)
    mix[np.flatnonzero(two), second[two]] += rest[two]
    r2 = np.round(rest * rng.choice([0.5, 0.6, 0.7], size=n_users) * 20) / 20
    mix[np.flatnonzero(three), second[three]] += r2[three]
    mix[np.flatnonzero(three), third[three]] += (rest - r2)[three]
    same = (n_plat == 3) & (third == second)
    mix[np.flatnonzero(same), second[same]] += rest[same]
    bot_platform = rng.choice([DESKTOP, WEB, ANDROID], size=n_bots, p=[0.5, 0.3, 0.2])
    mix[bots] = 0.0
    mix[bots, bot_platform] = 1.0
    mix = np.round(mix, 2)
    mix_str = [
        LIST_SEPARATOR.join(
            f"{PLATFORMS[j]}:{format_weight(mix[u, j])}" for j in np.flatnonzero(mix[u] > 0)
        )
        for u in range(n_users)
    ]
    platform_cdf = np.cumsum(mix, axis=1)
    platform_cdf /= platform_cdf[:, -1:]

    # Taste: one to three genres with Dirichlet weights; slots are padded with the genres
    # nearest to the resulting vector.
    # Only genres with tracks can be liked, so that every pool has candidates.
    has_tracks = np.bincount(cat.genre, minlength=n_genres) > 0
    n_g = np.minimum(rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.45, 0.2]), has_tracks.sum())
    logit = np.where(has_tracks, np.log(GENRE_SHARE), -np.inf)
    picked = np.argsort(
        rng.gumbel(size=(n_users, n_genres)) + logit[None, :], axis=1
    )[:, ::-1][:, :3]
    gw = rng.dirichlet(np.full(3, 2.0), size=n_users)
    gw = np.where(np.arange(3)[None, :] < n_g[:, None], gw, 0.0)
    gw /= gw.sum(axis=1, keepdims=True)
    vec = np.einsum("uk,ukd->ud", gw, cat.centroids[picked]) + rng.normal(
        0.0, p.taste_noise, (n_users, dim)
    )
    vec = vec.astype(np.float32)
    rows = np.arange(n_users)[:, None]
    genre_weight = np.zeros((n_users, n_genres))
    genre_weight[rows, picked] = gw
    # Slots: the user's own genres by weight, then the genres nearest to the taste vector.
    sims = vec @ cat.centroids.T + np.where(genre_weight > 0, 1e6 + genre_weight, 0.0)
    sims[:, ~has_tracks] = -np.inf
    slots = np.argsort(-sims, axis=1, kind="stable")[:, :3]
    slot_weight = np.maximum(genre_weight[rows, slots], 0.08)
    slot_weight /= slot_weight.sum(axis=1, keepdims=True)

    # Log-normal activity, clipped so that no human listens around the clock, then rescaled
    # to mean 1 so that the preset's session rate holds.
    activity = np.minimum(rng.lognormal(0.0, 0.9, n_users), 4.0)
    activity /= activity.mean()
    rate = p.sessions_per_user_day * activity * np.where(heavy, 5.0, 1.0)
    comp = rng.choice(5, size=n_users, p=[0.2, 0.1, 0.3, 0.3, 0.1])
    peak_hour = (
        np.array([8.0, 12.5, 18.0, 21.0, 23.5])[comp] + rng.normal(0.0, 1.0, n_users)
    ) % 24
    hour_spread = np.where(heavy, 5.0, rng.uniform(1.0, 2.5, n_users))
    session_len = (
        p.plays_per_session * np.where(heavy, 1.8, 1.0) * rng.lognormal(-0.08, 0.4, n_users)
    )

    # A leading letter keeps ids from ever looking numeric to a CSV type inference.
    user_id = random_ids(rng, n_users, 12, BASE36, first=BASE36[10:])
    frame = pd.DataFrame(
        {
            "user_id": user_id,
            "country": COUNTRY_CODES[country],
            "account_type": np.where(premium, "premium", "free"),
            "platform_mix": mix_str,
        },
        columns=list(USER_COLUMNS),
    )
    return Users(
        user_id=user_id, country=country, premium=premium, platform_cdf=platform_cdf, vec=vec,
        slots=slots, slot_weight=slot_weight, rate=rate, peak_hour=peak_hour,
        hour_spread=hour_spread, session_len=session_len, is_bot=is_bot, bots=bots,
        humans=humans, frame=frame,
    )

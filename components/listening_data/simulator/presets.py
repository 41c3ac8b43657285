"""Simulator presets: the size and behaviour knobs of one simulated service, and their checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorPreset:
    """Size and behaviour knobs of one simulated service.

    The first block sets the scale; the rest shape the behaviour and have defaults that make
    the taste structure clearly learnable.
    """

    name: str
    num_users: int
    num_tracks: int
    num_artists: int
    num_days: int
    #: Mean sessions per (human) user per day; individual rates are log-normal around it.
    sessions_per_user_day: float
    #: Mean plays per session (geometric length).
    plays_per_session: float
    #: Fraction of accounts that are streaming bots.
    bot_share: float
    #: Fraction of tracks released on a day inside the simulated period.
    new_release_share: float
    start_date: str = "2024-03-01"
    latent_dim: int = 16
    #: Affinity temperature of the choice softmax; lower means more personal listening.
    taste_temperature: float = 0.08
    #: Per-dimension sd of a user's personal taste around its genre mix.
    taste_noise: float = 0.3
    #: Exponent of the popularity prior in the choice probability.
    popularity_weight: float = 0.5
    #: Global popularity ~ rank ** -zipf_exponent.
    zipf_exponent: float = 0.9
    #: Candidates per genre slot in a user's personal pool (3 slots per user).
    pool_per_genre: int = 80
    #: Mean number of favourite artists per user (at most 6).
    favourite_artists: float = 3.0
    #: Log-weight bonus of a favourite artist's tracks.
    favourite_bonus: float = 1.5
    #: Share of human accounts that are heavy listeners (many long sessions, night included).
    heavy_listener_share: float = 0.01
    #: Mean extra bot plays per hour of the day (each hour has at least one burst play).
    bot_plays_per_hour: float = 0.9
    #: Base log-odds of a skip for an average-affinity track.
    skip_bias: float = 0.3


PRESETS: dict[str, SimulatorPreset] = {
    p.name: p
    for p in (
        SimulatorPreset(
            name="tiny", num_users=300, num_tracks=1_000, num_artists=150, num_days=14,
            sessions_per_user_day=0.8, plays_per_session=8.0, bot_share=0.01,
            new_release_share=0.03, pool_per_genre=40,
            # A 1,000-track catalogue makes the global top 50 strong; sharper taste and a
            # weaker popularity prior keep personalisation clearly ahead.
            taste_temperature=0.1, popularity_weight=0.4,
        ),
        # Between tiny and default: enough listeners for the closed-loop benchmark of
        # `crossfade simulate --rounds` at a fraction of default's training time.
        SimulatorPreset(
            name="small", num_users=2_000, num_tracks=6_000, num_artists=800, num_days=21,
            sessions_per_user_day=0.35, plays_per_session=7.5, bot_share=0.01,
            new_release_share=0.02, pool_per_genre=60,
        ),
        SimulatorPreset(
            name="default", num_users=6_000, num_tracks=20_000, num_artists=2_500, num_days=28,
            sessions_per_user_day=0.29, plays_per_session=7.5, bot_share=0.01,
            new_release_share=0.02,
        ),
        SimulatorPreset(
            name="large", num_users=100_000, num_tracks=100_000, num_artists=12_500,
            num_days=28, sessions_per_user_day=0.45, plays_per_session=8.0, bot_share=0.01,
            new_release_share=0.02,
        ),
    )
}



def resolve_preset(preset: "str | SimulatorPreset") -> SimulatorPreset:
    if isinstance(preset, SimulatorPreset):
        p = preset
    elif preset in PRESETS:
        p = PRESETS[preset]
    else:
        raise ValueError(f"unknown simulator preset {preset!r}; known: {sorted(PRESETS)}")
    if not (p.num_users >= 1 and p.num_artists >= 1 and p.num_days >= 1):
        raise ValueError(f"preset {p.name!r} needs at least one user, artist and day")
    if p.num_tracks < p.num_artists:
        raise ValueError(f"preset {p.name!r}: every artist needs a track (tracks >= artists)")
    if not (0.0 <= p.bot_share < 1.0 and 0.0 <= p.new_release_share < 1.0):
        raise ValueError(f"preset {p.name!r}: bot_share and new_release_share must be in [0, 1)")
    if p.num_days > 9999:
        raise ValueError("at most 9999 days (span folders have four digits)")
    return p

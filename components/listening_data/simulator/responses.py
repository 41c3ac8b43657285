"""How a simulated listener responds to one track: skip or stream, for how long, and a like.

This is the one response model of the simulator. The log generator (`sessions`) draws the
plays of ``plays.csv`` with it and the environment (`environment`) answers served lists with
it, so that what a recommender learns from the logs is what judges it in simulation.

For listener ``u`` and track ``t`` with latent vectors ``x_u`` and ``v_t``:

* Standardised affinity: ``z = (x_u · v_t - aff_mean) / aff_std``, with the population's
  affinity mean and spread (`pools.Pools.aff_mean`, ``aff_std``).
* Skip: ``P(skip) = σ(skip_bias - AFFINITY_SKIP_WEIGHT * z + SHUFFLE_SKIP_WEIGHT * shuffle
  - FIRST_PLAY_SKIP_WEIGHT * first + extra)``, where ``σ`` is the logistic function,
  ``shuffle`` and ``first`` (first play of a session) are 0/1 and ``extra`` is a log-odds term
  of the caller's (the environment's satiation; 0 in the log generator).
* Length (``ms_played``, ``d`` the track's duration, ``U`` uniform on [0, 1)):

  - a skip is late with probability ``LATE_SKIP_SHARE``: ``30 s + U * max(0.8 d - 30 s, 1)``;
    otherwise early: ``exp(N(log 6 s, 0.9))`` clipped to [0.4 s, 30 s);
  - a play that is not skipped stops part way with probability ``STOP_EARLY_SHARE``
    (``STOP_EARLY_SHARE_LAST`` for a session's last play): ``30 s + U * max(d - 30 s, 1)``, or
    from 5 s for a session's last play (the app is closed); otherwise it plays to within 0.8 s
    of the end.

  A play *streams* when ``ms_played >= SKIP_THRESHOLD_MS`` (30 s, the royalty threshold).
* Like (save to the library), for a streamed play only:
  ``P(like) = σ(LIKE_BIAS + LIKE_AFFINITY_WEIGHT * z)``. With the defaults a stream of average
  affinity is liked 4.7 % of the time and one two standard deviations above average 35 %.

Each draw consumes its uniforms in a fixed order from the caller's generator, which is what
keeps the log generator's files byte-identical per seed.
"""

from __future__ import annotations

import numpy as np

#: ``ms_played`` below this is a skip in royalty terms (and not a stream).
SKIP_THRESHOLD_MS = 30_000

#: Log-odds of a skip per standard deviation of affinity (higher affinity, fewer skips).
AFFINITY_SKIP_WEIGHT = 0.95
#: Extra log-odds of a skip in shuffle mode.
SHUFFLE_SKIP_WEIGHT = 0.45
#: Fewer log-odds of a skip for the first play of a session (the listener chose it).
FIRST_PLAY_SKIP_WEIGHT = 0.8
#: Share of skips that come late (after 30 s).
LATE_SKIP_SHARE = 0.06
#: Share of unskipped plays that stop part way; for a session's last play.
STOP_EARLY_SHARE = 0.05
STOP_EARLY_SHARE_LAST = 0.45

#: Log-odds of liking an average-affinity stream.
LIKE_BIAS = -3.0
#: Log-odds of a like per standard deviation of affinity.
LIKE_AFFINITY_WEIGHT = 1.2


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def standardised_affinity(
    user_vectors: np.ndarray, track_vectors: np.ndarray, aff_mean: float, aff_std: float
) -> np.ndarray:
    """``z`` per row: [n, D] user and track vectors (row-aligned) -> [n] float."""
    aff = np.einsum("pd,pd->p", user_vectors, track_vectors)
    return (aff - aff_mean) / aff_std


def skip_logit(
    skip_bias: float, z: np.ndarray, shuffle: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Log-odds of a skip (before any ``extra`` term): [n] z, [n] 0/1 shuffle and first."""
    return (
        skip_bias - AFFINITY_SKIP_WEIGHT * z + SHUFFLE_SKIP_WEIGHT * shuffle
        - FIRST_PLAY_SKIP_WEIGHT * first
    )


def draw_skips(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    """[n] bool skips with probability ``σ(logit)``; one uniform per play."""
    return rng.random(len(logit)) < sigmoid(logit)


def draw_play_ms(
    rng: np.random.Generator, skipped: np.ndarray, duration_ms: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(ms_played, stop_early)``: [n] int64 lengths and [n] bool early stops of unskipped plays.

    ``last`` marks a session's last play. Draws six arrays of uniforms in a fixed order.
    """
    n = len(skipped)
    dur = duration_ms
    late_skip = skipped & (rng.random(n) < LATE_SKIP_SHARE)
    ms_skip = np.clip(np.exp(rng.normal(np.log(6000.0), 0.9, n)), 400, SKIP_THRESHOLD_MS - 1)
    u_end = rng.random(n)
    stop_early = ~skipped & ((u_end < STOP_EARLY_SHARE) | (last & (u_end < STOP_EARLY_SHARE_LAST)))
    ms_late_skip = SKIP_THRESHOLD_MS + rng.random(n) * np.maximum(0.8 * dur - SKIP_THRESHOLD_MS, 1)
    # Only a session's last play may stop before 30 s without being a skip (app closed).
    ms_stop = np.where(last, 5_000, SKIP_THRESHOLD_MS) + rng.random(n) * np.maximum(
        dur - SKIP_THRESHOLD_MS, 1
    )
    ms_done = dur - rng.integers(0, 800, n)
    ms = np.where(
        skipped, np.where(late_skip, ms_late_skip, ms_skip), np.where(stop_early, ms_stop, ms_done)
    )
    return np.minimum(ms, dur).astype(np.int64), stop_early


def like_probability(z: np.ndarray, streamed: np.ndarray) -> np.ndarray:
    """[n] probability of a like: ``σ(LIKE_BIAS + LIKE_AFFINITY_WEIGHT z)`` if streamed, else 0."""
    return np.where(streamed, sigmoid(LIKE_BIAS + LIKE_AFFINITY_WEIGHT * z), 0.0)

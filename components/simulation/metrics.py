"""What `crossfade simulate` measures per policy, from what its listeners did with its lists.

Over the logged lists of a policy (``n`` requests of ``K`` slots):

* ``stream_rate``: streams (>= 30 s) per recommended slot (a slot holding a track);
* ``skip_rate``: skips per heard slot;
* ``minutes_per_session``: minutes played per request (a request is one session's list);
* ``likes_per_session``: likes per request;
* ``new_release_share``: share of streams of tracks released in the 14 days before the day
  (the generator's new-release window);
* ``coverage``: distinct recommended tracks / catalogue size;
* consumption diversity on the simulator's truth (`consumption`): ``intra_list_diversity``
  (mean over lists with two or more streams), ``genre_entropy`` (per listener over the period,
  then the mean: the diversity of an individual's diet, in bits) and
  ``generalist_specialist`` (the mean of the listeners' GS scores; lower is more generalist).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.simulator.environment import Responses
from crossfade.components.listening_data.simulator.world import World
from crossfade.components.simulation import consumption
from crossfade.components.simulation.policies import Requests

#: The generator's new-release window (days after release).
NEW_RELEASE_DAYS = 14

#: Name, label, whether higher is better, and format, in report order.
METRICS = (
    ("stream_rate", "stream rate", True, ".3f"),
    ("skip_rate", "skip rate", False, ".3f"),
    ("minutes_per_session", "minutes / session", True, ".2f"),
    ("likes_per_session", "likes / session", True, ".3f"),
    ("new_release_share", "new-release share", True, ".3f"),
    ("coverage", "coverage", True, ".3f"),
    ("intra_list_diversity", "ILD (true vectors)", True, ".3f"),
    ("genre_entropy", "genre entropy (bits)", True, ".2f"),
    ("generalist_specialist", "GS score", False, ".3f"),
)


def metric_table() -> list[dict]:
    """`METRICS` as the report's ``metrics`` entries."""
    return [{"name": n, "label": label, "higher_is_better": up, "format": fmt}
            for n, label, up, fmt in METRICS]


@dataclass
class DayLog:
    """One day of one policy: the requests, the lists served and the listeners' responses."""

    day: int
    users: np.ndarray             # [n]
    tracks: np.ndarray            # [n, K], -1 empty
    propensities: np.ndarray      # [n, K]
    responses: Responses
    requests: Requests            # what the policy was asked


def summarise(world: World, logs: list[DayLog]) -> dict[str, float]:
    """Every metric of `METRICS` over ``logs`` (NaN where undefined, e.g. no streams)."""
    cat = world.catalogue
    tracks = np.concatenate([d.tracks for d in logs])
    users = np.concatenate([d.users for d in logs])
    day = np.concatenate([np.full(len(d.users), d.day) for d in logs])
    r = [d.responses for d in logs]
    streamed, skipped, heard = (np.concatenate([getattr(x, f) for x in r])
                                for f in ("streamed", "skipped", "heard"))
    ms = np.concatenate([x.ms_played for x in r])
    liked = np.concatenate([x.liked for x in r])
    slots, sessions, streams = (tracks >= 0).sum(), len(users), streamed.sum()
    rows, cols = np.nonzero(streamed)
    t = tracks[rows, cols]
    age = day[rows] - cat.release_day[t]
    safe = np.where(tracks >= 0, tracks, 0)
    ild = consumption.intra_list_diversity(cat.vec[safe].astype(np.float64), streamed)
    _, gs = consumption.generalist_specialist(users[rows], t, cat.vec.astype(np.float64))
    return {
        "stream_rate": _ratio(streams, slots),
        "skip_rate": _ratio(skipped.sum(), heard.sum()),
        "minutes_per_session": _ratio(ms.sum() / 60_000.0, sessions),
        "likes_per_session": _ratio(liked.sum(), sessions),
        "new_release_share": _ratio(((age >= 0) & (age < NEW_RELEASE_DAYS)).sum(), streams),
        "coverage": len(np.unique(tracks[tracks >= 0])) / len(cat.genre),
        "intra_list_diversity": _nanmean(ild),
        "genre_entropy": _mean_user_entropy(users[rows], cat.genre[t], len(cat.centroids)),
        "generalist_specialist": _nanmean(gs),
    }


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _nanmean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def _mean_user_entropy(users: np.ndarray, genres: np.ndarray, num_genres: int) -> float:
    """Mean over listeners with a stream of the entropy (bits) of their streams' genres."""
    if len(users) == 0:
        return float("nan")
    _, u = np.unique(users, return_inverse=True)
    counts = np.bincount(u * num_genres + genres, minlength=(u.max() + 1) * num_genres)
    p = counts.reshape(-1, num_genres).astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return float(h.mean())

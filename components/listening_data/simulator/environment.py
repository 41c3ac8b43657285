"""The simulated listeners as an environment: they answer served lists of tracks.

`ListeningEnvironment.respond` takes, for one simulated day, a batch of requests (a listener and
``K`` track indices in order, ``-1`` for an empty slot) and returns, per position, whether the
listener heard the track, streamed it (``ms_played >= 30 s``), skipped it, how long it played
and whether it was liked. It uses the log generator's world (`world`) and response model
(`responses`), so a model is judged by the same listeners whose logs it learned from.

A served list is listened to like an ordered playlist (no shuffle), from the first position:

* Position ``k`` (0-based) is skipped with ``P = σ(skip_bias - 0.95 z + 0.45·0 - 0.8·[k = 0]
  + s)``, ``z`` the standardised affinity and ``s`` the satiation term below (0 when off); the
  play's length and like follow `responses`. A track not yet released on the day cannot be
  played: it is heard, skipped, 0 ms.
* After each heard position the listener leaves with probability
  ``ListeningParameters.leave_probability`` (plus ``leave_after_skip`` if it was skipped);
  later positions are not heard.

Long-term effects (`LongTermEffects`, each can be switched off):

* **Satiation**: ``s = artist_satiation · log(1 + a) + genre_satiation · log(1 + g /
  genre_scale)``, where ``a`` and ``g`` are the listener's recent streams of the track's artist
  and primary genre: streams served by this environment (earlier positions of the same list
  included), each decaying by half every ``satiation_half_life_days`` days.
* **Discovery**: when a listener streams an artist it has not streamed before (in the logs it
  was built with or in this environment), its taste vector moves a share ``discovery_rate`` of
  the way towards the track's vector: ``x_u ← x_u + η (v_t - x_u)``, applied after the list.
  Discovery changes what the environment's listeners like from then on; organic listening
  (`sessions`) still draws from the pools built on the initial taste.

Deterministic: the same world, seed and sequence of calls give the same responses. Vectorised
over requests; Python loops run over the ``K`` positions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossfade.components.listening_data.simulator import responses
from crossfade.components.listening_data.simulator.world import World

#: The random stream of the environment (the generator uses 1-4, 100, 200 and 300).
_STREAM = 400


@dataclass(frozen=True)
class ListeningParameters:
    """How a listener goes through a served list (not long-term effects)."""

    #: Probability of leaving after any heard position.
    leave_probability: float = 0.04
    #: Extra probability of leaving after a skip.
    leave_after_skip: float = 0.08

    def __post_init__(self) -> None:
        for name in ("leave_probability", "leave_after_skip"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ListeningParameters.{name} must be in [0, 1]")
        if self.leave_probability + self.leave_after_skip > 1.0:
            raise ValueError("leave_probability + leave_after_skip must be at most 1")


@dataclass(frozen=True)
class LongTermEffects:
    """Satiation and discovery: the documented defaults, `off()` for neither."""

    satiation: bool = True
    #: Log-odds of a skip per log(1 + recent streams of the track's artist).
    artist_satiation: float = 0.45
    #: Log-odds of a skip per log(1 + recent streams of the track's genre / genre_scale).
    genre_satiation: float = 0.25
    #: Streams of one genre that count as one unit of genre satiation.
    genre_scale: float = 10.0
    #: Days after which a stream's satiation has halved.
    satiation_half_life_days: float = 3.0
    discovery: bool = True
    #: Share of the way a listener's taste moves towards a newly discovered artist's track.
    discovery_rate: float = 0.05

    def __post_init__(self) -> None:
        for name in ("artist_satiation", "genre_satiation", "discovery_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"LongTermEffects.{name} must be >= 0")
        if self.genre_scale <= 0 or self.satiation_half_life_days <= 0:
            raise ValueError("LongTermEffects genre_scale and satiation_half_life_days must be > 0")
        if self.discovery_rate > 1:
            raise ValueError("LongTermEffects.discovery_rate must be at most 1")

    @classmethod
    def off(cls) -> "LongTermEffects":
        return cls(satiation=False, discovery=False)


@dataclass
class Responses:
    """Per request and position, [n, K] arrays."""

    heard: np.ndarray             # bool: the listener reached the position
    streamed: np.ndarray          # bool: ms_played >= 30 s
    skipped: np.ndarray           # bool
    ms_played: np.ndarray         # int64, 0 where not heard
    liked: np.ndarray             # bool
    skip_probability: np.ndarray  # float, the probability the skip was drawn with (NaN: not heard)


class _DecayingCounts:
    """Sparse per-(user, key) counts that halve every ``half_life`` days (sorted int64 keys)."""

    def __init__(self, width: int, half_life: float) -> None:
        self._width, self._half_life = width, half_life
        self._keys = np.zeros(0, dtype=np.int64)
        self._values = np.zeros(0, dtype=np.float64)
        self._day = 0

    def advance_to(self, day: int) -> None:
        if day > self._day:
            self._values *= 0.5 ** ((day - self._day) / self._half_life)
            keep = self._values >= 1e-3  # forget what has faded, so the store stays small
            self._keys, self._values = self._keys[keep], self._values[keep]
            self._day = day

    def get(self, user: np.ndarray, key: np.ndarray) -> np.ndarray:
        k = user.astype(np.int64) * self._width + key
        if len(self._keys) == 0:
            return np.zeros(len(k))
        i = np.minimum(np.searchsorted(self._keys, k), len(self._keys) - 1)
        return np.where(self._keys[i] == k, self._values[i], 0.0)

    def add(self, user: np.ndarray, key: np.ndarray) -> None:
        k = np.concatenate([self._keys, user.astype(np.int64) * self._width + key])
        v = np.concatenate([self._values, np.ones(len(user))])
        self._keys, inverse = np.unique(k, return_inverse=True)
        self._values = np.bincount(inverse, weights=v, minlength=len(self._keys))


class ListeningEnvironment:
    """The listeners of ``world`` answering served lists, day by day.

    ``history``: (user indices, track indices) of streams the listeners already made (e.g. the
    data set's plays), which tells discovery which artists each listener knows. Days passed to
    `respond` must not go backwards.
    """

    def __init__(
        self, world: World, effects: LongTermEffects = LongTermEffects(),
        listening: ListeningParameters = ListeningParameters(), seed: int = 0,
        history: "tuple[np.ndarray, np.ndarray] | None" = None,
    ) -> None:
        self.world, self.effects, self.listening, self.seed = world, effects, listening, seed
        self.taste = world.users.vec.astype(np.float64).copy()
        n_artists = len(world.catalogue.artist_size)
        self._artist_counts = _DecayingCounts(n_artists, effects.satiation_half_life_days)
        self._genre_counts = _DecayingCounts(
            len(world.catalogue.centroids), effects.satiation_half_life_days
        )
        self._n_artists = n_artists
        known = np.zeros(0, dtype=np.int64)
        if history is not None:
            hu, ht = history
            known = np.unique(hu.astype(np.int64) * n_artists + world.catalogue.track_artist[ht])
        self._known_artists = known
        self._day, self._calls = -1, 0

    def _rng(self, day: int) -> np.random.Generator:
        if day < self._day:
            raise ValueError(f"days must not go backwards: {day} after {self._day}")
        if day != self._day:
            self._day, self._calls = day, 0
        self._calls += 1
        return np.random.default_rng([self.world.seed, _STREAM, self.seed, day, self._calls])

    def satiation(
        self, users: np.ndarray, tracks: np.ndarray, artist_extra: "np.ndarray | int" = 0,
        genre_extra: "np.ndarray | int" = 0,
    ) -> np.ndarray:
        """The satiation log-odds ``s`` of [n] users for [n] tracks, counting ``*_extra``
        more recent streams of the track's artist and genre (the list's earlier positions)."""
        if not self.effects.satiation:
            return np.zeros(len(users))
        cat, e = self.world.catalogue, self.effects
        a = self._artist_counts.get(users, cat.track_artist[tracks]) + artist_extra
        g = self._genre_counts.get(users, cat.genre[tracks]) + genre_extra
        return e.artist_satiation * np.log1p(a) + e.genre_satiation * np.log1p(g / e.genre_scale)

    def respond(self, day: int, users: np.ndarray, tracks: np.ndarray) -> Responses:
        """Responses of [n] ``users`` (indices) to [n, K] ``tracks`` (indices, -1 empty) on
        0-based ``day``."""
        users, tracks = self._check(users, tracks)
        rng = self._rng(day)
        self._artist_counts.advance_to(day)
        self._genre_counts.advance_to(day)
        n, k = tracks.shape
        out = Responses(
            heard=np.zeros((n, k), bool), streamed=np.zeros((n, k), bool),
            skipped=np.zeros((n, k), bool), ms_played=np.zeros((n, k), np.int64),
            liked=np.zeros((n, k), bool), skip_probability=np.full((n, k), np.nan),
        )
        present = np.ones(n, dtype=bool)
        for pos in range(k):
            self._respond_position(rng, day, pos, users, tracks, present, out)
        self._remember(users, tracks, out.streamed)
        return out

    def _check(self, users: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        users, tracks = np.asarray(users, np.int64), np.asarray(tracks, np.int64)
        n_users, n_tracks = len(self.world.users.user_id), len(self.world.catalogue.genre)
        if tracks.ndim != 2 or users.shape != (tracks.shape[0],):
            raise ValueError(
                f"users must be [n] and tracks [n, K]; got {users.shape} and {tracks.shape}"
            )
        if users.size and (users.min() < 0 or users.max() >= n_users):
            raise ValueError(f"user index out of range [0, {n_users})")
        if tracks.size and (tracks.min() < -1 or tracks.max() >= n_tracks):
            raise ValueError(f"track index out of range [-1, {n_tracks})")
        return users, tracks

    def _respond_position(
        self, rng: np.random.Generator, day: int, pos: int, users: np.ndarray,
        tracks: np.ndarray, present: np.ndarray, out: Responses,
    ) -> None:
        cat, pools = self.world.catalogue, self.world.pools
        n = len(users)
        # Every draw is made for every row whatever is present, so a request's responses do
        # not depend on which other requests of the batch have left (common random numbers).
        u_skip, u_leave, u_like = rng.random(n), rng.random(n), rng.random(n)
        t = tracks[:, pos]
        live = np.flatnonzero(present & (t >= 0))
        u, tr = users[live], t[live]
        z = responses.standardised_affinity(
            self.taste[u], cat.vec[tr], pools.aff_mean, pools.aff_std
        )
        same_artist, same_genre = self._earlier_streams(
            tracks[live], pos, out.streamed[live, :pos]
        )
        extra = self.satiation(u, tr, same_artist, same_genre)
        logit = responses.skip_logit(self.world.preset.skip_bias, z, 0.0, float(pos == 0)) + extra
        p_skip = responses.sigmoid(logit)
        released = cat.release_day[tr] <= day
        skipped = np.zeros(n, dtype=bool)
        skipped[live] = (u_skip[live] < p_skip) | ~released
        ms_all, _ = responses.draw_play_ms(rng, skipped, cat.duration_ms[np.maximum(t, 0)],
                                           np.zeros(n, bool))
        skipped = skipped[live]
        ms = np.where(released, ms_all[live], 0)
        streamed = ms >= responses.SKIP_THRESHOLD_MS
        liked = u_like[live] < responses.like_probability(z, streamed)
        out.heard[live, pos] = True
        out.skipped[live, pos], out.ms_played[live, pos] = skipped, ms
        out.streamed[live, pos], out.liked[live, pos] = streamed, liked
        out.skip_probability[live, pos] = np.where(released, p_skip, 1.0)
        leave_p = self.listening.leave_probability + self.listening.leave_after_skip * skipped
        present[live[u_leave[live] < leave_p]] = False

    def _earlier_streams(
        self, tracks: np.ndarray, pos: int, streamed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Streams of the artist and of the genre at position ``pos`` among earlier positions
        of the same [n, K] lists (``streamed``: [n, pos])."""
        cat = self.world.catalogue
        earlier = np.maximum(tracks[:, :pos], 0)
        now = tracks[:, pos]
        artist = ((cat.track_artist[earlier] == cat.track_artist[now][:, None]) & streamed).sum(1)
        genre = ((cat.genre[earlier] == cat.genre[now][:, None]) & streamed).sum(1)
        return artist, genre

    def _remember(self, users: np.ndarray, tracks: np.ndarray, streamed: np.ndarray) -> None:
        rows, cols = np.nonzero(streamed)
        u, t = users[rows], tracks[rows, cols]
        cat = self.world.catalogue
        if self.effects.satiation:
            self._artist_counts.add(u, cat.track_artist[t])
            self._genre_counts.add(u, cat.genre[t])
        if self.effects.discovery and len(u):
            key = u * self._n_artists + cat.track_artist[t]
            order = np.lexsort((cols, rows))  # first stream of an artist in list order
            key, u, t = key[order], u[order], t[order]
            _, first = np.unique(key, return_index=True)
            first = np.sort(first)
            new = first[~np.isin(key[first], self._known_artists, assume_unique=True)]
            step = self.effects.discovery_rate * (cat.vec[t[new]] - self.taste[u[new]])
            np.add.at(self.taste, u[new], step)
            self._known_artists = np.union1d(self._known_artists, key[new])

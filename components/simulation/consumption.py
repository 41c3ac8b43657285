"""How diverse is what the simulated listeners consumed: measured on the simulator's truth.

A recommender can look diverse in its own embedding space and still feed a listener one corner
of taste. These measures use the simulator's latent track vectors and genres (the generative
truth, see `crossfade.components.listening_data.simulator`), never a model's embeddings, so
two policies are compared on what their listeners really heard. They count only what was
consumed (streamed), not everything that was served.

* Intra-list diversity (`intra_list_diversity`): per served list, the mean over pairs of
  consumed slots i < j of the cosine distance 1 - cos(x_i, x_j). With unit vectors
  v_i = x_i / |x_i|, n consumed slots and s = sum_i v_i, the pairwise sum follows from one sum
  per list instead of a [k, k] Gram matrix per list:

      sum_{i<j} cos(x_i, x_j) = (|s|^2 - n) / 2,
      ILD = 1 - (|s|^2 - n) / (n (n - 1)).

  Latent vectors can point in opposite directions, so ILD is in [0, 2] (not [0, 1] as for the
  binary content vectors of `crossfade.components.evaluator.list_metrics`, which scores the
  whole served list on genre/tag tokens). Slots are compared by position: a track consumed
  twice in one list adds a zero-distance pair. A list with fewer than two consumed slots has no
  pair and is NaN; callers average over the lists that have a value.

* Genre entropy (`genre_entropy`): the Shannon entropy in bits of the (optionally weighted)
  genre distribution of the consumed plays, H = -sum_g p_g log2 p_g with p_g = W_g / sum_h W_h
  (W_g the total weight of plays of genre g; 0 log 0 = 0). It is 0 when every play is one
  genre and log2(num_genres) when all genres are equally heard. It pools plays, so it measures
  the diversity of the whole population's consumption, not of one listener's.

* Generalist-Specialist score (`generalist_specialist`), after Anderson et al. 2020,
  "Algorithmic effects on the diversity of consumption on Spotify" (WWW '20). For a user u with
  consumed tracks i, weights w_i (play counts by default), unit vectors v_i = x_i / |x_i| and
  centre mu_u = sum_i w_i v_i / sum_i w_i:

      GS(u) = (1 / sum_i w_i) sum_i w_i cos(v_i, mu_u).

  Because the v_i are unit vectors, sum_i w_i v_i . mu_u / |mu_u| = sum_i w_i |mu_u|, so
  GS(u) = |mu_u|: the length of the weighted mean direction. That identity is how it is
  computed, and it shows that GS is in [0, 1] (a weighted mean cosine to the weighted centre is
  never negative): near 1 a specialist whose consumption sits in one region of taste space,
  lower a generalist. When mu_u is the zero vector (directions cancel exactly) cos is undefined
  and GS is 0, the limit of the identity. The paper embedded songs with word2vec trained on
  playlists, so its score measured diversity as the co-listening of the service's users saw it;
  here the simulator's latent track vectors are used instead, so the score measures the true
  diversity of a listener's diet under the generative model. The trade-off: scores are exact
  for the simulation but not comparable in scale with the paper's numbers.

Vectors with zero norm have no direction; they raise ValueError rather than silently counting
as "far from everything". All inputs are validated and computed in float64 without a Python
loop over plays, lists or users.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def intra_list_diversity(vectors: np.ndarray, consumed: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine distance of the consumed tracks of each served list.

    Args:
      vectors: [lists, k, d] finite float true track vectors of each served list, by slot.
      consumed: [lists, k] bool, True where the listener streamed that slot.

    Returns:
      [lists] float64 in [0, 2]; NaN where fewer than two slots of the list were consumed.

    Raises:
      ValueError: on wrong shapes or dtypes, non-finite vectors, or a consumed slot whose vector
        has zero norm (the message names the list and slot).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    consumed = np.asarray(consumed)
    if vectors.ndim != 3:
        raise ValueError(f"vectors must be [lists, k, d], got shape {vectors.shape}")
    if consumed.shape != vectors.shape[:2]:
        raise ValueError(f"consumed has shape {consumed.shape}, expected {vectors.shape[:2]}")
    if consumed.dtype != np.bool_:
        # A 0/1 int mask would work, but a float mask (probabilities) would silently not.
        raise ValueError(f"consumed must be a bool array, got dtype {consumed.dtype}")
    if not np.isfinite(vectors).all():
        raise ValueError("vectors must be finite")
    norms = np.linalg.norm(vectors, axis=2)
    bad = np.argwhere(consumed & (norms == 0.0))
    if len(bad):
        raise ValueError(f"vectors[{bad[0][0]}, {bad[0][1]}] is consumed but has zero norm")
    # Unconsumed slots get weight 0 (and norm 1 to avoid 0/0; their value is never used).
    unit = vectors / np.where(consumed, norms, 1.0)[:, :, None]
    total = np.einsum("lk,lkd->ld", consumed.astype(np.float64), unit)
    n = consumed.sum(axis=1).astype(np.float64)
    pairs = n * (n - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cos = (np.einsum("ld,ld->l", total, total) - n) / pairs
    # Rounding can push an all-identical list a hair below 0; the metric's range is [0, 2].
    return np.where(n >= 2, np.clip(1.0 - mean_cos, 0.0, 2.0), np.nan)


def _checked_weights(weights: np.ndarray | None, shape: tuple) -> np.ndarray:
    """float64 weights of the given shape (ones when None), finite and non-negative."""
    if weights is None:
        return np.ones(shape, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != shape:
        raise ValueError(f"weights has shape {weights.shape}, expected {shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return weights


def _checked_indices(name: str, values: np.ndarray, size: int | None = None) -> np.ndarray:
    """A 1-D integer array, optionally with every entry in [0, size)."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D [n], got shape {values.shape}")
    if values.size and values.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {values.dtype}")
    values = values.astype(np.int64)
    if size is not None and values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{name} must be in [0, {size}), got range "
                         f"[{values.min()}, {values.max()}]")
    return values


def genre_entropy(genres: np.ndarray, num_genres: int,
                  weights: np.ndarray | None = None) -> float:
    """Shannon entropy in bits of the (weighted) genre distribution of consumed plays.

    Args:
      genres: [n] int genre index of each consumed play, in [0, num_genres).
      num_genres: number of genres, >= 1.
      weights: optional [n] finite non-negative weight per play (default 1 each).

    Returns:
      H in [0, log2(num_genres)]; 0.0 when there are no plays or the total weight is 0.
    """
    if num_genres < 1:
        raise ValueError(f"num_genres must be >= 1, got {num_genres}")
    genres = _checked_indices("genres", genres, num_genres)
    weights = _checked_weights(weights, genres.shape)
    mass = np.bincount(genres, weights=weights, minlength=num_genres)
    total = mass.sum()
    if total == 0.0:
        return 0.0
    p = mass[mass > 0] / total  # 0 log 0 = 0: absent genres add nothing
    # max(0, .): a single genre gives -0.0 or a rounding hair below zero.
    return max(0.0, float(-(p * np.log2(p)).sum()))


def generalist_specialist(users: np.ndarray, tracks: np.ndarray, track_vectors: np.ndarray,
                          weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Generalist-Specialist score per user (Anderson et al. 2020), on true track vectors.

    Args:
      users: [n] int user id of each consumed play (any integers).
      tracks: [n] int track index of each play, a row of ``track_vectors``.
      track_vectors: [num_tracks, d] finite float true latent vectors. Only played tracks need
        a nonzero norm.
      weights: optional [n] finite non-negative weight per play (default 1: a play per row, so
        repeated (user, track) pairs add up as play counts).

    Returns:
      (user_ids, scores): [u] sorted unique user ids and [u] float64 GS = |mu_u| in [0, 1].
      A user whose total weight is 0 has no centre and gets NaN.

    Raises:
      ValueError: on mismatched shapes, bad indices or weights, or a played track whose vector
        has zero norm (the message names the track index).
    """
    users = _checked_indices("users", users)
    track_vectors = np.asarray(track_vectors, dtype=np.float64)
    if track_vectors.ndim != 2:
        raise ValueError(f"track_vectors must be [num_tracks, d], got {track_vectors.shape}")
    tracks = _checked_indices("tracks", tracks, len(track_vectors))
    if tracks.shape != users.shape:
        raise ValueError(f"tracks has shape {tracks.shape}, users {users.shape}")
    weights = _checked_weights(weights, users.shape)
    user_ids, user_row = np.unique(users, return_inverse=True)
    played, track_col = np.unique(tracks, return_inverse=True)
    unit = _unit_vectors(track_vectors, played)
    # A sparse [users, played tracks] weight matrix sums repeated pairs and keeps memory at
    # O(distinct pairs + users * d) instead of gathering a [n, d] vector per play.
    mass = sp.csr_matrix((weights, (user_row, track_col)), shape=(len(user_ids), len(played)))
    centre_sum = mass @ unit
    total = np.asarray(mass.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.linalg.norm(centre_sum, axis=1) / total
    # min(., 1): a specialist's |mu_u| can round a hair above its bound.
    return user_ids, np.where(total > 0, np.minimum(scores, 1.0), np.nan)


def _unit_vectors(track_vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """[len(rows), d] unit vectors of the given catalogue rows; zero norms are an error."""
    chosen = track_vectors[rows]
    if not np.isfinite(chosen).all():
        raise ValueError("track_vectors of played tracks must be finite")
    norms = np.linalg.norm(chosen, axis=1)
    zero = np.flatnonzero(norms == 0.0)
    if len(zero):
        raise ValueError(f"track_vectors[{rows[zero[0]]}] has zero norm: a played track "
                         "needs a direction in taste space")
    return chosen / norms[:, None]

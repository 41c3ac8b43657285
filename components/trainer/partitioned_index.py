"""A partitioned (inverted-file) index over candidate embeddings, searched with stock ops.

Brute force scores every catalogue track, [B, D] x [D, C]: exact, and linear in C (about
13 ms for a top-100 over 1M x 64 float32 on one core here). The index splits the catalogue
into P partitions by spherical k-means on the candidate embeddings. A query scores the P
centroids, keeps its `probe` best partitions and scores only their members: at most
probe x M tracks, M the partition capacity. Stock ops only (MatMul, TopKV2, GatherV2,
BatchMatMulV2, SelectV2; serving/runtime_check replays them in TF's C++ runtime), so the stock
tensorflow/serving image serves it as it is, which ScaNN's custom ops are not
(tensorflow/recommenders #216).

What a model stores (as variables, never graph constants):

  centroids  [P, D] float32, unit rows (a partition's members' normalised mean)
  members    [P, M] int32 catalogue rows, each partition's in ascending order, then PADDING

Capacity. k-means partitions are unbalanced, and a padded layout pads every partition to the
largest, so assignment is capped: M = ceil(capacity_factor x C / P) and the table holds at
most about capacity_factor x C entries. Each row goes to the nearest centroid with room,
the rows with the most to lose from a worse choice first (the gap between their best and
second-best centroid). A row whose CHOICES best centroids are all full takes the nearest
with room; there always is one, since P x M >= C.

Contracts:
* every catalogue row is in exactly one partition;
* with probe = P the candidates are the whole catalogue, so the top-k of their scores is
  brute force's (the same dot products; the summation order may differ by rounding);
* the build is deterministic for a seed.
"""
import dataclasses
import math
from typing import Optional

import numpy as np
import tensorflow as tf

PADDING = -1  # `members` entry after a partition's last member
CAPACITY_FACTOR = 1.125  # partition capacity over the mean partition size
KMEANS_ITERATIONS = 10
SAMPLE_PER_PARTITION = 64  # k-means runs on a sample of this many rows per partition
CHOICES = 8  # nearest centroids a row may take before the nearest with room
_CHUNK_ENTRIES = 1 << 24  # rows x centroids scored at once (64 MB of float32)


@dataclasses.dataclass(frozen=True)
class Partitions:
    """centroids [P, D] float32 and members [P, M] int32 (see the module docstring)."""

    centroids: np.ndarray
    members: np.ndarray

    @property
    def num_partitions(self) -> int:
        return self.members.shape[0]

    @property
    def capacity(self) -> int:
        return self.members.shape[1]


def default_partitions(catalogue_size: int) -> int:
    """4 sqrt(C) partitions (FAISS's rule of thumb is 4 to 16 sqrt(C)): at 1M clustered
    tracks, 4,000 partitions reach recall@100 0.955 scoring 9,024 tracks where 1,000 need
    72,000 for 0.963 (bench/index_bench.py, README "Catalogues of millions"); scoring the
    centroids costs a probe of few partitions' worth of rows."""
    return max(1, min(catalogue_size, round(4 * math.sqrt(catalogue_size))))


def build(embeddings: np.ndarray, num_partitions: Optional[int] = None, seed: int = 0,
          capacity_factor: float = CAPACITY_FACTOR,
          iterations: int = KMEANS_ITERATIONS) -> Partitions:
    """Partitions of `embeddings` [C, D] (unit rows): `num_partitions` (default
    `default_partitions(C)`, at most C) capped at ceil(capacity_factor x C / P) members."""
    embeddings = np.asarray(embeddings, np.float32)
    size = len(embeddings)
    if embeddings.ndim != 2 or size == 0:
        raise ValueError(f"embeddings must be a non-empty [C, D] matrix, got shape "
                         f"{embeddings.shape}")
    if capacity_factor < 1:
        raise ValueError(f"capacity_factor must be at least 1, got {capacity_factor}")
    count = min(num_partitions or default_partitions(size), size)
    if count < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    rng = np.random.default_rng(seed)
    centroids = _kmeans(embeddings, count, rng, iterations)
    capacity = math.ceil(capacity_factor * size / count)
    assignment = _capped_assignment(embeddings, centroids, capacity)
    return Partitions(centroids=_means(embeddings, assignment, centroids),
                      members=_member_table(assignment, count, capacity))


def _nearest(embeddings: np.ndarray, centroids: np.ndarray, n: int) -> np.ndarray:
    """[C, n] each row's n best centroids by dot product, best first (ties: lower index,
    as TopKV2 orders them). TensorFlow's MatMul and TopKV2 over chunks: numpy's argpartition
    over a [10M, 3,162] score matrix takes minutes."""
    chunk = max(1, _CHUNK_ENTRIES // len(centroids))
    centroids = tf.constant(centroids)
    return np.concatenate([
        tf.math.top_k(tf.matmul(embeddings[start:start + chunk], centroids, transpose_b=True),
                      k=n).indices.numpy()
        for start in range(0, len(embeddings), chunk)]).astype(np.int64)


def _means(embeddings: np.ndarray, assignment: np.ndarray,
           previous: np.ndarray) -> np.ndarray:
    """Normalised mean of each centroid's rows; a centroid without rows keeps `previous`."""
    sums = np.zeros_like(previous)
    np.add.at(sums, assignment, embeddings)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.where(norms > 0, sums / np.maximum(norms, 1e-12), previous).astype(np.float32)


def _kmeans(embeddings: np.ndarray, count: int, rng: np.random.Generator,
            iterations: int) -> np.ndarray:
    """Spherical k-means (Lloyd on cosine) on a sample of SAMPLE_PER_PARTITION rows per
    centroid, from k-means++ seeds; an emptied centroid restarts at a random sampled row, so
    no partition is left dead."""
    sample_size = min(len(embeddings), SAMPLE_PER_PARTITION * count)
    sample = embeddings[np.sort(rng.choice(len(embeddings), sample_size, replace=False))]
    centroids = _kmeans_plus_plus(sample, count, rng)
    for _ in range(iterations):
        assignment = _nearest(sample, centroids, 1)[:, 0]
        centroids = _means(sample, assignment, centroids)
        empty = np.bincount(assignment, minlength=count) == 0
        centroids[empty] = sample[rng.choice(sample_size, int(empty.sum()))]
    return centroids


def _kmeans_plus_plus(sample: np.ndarray, count: int,
                      rng: np.random.Generator) -> np.ndarray:
    """`count` seeds from `sample`, each drawn with probability proportional to its squared
    distance from the nearest seed so far (Arthur and Vassilvitskii 2007): random seeds
    often put two in one cluster and none in another, which a capped partition cannot
    absorb (its overflow lands in a neighbour's partition)."""
    chosen = [int(rng.integers(len(sample)))]
    closest = (sample @ sample[chosen[0]]).astype(np.float64)  # best cosine to a seed
    for _ in range(count - 1):
        distance = np.maximum(2.0 - 2.0 * closest, 0.0)  # squared, for unit rows
        total = distance.sum()
        row = (int(rng.choice(len(sample), p=distance / total)) if total > 0
               else int(rng.integers(len(sample))))
        chosen.append(row)
        closest = np.maximum(closest, sample @ sample[row])
    return sample[chosen].copy()


def _capped_assignment(embeddings: np.ndarray, centroids: np.ndarray,
                       capacity: int) -> np.ndarray:
    """[C] each row's partition, at most `capacity` rows each (see the module docstring)."""
    count = len(centroids)
    choices = _nearest(embeddings, centroids, min(CHOICES, count))
    first = np.einsum("cd,cd->c", embeddings, centroids[choices[:, 0]])
    second = (np.einsum("cd,cd->c", embeddings, centroids[choices[:, 1]])
              if choices.shape[1] > 1 else first)
    priority = np.argsort(second - first, kind="stable")  # biggest loss first
    assignment = np.full(len(embeddings), -1, np.int64)
    room = np.full(count, capacity, np.int64)
    for column in range(choices.shape[1]):
        rows = priority[assignment[priority] < 0]
        wanted = choices[rows, column]
        by_partition = np.argsort(wanted, kind="stable")  # keeps priority order inside
        wanted = wanted[by_partition]
        queue_position = np.arange(len(wanted)) - np.searchsorted(wanted, wanted)
        accepted = queue_position < room[wanted]
        assignment[rows[by_partition[accepted]]] = wanted[accepted]
        room -= np.bincount(wanted[accepted], minlength=count)
    for row in np.flatnonzero(assignment < 0):  # few: all CHOICES best were full
        scores = np.where(room > 0, centroids @ embeddings[row], -np.inf)
        assignment[row] = int(np.argmax(scores))
        room[assignment[row]] -= 1
    return assignment


def _member_table(assignment: np.ndarray, count: int, capacity: int) -> np.ndarray:
    """[P, capacity] int32: each partition's rows ascending, then PADDING."""
    order = np.argsort(assignment, kind="stable")  # rows ascending within a partition
    partition = assignment[order]
    slot = np.arange(len(order)) - np.searchsorted(partition, partition)
    members = np.full((count, capacity), PADDING, np.int32)
    members[partition, slot] = order
    return members


def probed_rows(queries: tf.Tensor, centroids: tf.Tensor, members: tf.Tensor,
                probe: tf.Tensor, bounds: Optional[tf.Tensor] = None) -> tf.Tensor:
    """[B, max(probe) x M] catalogue rows of each query's `probe` [B] (1..P) best
    partitions by centroid score (plus `bounds` [P], a per-partition lift), PADDING in a
    partition's free slots and past a row's own probe (so a row's candidates never depend
    on the probes of the rows batched with it)."""
    scores = tf.matmul(queries, centroids, transpose_b=True)
    if bounds is not None:
        scores += bounds[None, :]
    # The 1 keeps k valid for an empty batch (reduce_max of nothing is the least int).
    probed = tf.math.top_k(scores, k=tf.reduce_max(tf.concat([probe, [1]], 0))).indices
    rows = tf.gather(members, probed)  # [B, p, M]
    within = tf.range(tf.shape(probed)[1])[None, :] < probe[:, None]
    rows = tf.where(within[:, :, None], rows, tf.constant(PADDING, rows.dtype))
    return tf.reshape(rows, [tf.shape(queries)[0], -1])


def candidate_scores(queries: tf.Tensor, embeddings: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """[B, N] dot products of `queries` [B, D] with catalogue `rows` [B, N] of `embeddings`
    [C, D]; -inf at PADDING."""
    vectors = tf.gather(embeddings, tf.maximum(rows, 0))  # [B, N, D]
    scores = tf.linalg.matvec(vectors, queries)
    return tf.where(rows >= 0, scores, tf.constant(-np.inf, scores.dtype))

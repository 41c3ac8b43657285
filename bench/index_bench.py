"""Benchmark: a top-K by brute force against the partitioned index, bare, in this process.

    python -m bench.index_bench [--catalogues 100000,1000000] [--probes 1,2,4,8,16,32]
                                [--data clustered,isotropic] [--k 100] [--queries 300]
                                [--requests 300] [--threads 0] [--partitions 0]
                                [--seed 0]

For each catalogue size and data kind it makes C unit embeddings of 64 dimensions, builds
`crossfade.components.trainer.partitioned_index` partitions (`--partitions`, default
`default_partitions(C)`) and
times one query at a time through two TensorFlow functions over the same variables, as a
served model holds them:

* brute force: `top_k(query @ embeddings^T, k)`, what every signature does today;
* partitioned: `probed_rows`, `candidate_scores`, `top_k` at each `--probes` count.

It prints the build time, partitions, capacity and padding, and for each method p50/p99
latency of `--requests` single-query calls (after warm-up) and recall@K against exact over
`--queries` queries (the share of the exact top K the method returns). Prints figures only;
never fails on a slow or inexact result.

What is real and what is not. The ops, variables and shapes are the served ones; the
embeddings are synthetic:

* `clustered`: C / TRACKS_PER_CLUSTER centres, uniform on the sphere; a track is its
  centre plus Gaussian noise of norm about CLUSTER_SPREAD, normalised; a query is a random
  track plus noise of norm about QUERY_SPREAD, normalised. Trained candidate embeddings
  cluster (by genre, artist, audience); how much is what this stands in for. (The issue asks
  for a trained model's embeddings grown to 1M/10M: that comes with the index in the served
  model.)
* `isotropic`: tracks and queries uniform on the sphere, the worst case: no structure for
  partitions to follow, so the recall at a probe count is the share of the catalogue probed.

This is the scoring step alone: the served model adds the Transform layer, the query
tower, the server and the network (bench/serving_bench.py measures those).
"""
import argparse
import os
import sys
import time
from typing import Callable, Dict, List

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads, below

EMBEDDING_DIM = 64
TRACKS_PER_CLUSTER = 100
CLUSTER_SPREAD = 0.5  # noise norm around a cluster centre (cosine to it about 0.89)
QUERY_SPREAD = 0.5  # noise norm around the track a query is drawn from
WARMUP_CALLS = 20
DATA_KINDS = ("clustered", "isotropic")


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _noise(rng: np.random.Generator, shape, norm: float) -> np.ndarray:
    return norm * rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[-1])


def synthetic(kind: str, size: int, queries: int, seed: int):
    """(embeddings [size, D], queries [queries, D]) of `kind` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    shape = (size, EMBEDDING_DIM)
    if kind == "isotropic":
        return (_unit(rng.standard_normal(shape, dtype=np.float32)),
                _unit(rng.standard_normal((queries, EMBEDDING_DIM), dtype=np.float32)))
    centres = _unit(rng.standard_normal((max(1, size // TRACKS_PER_CLUSTER), EMBEDDING_DIM),
                                        dtype=np.float32))
    embeddings = np.empty(shape, np.float32)
    for start in range(0, size, 1_000_000):  # in blocks: 10M x 64 temporaries are 2.6 GB
        stop = min(size, start + 1_000_000)
        block = centres[rng.integers(0, len(centres), stop - start)]
        embeddings[start:stop] = _unit(block + _noise(rng, block.shape, CLUSTER_SPREAD))
    seeds = embeddings[rng.integers(0, size, queries)]
    return embeddings, _unit(seeds + _noise(rng, seeds.shape, QUERY_SPREAD))


def _searches(embeddings: np.ndarray, partitions, k: int) -> Dict[str, Callable]:
    """{"brute": f(queries), "partitioned": f(queries, probe)} returning top-k rows."""
    import tensorflow as tf

    from crossfade.components.trainer import partitioned_index
    table = tf.Variable(embeddings, trainable=False)
    centroids = tf.Variable(partitions.centroids, trainable=False)
    members = tf.Variable(partitions.members, trainable=False)
    spec = tf.TensorSpec([None, EMBEDDING_DIM], tf.float32)

    @tf.function(input_signature=[spec])
    def brute(queries):
        return tf.math.top_k(tf.matmul(queries, table, transpose_b=True), k=k).indices

    @tf.function(input_signature=[spec, tf.TensorSpec([None], tf.int32)])
    def partitioned(queries, probe):
        rows = partitioned_index.probed_rows(queries, centroids.read_value(),
                                             members.read_value(), probe)
        scores = partitioned_index.candidate_scores(queries, table.read_value(), rows)
        top = tf.math.top_k(scores, k=k).indices
        return tf.gather(rows, top, batch_dims=1)

    return {"brute": brute, "partitioned": partitioned}


def _latencies_ms(call: Callable, queries: np.ndarray, requests: int) -> np.ndarray:
    for i in range(WARMUP_CALLS):
        call(queries[i % len(queries)][None, :])
    times = []
    for i in range(requests):
        started = time.perf_counter()
        call(queries[i % len(queries)][None, :]).numpy()
        times.append(time.perf_counter() - started)
    return 1000 * np.array(times)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e)
                          for f, e in zip(found, exact, strict=True)]))


def _batched(call: Callable, queries: np.ndarray, *args) -> np.ndarray:
    return np.concatenate([call(queries[i:i + 50], *[a[i:i + 50] for a in args]).numpy()
                           for i in range(0, len(queries), 50)])


def measure(kind: str, size: int, probes: List[int], args) -> None:
    from crossfade.components.trainer import partitioned_index
    embeddings, queries = synthetic(kind, size, args.queries, args.seed)
    started = time.perf_counter()
    partitions = partitioned_index.build(embeddings, args.partitions or None, seed=args.seed)
    built = time.perf_counter() - started
    stored = int((partitions.members != partitioned_index.PADDING).sum())
    print(f"\n{kind}, {size:,} tracks x {EMBEDDING_DIM}: {partitions.num_partitions} "
          f"partitions of capacity {partitions.capacity} (padding "
          f"{partitions.members.size / stored - 1:.1%}), built in {built:.1f} s")
    search = _searches(embeddings, partitions, args.k)
    exact = _batched(search["brute"], queries)
    brute = _latencies_ms(search["brute"], queries, args.requests)
    print(f"  {'method':<22}{'p50 ms':>8}{'p99 ms':>8}{'recall@' + str(args.k):>12}"
          f"{'scored':>12}")
    print(f"  {'brute force':<22}{np.percentile(brute, 50):8.2f}"
          f"{np.percentile(brute, 99):8.2f}{1.0:12.3f}{size:12,}")
    for probe in [p for p in probes if p <= partitions.num_partitions]:
        def call(q, probe=probe):
            return search["partitioned"](q, np.full(len(q), probe, np.int32))
        found = _batched(call, queries)
        times = _latencies_ms(call, queries, args.requests)
        print(f"  {'partitioned, probe ' + str(probe):<22}{np.percentile(times, 50):8.2f}"
              f"{np.percentile(times, 99):8.2f}{_recall(found, exact):12.3f}"
              f"{probe * partitions.capacity:12,}")


def _ints(text: str) -> List[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogues", type=_ints, default=[100_000, 1_000_000])
    parser.add_argument("--probes", type=_ints, default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--data", default=",".join(DATA_KINDS))
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra-op threads (0: TensorFlow's default)")
    parser.add_argument("--partitions", type=int, default=0,
                        help="partitions (0: partitioned_index.default_partitions)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.data.split(",") if kind]
    unknown = sorted(set(kinds) - set(DATA_KINDS))
    if unknown:
        parser.error(f"--data: unknown kind(s) {unknown}; choose from {list(DATA_KINDS)}")
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    for size in args.catalogues:
        for kind in kinds:
            measure(kind, size, args.probes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

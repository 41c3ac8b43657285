"""Benchmark: recommend latency and throughput over gRPC on loopback, against the floor.

    python -m bench.serving_bench [--catalogues 10000,100000] [--ks 10,100]
                                  [--clients 1,8] [--recommend-clients 1]
                                  [--blend-clients 1] [--seconds 4] [--output DIR]
                                  [--index brute_force|partitioned]
                                  [--embeddings isotropic|clustered] [--probes 0,8,32]
                                  [--plot FILE.png]

For each catalogue size it exports a crossfade SavedModel with `crossfade.components.trainer.export`
— the real serving graph: Transform layer, query tower, matmul + top-k over the catalogue,
the `recommend` signature's exclusions and re-ranking, with its warmup requests — whose towers
are untrained (a tiny tf.Transform run supplies the vocabularies) and whose catalogue holds N
random unit embeddings of the model's dimension (64) under Spotify-style track URIs, with
titles and artists. Latency does not depend on what the weights are, only on their shapes.

It starts the local model server (`python -m crossfade.serving.commands serve`, batching on,
its defaults) in its own process, as TF Serving would be, and drives
`crossfade.serving.client.GrpcClient.predict` from 1 or 8 client threads, each sending one
request after another for `--seconds`:

* `serving_default` (every size, K and client count): the plain top-K;
* `recommend` (every size and K, with `--recommend-clients` threads): diversity
  `RECOMMEND_DIVERSITY` (greedy MMR over the top 200), explore `RECOMMEND_EXPLORE` (the
  sampler), the request's 5 recent tracks excluded, seed 0 (derived by the server per request);
* `blend` (every size and K, with `--blend-clients` threads): a group of two known listeners,
  one with the request's 5 recent tracks and one answered from their (stored) history, by
  the default strategy.

With `--index partitioned` every model also holds a partitioned index
(components/trainer/served_index.py, default partitions, its default probe calibrated as the
Trainer calibrates it, on requests drawn as the load draws them), and for each `--probes`
count (0: the model's default) at K=100 it times `recommend` at neutral controls searching
that many partitions (one client) and measures its recall@100 against every partition probed
(RECALL_REQUESTS requests). An index can only be as good as the embeddings let it:

* `isotropic` (default): N random unit vectors, the worst case for an index (no structure;
  recall is about the share of the catalogue searched);
* `clustered`: one centre per TRACKS_PER_CLUSTER tracks, each centre the untrained query
  tower's embedding of a request drawn as the load draws them, each track its centre plus
  Gaussian noise of norm CLUSTER_SPREAD, normalised: queries land near tracks, as a trained
  model's do. (A trained model's own embeddings grown to millions are the issue's ask; the
  Evaluator's `index_recall@100` measures the index on a trained model's eval queries.)

Both go through `predict` with the request builders of `crossfade.serving.signatures`, so the
two pay the same client-side cost and their ratio is the signature's. It prints p50/p99
latency, requests per second, the ratio to the floor (the bare `top_k(query @ catalogue^T)`
of one query, timed in this process with TensorFlow on the same embeddings) and, at 100k
tracks, K=100, one client, `recommend`'s p50/p99 against `serving_default`'s, and at 100k
tracks, K=50, one client, `blend`'s against `serving_default`'s. Before those, each model's
size on disk (and its graph's, saved_model.pb), how long after the server's start it was
ready (load and warmup; models load in turn) and the server's resident memory then; after
them, the server's peak resident memory; with probes, the index's targets at 1M and 10M
tracks (INDEX_TARGETS), and with `--plot` recall@100 against p99 latency as an image.
Prints figures only; never fails on a slow result.
"""
import argparse
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads, below

TARGET_P99_MS = 10.0  # single client, 100k tracks, K=100
TARGET_QPS = 400.0  # 8 clients, 100k tracks, K=100
RECOMMEND_DIVERSITY = 0.3
RECOMMEND_EXPLORE = 0.1
TARGET_RECOMMEND_P99_RATIO = 2.0  # recommend p99 / serving_default p99, 100k, K=100, 1 client
TARGET_SIZE, TARGET_K = 100_000, 100
TARGET_BLEND_K, TARGET_BLEND_P99_RATIO = 50, 2.0  # blend of 2 / serving_default, 1 client
RECENT_PER_REQUEST = 5
BRUTE_FORCE, PARTITIONED = "brute_force", "partitioned"
ISOTROPIC, CLUSTERED = "isotropic", "clustered"
TRACKS_PER_CLUSTER = 100  # clustered catalogues: one query-embedding centre per 100 tracks
CLUSTER_SPREAD = 0.5  # noise norm around a centre (cosine to it about 0.89)
EXACT_PROBE = 2 ** 30  # clamps to every partition: exact scoring
RECALL_REQUESTS = 200
# The index's targets (default probe, K=100, one client): p99 ms by catalogue size, at recall.
INDEX_TARGETS = {1_000_000: 5.0, 10_000_000: 25.0}
INDEX_TARGET_RECALL = 0.95
EMBEDDING_DIM = 64
USERS = [f"user-{i}" for i in range(200)]
_BASE62 = np.array(list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def track_ids(count: int, seed: int = 0) -> np.ndarray:
    """Spotify-style track URIs ("spotify:track:" + 22 base-62 characters), as in the
    simulator's catalogues: string length matters to the cost of gathering result ids."""
    rng = np.random.default_rng(seed)
    letters = _BASE62[rng.integers(0, len(_BASE62), (count, 22))]
    return np.array(["spotify:track:" + "".join(row) for row in letters], dtype=object)


RECENT_POOL = track_ids(5000)  # the bench catalogues start with these tracks


def _transform_output(work_dir: str):
    """A tf.Transform output over a few hand-made plays: vocabularies for the towers."""
    from crossfade.components.testing_data import analyze_and_transform, raw_play
    rows = [raw_play(USERS[i % len(USERS)], RECENT_POOL[i % 300],
                     history=[RECENT_POOL[(i + j) % 300] for j in range(1, 4)],
                     ts=1_700_000_000 + 3600 * i, artist=f"artist-{i % 40}",
                     genres=[f"genre-{i % 12}"])
            for i in range(2000)]
    _, transform_output = analyze_and_transform(rows, os.path.join(work_dir, "transform"))
    return transform_output


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _clustered(size: int, queries: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[size, D] tracks around the bench's own query embeddings (see the docstring)."""
    centres = queries[rng.integers(0, len(queries), size)]
    noise = rng.standard_normal(centres.shape).astype(np.float32)
    return _unit(centres + CLUSTER_SPREAD * noise / np.sqrt(centres.shape[1])).astype(
        np.float32)


def _query_embeddings(two_tower, transform_output, count: int,
                      rng: np.random.Generator) -> np.ndarray:
    """[count, D] the towers' embeddings of requests drawn as `load` draws them."""
    from crossfade.components.trainer import export
    from crossfade.components.trainer.catalogue_index import CatalogueIndex
    tiny = CatalogueIndex(ids=RECENT_POOL[:2], embeddings=np.eye(2, EMBEDDING_DIM,
                                                                 dtype=np.float32),
                          play_counts=np.ones(2, np.int64))
    module = export.RecommenderModule(two_tower, transform_output, tiny, default_k=1,
                                      max_k=100)
    users = np.array([USERS[i] for i in rng.integers(0, len(USERS), count)], dtype=object)
    recent = RECENT_POOL[rng.integers(0, len(RECENT_POOL), (count, RECENT_PER_REQUEST))]
    return module.query_embedding(users, recent.astype(object), np.zeros(count, np.int64),
                                  np.full(count, "", dtype=object))["embedding"].numpy()


def export_model(export_dir: str, catalogue_size: int, transform_output, seed: int = 0,
                 index: str = BRUTE_FORCE, embeddings: str = ISOTROPIC) -> None:
    """A crossfade SavedModel over `catalogue_size` catalogue embeddings of kind
    `embeddings`, ranking by brute force or through a partitioned `index`."""
    from crossfade.components import testing_data
    from crossfade.components.trainer import export, served_index, train
    from crossfade.components.trainer import model as model_lib
    from crossfade.components.trainer.catalogue_index import CatalogueIndex
    from crossfade.components.trainer.hyperparameters import Hyperparameters
    from crossfade.serving import warmup
    rng = np.random.default_rng(seed)
    counts = train.track_play_counts(transform_output)
    hp = Hyperparameters()
    ids = track_ids(catalogue_size)
    release_days = testing_data.synthetic_release_days(catalogue_size, rng)
    two_tower = model_lib.TwoTowerModel(
        train.vocabularies(transform_output), hp,
        train.sampling_probabilities(transform_output, counts),
        catalogue_row=train.catalogue_rows(transform_output, ids),
        catalogue_release_days=release_days)
    if embeddings == CLUSTERED:
        vectors = _clustered(catalogue_size, _query_embeddings(
            two_tower, transform_output, max(1, catalogue_size // TRACKS_PER_CLUSTER), rng),
            rng)
    else:
        vectors = _unit(rng.standard_normal((catalogue_size, hp.embedding_dim))).astype(
            np.float32)
    # Display names of a realistic length: `recommend` gathers them for every listed track.
    catalogue = CatalogueIndex(
        ids=ids, embeddings=vectors, play_counts=rng.zipf(1.5, catalogue_size).clip(
            max=10 ** 6),
        titles=np.array([f"Track number {i}" for i in range(catalogue_size)], dtype=object),
        artists=np.array([f"Artist {i % 5000}" for i in range(catalogue_size)], dtype=object),
        release_days=release_days)
    tables = None
    if index == PARTITIONED:
        two_tower.recency_bias.build(None)  # untrained: zero, as the bounds then are
        tables = served_index.build_tables(
            vectors, catalogue.content_only, release_days, two_tower.recency_bias.bias.numpy(),
            int(time.time()) // 86400, seed=seed)
    module = export.RecommenderModule(two_tower, transform_output, catalogue, default_k=10,
                                      max_k=100, index_tables=tables)
    if tables is not None:  # as the Trainer does, on queries drawn as the load draws them
        queries = _query_embeddings(two_tower, transform_output,
                                    served_index.CALIBRATION_QUERIES, rng)
        probe, recall = module.calibrate_index(
            queries, np.full(len(queries), int(time.time()) // 86400, np.int64))
        print(f"  {catalogue_size:,} tracks: {tables.partitions.num_partitions} partitions, "
              f"default probe {probe} (recall@100 {recall:.3f} on calibration queries)",
              flush=True)
    export.save(module, export_dir)
    warmup.write_warmup_requests(export_dir, USERS[:20],
                                 [list(ids[i:i + 2]) for i in range(20)], list(ids[:20]))


def _percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def floor_ms(export_dir: str, k: int, seconds: float) -> Dict[str, float]:
    """Latency of the bare matmul + top-k for one query against the catalogue."""
    import tensorflow as tf
    model = tf.saved_model.load(export_dir)
    catalogue = tf.constant(model.catalogue_embeddings.numpy())
    query = tf.constant(np.random.default_rng(1).standard_normal(
        (1, catalogue.shape[1])).astype(np.float32))

    @tf.function
    def scan(q):
        return tf.math.top_k(tf.matmul(q, catalogue, transpose_b=True), k=k)

    for _ in range(20):
        scan(query)
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        scan(query).indices.numpy()
        latencies.append((time.perf_counter() - started) * 1000)
    return {"p50": _percentile(latencies, 50), "p99": _percentile(latencies, 99),
            "qps": len(latencies) / seconds}


def _request(signature: str, user: str, recent: List[str], k: int,
             probe: Optional[int] = None) -> Dict[str, np.ndarray]:
    """One user's request to `signature` (SERVING_DEFAULT, RECOMMEND or BLEND, see the
    docstring); with `probe`, a `recommend` at neutral controls searching that many
    partitions."""
    from crossfade.serving import signatures
    if probe is not None:
        return signatures.recommend_controls_inputs([user], [recent], k, probe=probe)
    if signature == signatures.SERVING_DEFAULT:
        return signatures.recommend_inputs([user], [recent], k)
    if signature == signatures.BLEND:
        friend = USERS[(USERS.index(user) + 1) % len(USERS)]
        return signatures.blend_inputs([[user, friend]], [[recent, None]], k)
    return signatures.recommend_controls_inputs(
        [user], [recent], k, exclude=[recent], diversity=RECOMMEND_DIVERSITY,
        explore=RECOMMEND_EXPLORE)


def load(target: str, model: str, k: int, clients: int, seconds: float,
         signature: str, probe: Optional[int] = None) -> Dict[str, float]:
    """p50/p99 latency (ms) and requests/s of `clients` threads calling `signature` (with
    `probe`: `recommend` at that probe, `_request`)."""
    from crossfade.serving.client import GrpcClient
    client = GrpcClient(target, model_name=model, timeout_s=10.0)
    for index in range(20):  # connection set-up and the server's first batches
        client.predict(signature, _request(signature, USERS[index], [RECENT_POOL[index]], k,
                                           probe))
    latencies: List[List[float]] = [[] for _ in range(clients)]
    errors: List[int] = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(slot: int) -> None:
        rng = np.random.default_rng(slot)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            user = USERS[int(rng.integers(len(USERS)))]
            recent = list(RECENT_POOL[rng.integers(0, len(RECENT_POOL), RECENT_PER_REQUEST)])
            began = time.perf_counter()
            try:
                client.predict(signature, _request(signature, user, recent, k, probe))
            except Exception:  # noqa: BLE001 -- counted and reported
                errors[slot] += 1
                continue
            latencies[slot].append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    client.close()
    every = [value for values in latencies for value in values]
    return {"p50": _percentile(every, 50), "p99": _percentile(every, 99),
            "qps": len(every) / elapsed, "requests": len(every), "errors": sum(errors)}


def index_recall(target: str, model: str, k: int, probe: int) -> float:
    """Mean share of `recommend`'s exact top k (every partition probed) that a search of
    `probe` partitions returns, over RECALL_REQUESTS requests drawn as `load` draws them."""
    from crossfade.serving import signatures
    from crossfade.serving.client import GrpcClient
    client = GrpcClient(target, model_name=model, timeout_s=30.0)
    rng = np.random.default_rng(7)
    recalls = []
    for _ in range(RECALL_REQUESTS):
        user = USERS[int(rng.integers(len(USERS)))]
        recent = list(RECENT_POOL[rng.integers(0, len(RECENT_POOL), RECENT_PER_REQUEST)])
        found, exact = (set(client.predict(signatures.RECOMMEND, _request(
            signatures.RECOMMEND, user, recent, k, p))[0]["track_ids"][0].tolist())
            for p in (probe, EXACT_PROBE))
        recalls.append(len(found & exact) / len(exact))
    client.close()
    return float(np.mean(recalls))


def _wait_ready(target: str, models: List[str], process: subprocess.Popen,
                timeout: float = 1800.0) -> Dict[str, float]:
    """Seconds from now until each of `models` is AVAILABLE (the server loads them in
    turn: each figure includes the ones before it)."""
    from crossfade.serving.client import GrpcClient, ServingClientError
    began = time.monotonic()
    deadline = began + timeout
    ready = {}
    for model in models:
        client = GrpcClient(target, model_name=model, timeout_s=2.0)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the model server exited with {process.returncode}")
            try:
                if any(s.state == "AVAILABLE" for s in client.model_status()):
                    break
            except ServingClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the model server did not become ready")
            time.sleep(0.5)
        client.close()
        ready[model] = time.monotonic() - began
    return ready


def _memory_mb(pid: int) -> Dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), MB."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


def _disk_mb(export_dir: str) -> Dict[str, float]:
    """The SavedModel's size on disk and its graph's (saved_model.pb), MB."""
    total = sum(os.path.getsize(os.path.join(folder, name))
                for folder, _, names in os.walk(export_dir) for name in names)
    return {"disk": total / 2 ** 20,
            "graph": os.path.getsize(os.path.join(export_dir, "saved_model.pb")) / 2 ** 20}


@dataclasses.dataclass
class Row:
    """One measurement: a signature at a catalogue size, K and client count."""

    size: int
    k: int
    clients: int
    signature: str
    result: Dict[str, float]
    floor: Dict[str, float]
    recall: Optional[float] = None  # probe rows: recall@K against every partition probed


@dataclasses.dataclass
class Served:
    """One served model: its size on disk and what loading it took."""

    size: int
    disk: Dict[str, float]  # _disk_mb
    ready_s: float  # from the server's start, models loading in turn
    memory: Dict[str, float]  # the server's _memory_mb once every model was loaded


def _measure(target: str, work: str, models: Dict[int, str], ks: List[int],
             client_counts: List[int], recommend_clients: List[int],
             blend_clients: List[int], seconds: float, probes: List[int]) -> List[Row]:
    from crossfade.serving import signatures
    plan = ([(signatures.SERVING_DEFAULT, clients) for clients in client_counts]
            + [(signatures.RECOMMEND, clients) for clients in recommend_clients]
            + [(signatures.BLEND, clients) for clients in blend_clients])
    rows = []
    for size, name in models.items():
        export_dir = os.path.join(work, "models", name, "1")
        for k in ks:
            floor = floor_ms(export_dir, k, min(seconds, 2.0))
            for signature, clients in plan:
                result = load(target, name, k, clients, seconds, signature)
                rows.append(Row(size, k, clients, signature, result, floor))
                print(f"  measured {signature}, {size:,} tracks, K={k}, {clients} client(s): "
                      f"{result['qps']:.0f} req/s", flush=True)
            for probe in probes if k == TARGET_K else []:
                result = load(target, name, k, 1, seconds, signatures.RECOMMEND, probe)
                recall = index_recall(target, name, k, probe)
                rows.append(Row(size, k, 1, f"probe {probe or 'default'}", result, floor,
                                recall))
                print(f"  measured probe {probe}, {size:,} tracks: recall@{k} {recall:.3f}",
                      flush=True)
    return rows


def _print_table(rows: List[Row], index: str, embeddings: str) -> None:
    from crossfade.components.cpu import local_cores
    print(f"\ncrossfade serving benchmark: local model server, gRPC on loopback, "
          f"{local_cores()} cores;\nmodel: crossfade export (untrained towers, {embeddings} "
          f"{EMBEDDING_DIM}-d catalogue, {index}); recommend: diversity "
          f"{RECOMMEND_DIVERSITY}, explore {RECOMMEND_EXPLORE}, {RECENT_PER_REQUEST} "
          f"exclusions; floor: "
          f"top_k(query @ catalogue^T), one query, in process")
    header = (f"{'signature':<15} {'tracks':>8} {'K':>4} {'clients':>7} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'req/s':>8} {'errors':>6} {'floor p50':>9} {'floor p99':>9} "
              f"{'p50/floor':>9} {'recall':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        result, floor = row.result, row.floor
        print(f"{row.signature:<15} {row.size:>8,} {row.k:>4} {row.clients:>7} "
              f"{result['p50']:>8.2f} {result['p99']:>8.2f} {result['qps']:>8.0f} "
              f"{result['errors']:>6} {floor['p50']:>9.3f} {floor['p99']:>9.3f} "
              f"{result['p50'] / floor['p50']:>9.1f} "
              f"{'' if row.recall is None else format(row.recall, '.3f'):>6}")


def _print_targets(rows: List[Row]) -> None:
    from crossfade.serving import signatures
    at = {(row.signature, row.clients): row.result for row in rows
          if row.size == TARGET_SIZE and row.k == TARGET_K}
    plain = at.get((signatures.SERVING_DEFAULT, 1))
    if plain:
        met = "met" if plain["p99"] <= TARGET_P99_MS else "MISSED"
        print(f"Target, 100k tracks, K=100, 1 client: p99 <= {TARGET_P99_MS:.0f} ms: "
              f"{plain['p99']:.2f} ms, {met}")
    crowd = at.get((signatures.SERVING_DEFAULT, 8))
    if crowd:
        met = "met" if crowd["qps"] >= TARGET_QPS else "MISSED"
        print(f"Target, 100k tracks, K=100, 8 clients: >= {TARGET_QPS:.0f} req/s: "
              f"{crowd['qps']:.0f} req/s, {met}")
    controlled = at.get((signatures.RECOMMEND, 1))
    if plain and controlled:
        ratio = {q: controlled[q] / plain[q] for q in ("p50", "p99")}
        met = "met" if ratio["p99"] <= TARGET_RECOMMEND_P99_RATIO else "MISSED"
        print(f"Target, 100k tracks, K=100, 1 client: recommend (diversity "
              f"{RECOMMEND_DIVERSITY}, explore {RECOMMEND_EXPLORE}) p99 <= "
              f"{TARGET_RECOMMEND_P99_RATIO:.0f}x serving_default p99: recommend p50 "
              f"{controlled['p50']:.2f} / p99 {controlled['p99']:.2f} ms, serving_default p50 "
              f"{plain['p50']:.2f} / p99 {plain['p99']:.2f} ms, ratio p50 {ratio['p50']:.2f}x"
              f" / p99 {ratio['p99']:.2f}x, {met}")


def _print_blend_target(rows: List[Row]) -> None:
    from crossfade.serving import signatures
    at = {row.signature: row.result for row in rows if row.size == TARGET_SIZE
          and row.k == TARGET_BLEND_K and row.clients == 1}
    plain, blend = at.get(signatures.SERVING_DEFAULT), at.get(signatures.BLEND)
    if plain and blend:
        ratio = blend["p99"] / plain["p99"]
        met = "met" if ratio <= TARGET_BLEND_P99_RATIO else "MISSED"
        print(f"Target, 100k tracks, K={TARGET_BLEND_K}, 1 client: blend of 2 p99 <= "
              f"{TARGET_BLEND_P99_RATIO:.0f}x serving_default p99: blend p50 {blend['p50']:.2f} "
              f"/ p99 {blend['p99']:.2f} ms, serving_default p50 {plain['p50']:.2f} / p99 "
              f"{plain['p99']:.2f} ms, ratio p99 {ratio:.2f}x, {met}")


def _print_models(served: List[Served], memory: Dict[str, float]) -> None:
    print("\nmodels as served (ready: from the server's start, load and warmup, models in "
          "turn)")
    header = (f"{'tracks':>11} {'disk MB':>9} {'graph MB':>9} {'ready s':>8} "
              f"{'server RSS MB':>14}")
    print(header)
    print("-" * len(header))
    for model in served:
        print(f"{model.size:>11,} {model.disk['disk']:>9.0f} {model.disk['graph']:>9.1f} "
              f"{model.ready_s:>8.1f} {model.memory['VmRSS']:>14.0f}")
    print(f"server peak RSS {memory['VmHWM']:.0f} MB, {memory['VmRSS']:.0f} MB at the end")


def _print_index_targets(rows: List[Row]) -> None:
    """The partitioned index's targets, at each size's default probe."""
    for size, p99_ms in INDEX_TARGETS.items():
        for row in rows:
            if row.size == size and row.signature == "probe default":
                met = ("met" if row.result["p99"] <= p99_ms and row.recall >= INDEX_TARGET_RECALL
                       else "MISSED")
                print(f"Target, {size:,} tracks, K={row.k}, 1 client: p99 <= {p99_ms:.0f} ms at "
                      f"recall@{row.k} >= {INDEX_TARGET_RECALL}: p99 {row.result['p99']:.2f} ms"
                      f", recall {row.recall:.3f}, {met}")


def _plot(rows: List[Row], path: str, embeddings: str) -> None:
    """Recall@100 (x) against p99 latency (y), a line per catalogue size over its probes."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    figure, axes = pyplot.subplots(figsize=(6.4, 4.2))
    for size in sorted({row.size for row in rows if row.recall is not None}):
        points = sorted((row.recall, row.result["p99"]) for row in rows
                        if row.size == size and row.recall is not None)
        axes.plot(*zip(*points, strict=True), marker="o", label=f"{size:,} tracks")
    axes.set_xlabel("recall@100 against exact scoring")
    axes.set_ylabel("recommend p99 latency, ms (1 client)")
    axes.set_yscale("log")
    axes.set_title(f"Partitioned index through the model server ({embeddings} catalogue)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _numbers(text: str) -> List[int]:
    return [int(value) for value in text.split(",") if value]


def _run(args: argparse.Namespace, probes: List[int], work: str
         ) -> Tuple[List[Row], List[Served], Dict[str, float]]:
    """Exports the models under `work`, serves them and measures (see the docstring):
    (rows, the models as served, the server's memory at the end)."""
    sizes = _numbers(args.catalogues)

    started = time.perf_counter()
    transform_output = _transform_output(work)
    models = {}
    for size in sizes:
        name = f"bench{size}"
        export_model(os.path.join(work, "models", name, "1"), size, transform_output,
                     index=args.index, embeddings=args.embeddings)
        models[size] = name
    print(f"Exported {len(sizes)} models in {time.perf_counter() - started:.1f} s under {work}",
          flush=True)

    import portpicker
    port = portpicker.pick_unused_port()
    config = os.path.join(work, "models.config")
    with open(config, "w") as handle:
        handle.write("model_config_list {\n" + "".join(
            f'  config {{ name: "{name}" base_path: "{os.path.join(work, "models", name)}" '
            f'model_platform: "tensorflow" }}\n' for name in models.values()) + "}\n")
    log_path = os.path.join(work, "server.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "crossfade.serving.commands", "serve",
             "--model-config-file", config, "--port", str(port), "--rest-port", "0"],
            stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        ready = _wait_ready(target, list(models.values()), server)
        memory = _memory_mb(server.pid)
        served = [Served(size, _disk_mb(os.path.join(work, "models", name, "1")), ready[name],
                         memory) for size, name in models.items()]
        rows = _measure(target, work, models, _numbers(args.ks), _numbers(args.clients),
                        _numbers(args.recommend_clients), _numbers(args.blend_clients),
                        args.seconds, probes)
        memory = _memory_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return rows, served, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogues", default="10000,100000")
    parser.add_argument("--ks", default="10,100")
    parser.add_argument("--clients", default="1,8", help="serving_default client threads")
    parser.add_argument("--recommend-clients", default="1",
                        help="recommend client threads (empty: skip recommend)")
    parser.add_argument("--blend-clients", default="1",
                        help="blend client threads (empty: skip blend)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--index", choices=(BRUTE_FORCE, PARTITIONED), default=BRUTE_FORCE,
                        help="how the models rank the catalogue")
    parser.add_argument("--embeddings", choices=(ISOTROPIC, CLUSTERED), default=ISOTROPIC,
                        help="the catalogue embeddings (see the docstring)")
    parser.add_argument("--probes", default="",
                        help="with --index partitioned: probe counts to time and measure "
                        "recall@100 at through recommend (0: the model's default)")
    parser.add_argument("--output", help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--plot", help="with --probes: write recall@100 against p99 latency "
                        "(one line per catalogue size) to this image file")
    args = parser.parse_args()
    probes = _numbers(args.probes)
    if probes and args.index != PARTITIONED:
        parser.error("--probes needs --index partitioned")
    # A work folder of our own is removed at the end: a 1M-track model is about 0.4 GB.
    with (contextlib.nullcontext(args.output) if args.output
          else tempfile.TemporaryDirectory(prefix="crossfade-serving-bench-")) as work:
        rows, served, memory = _run(args, probes, work)
    _print_models(served, memory)
    _print_table(rows, args.index, args.embeddings)
    _print_targets(rows)
    _print_blend_target(rows)
    _print_index_targets(rows)
    if args.plot:
        _plot(rows, args.plot, args.embeddings)
        print(f"Wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

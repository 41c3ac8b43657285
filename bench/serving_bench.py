"""Benchmark: recommend latency and throughput over gRPC on loopback, against the floor.

    python -m bench.serving_bench [--catalogues 10000,100000] [--ks 10,100]
                                  [--clients 1,8] [--recommend-clients 1]
                                  [--blend-clients 1] [--seconds 4] [--output DIR]
                                  [--index brute_force|partitioned]
                                  [--embeddings isotropic|clustered|trained]
                                  [--trained-model DIR] [--probes 0,8,32]
                                  [--runtime-calls 300]
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
  model's do;
* `trained` (with `--trained-model DIR`, a crossfade SavedModel the pipeline pushed): that
  model's candidate embeddings grown to N tracks, track i a copy of trained track i mod C
  plus Gaussian noise of norm `--trained-spread` (default TRAINED_SPREAD, cosine to its
  original about 0.98: a query's exact top 100 then gathers the copies of its few best
  trained tracks, an easier case for an index than a real catalogue of distinct tracks; a
  larger spread mixes them more); its query tower embeds TRAINED_QUERIES distinct users of
  its own (from their stored histories). The first CALIBRATION_QUERIES calibrate the default
  probe; each probe's recall is measured in this process on the other users' queries, by
  score (`served_index.recall_by_score`: a track tied with the exact 100th counts, as the
  Evaluator counts) where the other kinds count shared ids; the bench model's untrained
  tower serves the load (latency depends on shapes, recall on the embeddings).

Both go through `predict` with the request builders of `crossfade.serving.signatures`, so the
two pay the same client-side cost and their ratio is the signature's. It prints p50/p99
latency, requests per second, the ratio to the floor (the bare `top_k(query @ catalogue^T)`
of one query, timed in this process with TensorFlow on the same embeddings) and, at 100k
tracks, K=100, one client, `recommend`'s p50/p99 against `serving_default`'s, and at 100k
tracks, K=50, one client, `blend`'s against `serving_default`'s. Before those, each model's
size on disk (and its graph's, saved_model.pb), how long after its start the server answered
(it answers once every model is loaded and warmed up) and its resident memory then; after
them, the server's peak resident memory; with probes, the index's targets at 1M and 10M
tracks (INDEX_TARGETS), and with `--plot` recall@100 against p99 latency as an image.
With `--runtime-calls N` each model is first loaded in TF's C++ runtime
(crossfade.serving.runtime_check: the LoadSavedModel and Session::Run TF Serving runs,
without its gRPC front end and without the local server's Python), and N one-row
`serving_default` requests (N at each probe) are timed there: load time, peak memory,
p50/p99 per request.
Prints figures only; never fails on a slow result.
"""
import argparse
import contextlib
import dataclasses
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

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
ISOTROPIC, CLUSTERED, TRAINED = "isotropic", "clustered", "trained"
TRAINED_SPREAD = 0.2  # noise norm around a trained track's embedding in a grown catalogue
TRACKS_PER_CLUSTER = 100  # clustered catalogues: one query-embedding centre per 100 tracks
CLUSTER_SPREAD = 0.5  # noise norm around a centre (cosine to it about 0.89)
EXACT_PROBE = 2 ** 30  # clamps to every partition: exact scoring
RECALL_REQUESTS = 200
TRAINED_QUERIES = 1024 + RECALL_REQUESTS  # calibration, then recall
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


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained model's catalogue and query embeddings (`trained_embeddings`)."""

    catalogue: np.ndarray  # [C, D]
    queries: np.ndarray  # [TRAINED_QUERIES, D] (fewer if the model has fewer users)
    spread: float = TRAINED_SPREAD  # noise norm of the grown copies


def trained_embeddings(model_dir: str, rng: np.random.Generator,
                       spread: float = TRAINED_SPREAD) -> Trained:
    """The candidate embeddings of the crossfade SavedModel in `model_dir` and its query
    embeddings of TRAINED_QUERIES training users drawn at random (stored histories)."""
    import tensorflow as tf

    from crossfade.components import features
    from crossfade.serving import signatures
    model = tf.saved_model.load(model_dir)
    with open(os.path.join(model_dir, "assets", features.USER_VOCABULARY), "rb") as file:
        users = np.array([line.rstrip(b"\n") for line in file if line.strip()], dtype=object)
    # Distinct users: calibration and recall queries must not share one.
    chosen = users[rng.choice(len(users), min(len(users), TRAINED_QUERIES), replace=False)]
    count = len(chosen)
    queries = model.signatures[signatures.QUERY_EMBEDDING](
        user_id=tf.constant(chosen), recent_track_ids=tf.fill([count, 1], ""),
        timestamp=tf.zeros([count], tf.int64), platform=tf.fill([count], ""))["embedding"]
    return Trained(model.catalogue_embeddings.numpy(), queries.numpy(), spread)


def _grown(catalogue: np.ndarray, size: int, rng: np.random.Generator,
           spread: float = TRAINED_SPREAD) -> np.ndarray:
    """[size, D] copies of `catalogue`'s rows in turn, each plus Gaussian noise of norm
    about `spread`, normalised."""
    rows = np.empty((size, catalogue.shape[1]), np.float32)
    step = 1_000_000  # bounded temporary memory at 10M tracks
    for start in range(0, size, step):
        base = catalogue[np.arange(start, min(size, start + step)) % len(catalogue)]
        noise = rng.standard_normal(base.shape, dtype=np.float32)
        rows[start:start + len(base)] = _unit(base + spread * noise / np.sqrt(base.shape[1]))
    return rows


def distinct_originals(vectors: np.ndarray, queries: np.ndarray, originals: int,
                       k: int = TARGET_K) -> float:
    """Mean number of distinct trained tracks among the exact top `k` of `queries` [Q, D]
    in a catalogue `_grown` from `originals` trained tracks (track i a copy of i mod
    `originals`): k where every listed track is a different trained one, as in a catalogue
    of distinct tracks; fewer where copies of a few crowd a list, which flatters an index
    (the copies share a partition)."""
    counts = []
    for start in range(0, len(queries), 16):  # [16, N] scores at a time: bounded memory
        scores = queries[start:start + 16] @ vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        counts.extend(len(np.unique(row % originals)) for row in top)
    return float(np.mean(counts))


def export_model(export_dir: str, catalogue_size: int, transform_output, seed: int = 0,
                 index: str = BRUTE_FORCE, embeddings: str = ISOTROPIC,
                 trained: Optional[Trained] = None, probes: Sequence[int] = ()
                 ) -> Dict[int, float]:
    """A crossfade SavedModel over `catalogue_size` catalogue embeddings of kind
    `embeddings` (`trained`: grown from `trained`), ranking by brute force or through a
    partitioned `index`; returns {probe: recall@100} measured in this process for the
    `trained` kind (empty otherwise: the served requests measure it)."""
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
    elif embeddings == TRAINED:
        if trained.catalogue.shape[1] != hp.embedding_dim:
            raise ValueError(f"the trained model's embeddings have {trained.catalogue.shape[1]}"
                             f" dimensions, the bench model's {hp.embedding_dim}")
        vectors = _grown(trained.catalogue, catalogue_size, rng, trained.spread)
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
    recalls = {}
    if tables is not None:  # as the Trainer does, on queries drawn as the load draws them
        queries = (_query_embeddings(two_tower, transform_output,
                                     served_index.CALIBRATION_QUERIES, rng)
                   if trained is None else trained.queries[:served_index.CALIBRATION_QUERIES])
        days = np.full(len(queries), int(time.time()) // 86400, np.int64)
        started = time.perf_counter()
        probe, recall = module.calibrate_index(queries, days)
        print(f"  {catalogue_size:,} tracks: {tables.partitions.num_partitions} partitions, "
              f"default probe {probe} (recall@100 {recall:.3f} on calibration queries, "
              f"calibrated in {time.perf_counter() - started:.1f} s)", flush=True)
        if trained is not None:
            held_out = trained.queries[served_index.CALIBRATION_QUERIES:]
            recall_at = module.index_recall_at(held_out, days[:len(held_out)])
            recalls = {p: recall_at(p) for p in probes}
            print(f"  {catalogue_size:,} tracks: the exact top {TARGET_K} of a held-out query"
                  f" holds {distinct_originals(vectors, held_out, len(trained.catalogue)):.1f}"
                  f" distinct trained tracks on average (of {TARGET_K}: the lower, the "
                  "easier for an index)", flush=True)
    export.save(module, export_dir)
    warmup.write_warmup_requests(export_dir, USERS[:20],
                                 [list(ids[i:i + 2]) for i in range(20)], list(ids[:20]))
    return recalls


def _percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def floor_ms(export_dir: str, k: int, seconds: float) -> Dict[str, float]:
    """Latency of the bare matmul + top-k for one query against the catalogue."""
    import tensorflow as tf
    # The embeddings alone, from the checkpoint: loading the whole model would hold a second
    # copy of everything the server holds (gigabytes at 10M tracks).
    catalogue = tf.constant(tf.train.load_variable(
        os.path.join(export_dir, "variables", "variables"),
        "catalogue_embeddings/.ATTRIBUTES/VARIABLE_VALUE"))
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


@dataclasses.dataclass
class RuntimeRun:
    """A model in TF's C++ runtime (serving/runtime_check): TF Serving's LoadSavedModel and
    Session::Run without its gRPC front end."""

    size: int
    load_s: float
    rss_mb: float  # the runtime process's peak resident memory
    latency: Dict[str, Dict[str, float]]  # "serving_default" / "probe N": p50, p99 (ms)


def runtime_latency(export_dir: str, size: int, k: int, probes: Sequence[int],
                    calls: int) -> RuntimeRun:
    """Times `calls` one-row `serving_default` requests (and `calls` at each probe, as
    `recommend` at neutral controls) in the C++ runtime, drawn as `load` draws them, one
    after another (the first `calls` // 10 of each are warm-up, not counted)."""
    from crossfade.serving import runtime_check, signatures
    rng = np.random.default_rng(3)
    plan = [(signatures.SERVING_DEFAULT, None, "serving_default")] + [
        (signatures.RECOMMEND, probe, f"probe {probe or 'default'}") for probe in probes]
    requests = []
    for signature, probe, label in plan:
        for _ in range(calls):
            user = USERS[int(rng.integers(len(USERS)))]
            recent = list(RECENT_POOL[rng.integers(0, len(RECENT_POOL), RECENT_PER_REQUEST)])
            requests.append((label, (signature, _request(signature, user, recent, k, probe))))
    report = runtime_check.run_check(export_dir, [call for _, call in requests],
                                     replay_warmup=True, timeout_s=3600.0)
    failed = [call.error for call in report.calls if not call.ok]
    if not report.loaded or failed:
        raise RuntimeError(f"the C++ runtime failed on {export_dir}: "
                           f"{report.load_error or failed[0]}")
    latency = {}
    for _, _, label in plan:
        seconds = [call.seconds for (name, _), call in zip(requests, report.calls, strict=True)
                   if name == label][calls // 10:]
        latency[label] = {"p50": _percentile([1000 * t for t in seconds], 50),
                          "p99": _percentile([1000 * t for t in seconds], 99)}
    return RuntimeRun(size, report.load_seconds, report.vm_hwm_kb / 1024, latency)


def _wait_ready(target: str, models: List[str], process: subprocess.Popen,
                timeout: float = 1800.0) -> Dict[str, float]:
    """Seconds from now until each of `models` is AVAILABLE (the server answers only once
    it has loaded every model: about the same figure for all)."""
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
    """The served models' sizes on disk, and what loading them all took the server."""

    disks: Dict[int, Dict[str, float]]  # catalogue size -> _disk_mb
    ready_s: float  # from the server's start until it answered: every model loaded
    loaded: Dict[str, float]  # the server's _memory_mb then


def _measure(target: str, work: str, models: Dict[int, str], ks: List[int],
             client_counts: List[int], recommend_clients: List[int],
             blend_clients: List[int], seconds: float, probes: List[int],
             recalls: Dict[int, Dict[int, float]]) -> List[Row]:
    """The rows (see the docstring); `recalls`: {size: {probe: recall@100}} measured at
    export (trained embeddings), else measured through the server."""
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
                recall = recalls.get(size, {}).get(probe)
                if recall is None:
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


def _print_models(served: Served, memory: Dict[str, float]) -> None:
    print("\nmodels on disk")
    header = f"{'tracks':>11} {'disk MB':>9} {'graph MB':>9}"
    print(header)
    print("-" * len(header))
    for size, disk in served.disks.items():
        print(f"{size:>11,} {disk['disk']:>9.0f} {disk['graph']:>9.1f}")
    print(f"local model server: answering {served.ready_s:.1f} s after its start (every model "
          f"loaded and warmed up), resident {served.loaded['VmRSS']:.0f} MB then; peak "
          f"{memory['VmHWM']:.0f} MB, {memory['VmRSS']:.0f} MB at the end")


def _print_runtime(runs: List[RuntimeRun], rows: List[Row]) -> None:
    if not runs:
        return
    print(f"\nTF's C++ runtime (TF Serving's LoadSavedModel + Session::Run, no gRPC), K="
          f"{TARGET_K}, one request at a time")
    header = (f"{'tracks':>11} {'load s':>7} {'peak RSS MB':>12} {'request':<16} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'recall':>6}")
    print(header)
    print("-" * len(header))
    for run in runs:
        for label, latency in run.latency.items():
            print(f"{run.size:>11,} {run.load_s:>7.1f} {run.rss_mb:>12.0f} {label:<16} "
                  f"{latency['p50']:>8.2f} {latency['p99']:>8.2f} "
                  f"{_recall_of(rows, run.size, label):>6}")


def _recall_of(rows: List[Row], size: int, label: str) -> str:
    found = [row.recall for row in rows if row.size == size and row.signature == label
             and row.recall is not None]
    return format(found[0], ".3f") if found else ""


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


def _plot(rows: List[Row], runtime: List[RuntimeRun], path: str, embeddings: str) -> None:
    """Recall@100 (x) against p99 latency (y), a line per catalogue size over its probes:
    through the model server (solid) and in the C++ runtime (dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    figure, axes = pyplot.subplots(figsize=(7.0, 4.4))
    for size in sorted({row.size for row in rows if row.recall is not None}):
        probed = [row for row in rows if row.size == size and row.recall is not None]
        points = sorted((row.recall, row.result["p99"]) for row in probed)
        line, = axes.plot(*zip(*points, strict=True), marker="o",
                          label=f"{size:,} tracks, model server")
        for run in runtime:
            if run.size == size:
                points = sorted((row.recall, run.latency[row.signature]["p99"])
                                for row in probed)
                axes.plot(*zip(*points, strict=True), marker="s", linestyle="--",
                          color=line.get_color(), label=f"{size:,} tracks, C++ runtime")
    axes.set_xlabel("recall@100 against exact scoring")
    axes.set_ylabel("recommend p99 latency, ms (one at a time)")
    axes.set_yscale("log")
    axes.set_title(f"Partitioned index: recall against latency ({embeddings} catalogue)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _numbers(text: str) -> List[int]:
    return [int(value) for value in text.split(",") if value]


def _run(args: argparse.Namespace, probes: List[int], work: str
         ) -> Tuple[List[Row], Served, Dict[str, float], List[RuntimeRun]]:
    """Exports the models under `work`, times them in the C++ runtime, serves them and
    measures (see the docstring): (rows, the models as served, the server's memory at the
    end, the C++ runtime's figures)."""
    sizes = _numbers(args.catalogues)

    started = time.perf_counter()
    transform_output = _transform_output(work)
    trained = (trained_embeddings(args.trained_model, np.random.default_rng(1),
                                  args.trained_spread)
               if args.embeddings == TRAINED else None)
    models, recalls = {}, {}
    for size in sizes:
        name = f"bench{size}"
        recalls[size] = export_model(os.path.join(work, "models", name, "1"), size,
                                     transform_output, index=args.index,
                                     embeddings=args.embeddings, trained=trained,
                                     probes=probes)
        models[size] = name
        gc.collect()  # the export's module and arrays, before the next model and the server
    runtime = [runtime_latency(os.path.join(work, "models", name, "1"), size, TARGET_K,
                               probes, args.runtime_calls)
               for size, name in models.items()] if args.runtime_calls else []
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
        served = Served({size: _disk_mb(os.path.join(work, "models", name, "1"))
                         for size, name in models.items()}, max(ready.values()),
                        _memory_mb(server.pid))
        rows = _measure(target, work, models, _numbers(args.ks), _numbers(args.clients),
                        _numbers(args.recommend_clients), _numbers(args.blend_clients),
                        args.seconds, probes, recalls)
        memory = _memory_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return rows, served, memory, runtime


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
    parser.add_argument("--embeddings", choices=(ISOTROPIC, CLUSTERED, TRAINED),
                        default=ISOTROPIC, help="the catalogue embeddings (see the docstring)")
    parser.add_argument("--trained-model", help="with --embeddings trained: a pushed crossfade "
                        "SavedModel (a version folder)")
    parser.add_argument("--probes", default="",
                        help="with --index partitioned: probe counts to time and measure "
                        "recall@100 at through recommend (0: the model's default)")
    parser.add_argument("--output", help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--trained-spread", type=float, default=TRAINED_SPREAD,
                        help="with --embeddings trained: noise norm around each copy")
    parser.add_argument("--runtime-calls", type=int, default=0,
                        help="also time this many serving_default requests (and as many at "
                        "each probe) per model in TF's C++ runtime (0: not)")
    parser.add_argument("--plot", help="with --probes: write recall@100 against p99 latency "
                        "(one line per catalogue size) to this image file")
    args = parser.parse_args()
    probes = _numbers(args.probes)
    if probes and args.index != PARTITIONED:
        parser.error("--probes needs --index partitioned")
    if (args.embeddings == TRAINED) != bool(args.trained_model):
        parser.error("--embeddings trained and --trained-model go together")
    if args.trained_model and not os.path.isfile(os.path.join(args.trained_model,
                                                              "saved_model.pb")):
        parser.error(f"--trained-model {args.trained_model}: no saved_model.pb there")
    # A work folder of our own is removed at the end: a 1M-track model is about 0.4 GB.
    # Stopped by SIGTERM too (the default handler would leave it behind).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with (contextlib.nullcontext(args.output) if args.output
          else tempfile.TemporaryDirectory(prefix="crossfade-serving-bench-")) as work:
        rows, served, memory, runtime = _run(args, probes, work)
    _print_models(served, memory)
    _print_runtime(runtime, rows)
    _print_table(rows, args.index, args.embeddings)
    _print_targets(rows)
    _print_blend_target(rows)
    _print_index_targets(rows)
    if args.plot:
        _plot(rows, runtime, args.plot, args.embeddings)
        print(f"Wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: server memory across version loads (does an unloaded version give its memory back?).

    python -m bench.version_memory_bench [--loads 20] [--tracks 100000]

It starts the local model server in this process (`crossfade.serving.model_server.ModelServer`,
gRPC on a free port, batching and warmup on, as `crossfade serve` runs it) on a base path, then
pushes `--loads` new versions one after another, as the Pusher does (copy to `.staging-N`,
rename to `N`). The version policy serves the latest, so each poll loads the new version,
warms it up and unloads the previous one. After each load it sends a few gRPC requests (the
request path's caches count too), collects garbage and prints the process RSS, how many
`Servable`s are still alive (weak references to every one loaded), and at the end the RSS
slope in MB per load, fitted after the first `--warmup-loads` loads (TensorFlow's allocator
and op caches grow at first and then stay). A flat slope means an unloaded version leaves
nothing behind.

The model is real-shaped, quick to build: crossfade's two signatures, inputs and outputs over
a `--tracks` catalogue of 64-dimensional embeddings under Spotify-style track URIs, with a
track-id lookup table as the real model has (about 30 MB per version at 100k tracks), and
warmup requests. Prints figures only; never fails.
"""
import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import weakref
from typing import List

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads, below

EMBEDDING_DIM = 64
USERS = [f"user-{i}" for i in range(20)]
_BASE62 = np.array(list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def track_ids(count: int, seed: int = 0) -> np.ndarray:
    """Spotify-style track URIs ("spotify:track:" + 22 base-62 characters)."""
    letters = _BASE62[np.random.default_rng(seed).integers(0, len(_BASE62), (count, 22))]
    return np.array(["spotify:track:" + "".join(row) for row in letters], dtype=object)


def rss_mb() -> float:
    """This process's resident set size, MB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def save_toy_model(export_dir: str, tracks: int, seed: int = 0) -> None:
    """crossfade's two serving signatures over `tracks` random embeddings, with warmup
    requests (`crossfade.serving.toy_model`)."""
    from crossfade.serving import toy_model
    toy_model.save_toy_model(export_dir, list(track_ids(tracks, seed)), seed,
                             dim=EMBEDDING_DIM, warmup_users=USERS)


def push(template: str, base: str, version: int) -> None:
    """Copies `template` in as version `version`, atomically, as the Pusher does."""
    staging = os.path.join(base, f".staging-{version}")
    shutil.copytree(template, staging)
    os.rename(staging, os.path.join(base, str(version)))


def slope(values: List[float]) -> float:
    """Least-squares slope of `values` per step (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(values)), values, 1)[0])


def _requests(target: str, track: str) -> None:
    from crossfade.serving.client import GrpcClient
    with GrpcClient(target) as client:
        for user in USERS[:4]:
            client.recommend(user, [track], k=10)
        client.similar_tracks(track, k=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=20, help="versions to push")
    parser.add_argument("--tracks", type=int, default=100_000, help="catalogue size")
    parser.add_argument("--warmup-loads", type=int, default=3,
                        help="loads left out of the slope (allocator warm-up)")
    args = parser.parse_args()

    import logging
    logging.basicConfig(level=logging.WARNING)
    from crossfade.serving.model_config import ModelConfig
    from crossfade.serving.model_server import ModelServer, ServerOptions

    work = tempfile.mkdtemp(prefix="version-memory-bench-")
    try:
        template, base = os.path.join(work, "template"), os.path.join(work, "models")
        os.makedirs(base)
        started = time.perf_counter()
        save_toy_model(template, args.tracks)
        print(f"Saved a model of {args.tracks:,} tracks in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        push(template, base, 1)
        # A poll interval longer than the run: this loop polls, so each step is one load.
        options = ServerOptions(grpc_port=0, rest_port=None, poll_seconds=3600)
        server = ModelServer([ModelConfig("crossfade", base)], options).start()
        target = f"127.0.0.1:{server.grpc_port}"
        track = str(track_ids(1)[0])
        alive: List[weakref.ref] = []
        figures: List[float] = []
        print(f"{'load':>4} {'version':>7} {'RSS MB':>8} {'delta':>7} {'alive':>5}", flush=True)
        try:
            for load in range(args.loads + 1):
                version = load + 1
                if load:
                    push(template, base, version)
                    server.registry.poll()
                    shutil.rmtree(os.path.join(base, str(version - 1)))
                manager = server.registry.managers[0]
                alive.append(weakref.ref(manager.servable()))
                _requests(target, track)
                del manager
                gc.collect()
                figures.append(rss_mb())
                live = sum(ref() is not None for ref in alive)
                delta = figures[-1] - figures[-2] if load else 0.0
                print(f"{load:>4} {version:>7} {figures[-1]:>8.1f} {delta:>+7.1f} {live:>5}",
                      flush=True)
        finally:
            server.stop(grace_seconds=0)
        steady = figures[1 + args.warmup_loads:]
        print(f"\nRSS {figures[0]:.0f} MB after the first version, {figures[-1]:.0f} MB after "
              f"{args.loads} more loads: {slope(figures[1:]):+.2f} MB/load overall, "
              f"{slope(steady):+.2f} MB/load after {args.warmup_loads} warm-up loads; "
              f"servables alive at the end: {sum(ref() is not None for ref in alive)} "
              "(1 = only the serving one)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

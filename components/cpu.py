"""How many cores this process may use: crossfade's one CPU-count rule.

Beam's worker processes (`crossfade.pipeline.beam_args`) and the local server's concurrent
batches (`crossfade.serving.batching`) size themselves from it. `os.cpu_count()` counts the
machine's cores; in a container limited by a cpuset (Kubernetes' static CPU manager, `docker
--cpuset-cpus`) only the affinity mask says what this process can run on.
"""
import os


def local_cores() -> int:
    """Cores this process may run on (honours CPU affinity); at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)

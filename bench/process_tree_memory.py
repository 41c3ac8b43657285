"""Peak resident memory of a process and all its descendants, sampled while it runs.

`pipeline/peak_memory.py` reads the kernel's exact per-process peak, but only of the run's
own process: Beam's multi_processing workers (`crossfade run --runner beam`) are processes of
their own. This samples the summed resident set size of a process tree every `interval`
seconds (psutil), so its peak can miss a spike shorter than the interval, and it counts
pages shared between processes once per process (an upper bound for forked workers).
"""
import threading
from typing import Optional

import psutil


class TreePeak:
    """Samples the tree under `pid` on a daemon thread from `start()` until `stop()`;
    `peak_bytes` is the largest summed RSS seen (0 before the first sample)."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval, self.peak_bytes = pid, interval, 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TreePeak":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stopped.set()
        self._thread.join()
        return self.peak_bytes

    def _run(self) -> None:
        while not self._stopped.is_set():
            total = _tree_rss(self.pid)
            if total is None:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self._stopped.wait(self.interval)


def _tree_rss(pid: int) -> Optional[int]:
    """Summed RSS of `pid` and its descendants; None once `pid` is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # a worker that ended between listing and reading
            pass
    return total

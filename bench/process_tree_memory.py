"""Peak memory of a process and all its descendants, sampled while it runs.

`pipeline/peak_memory.py` reads the kernel's exact per-process peak, but only of the run's
own process: Beam's multi_processing workers (`crossfade run --runner beam`) are processes of
their own. This samples a process tree every `interval` seconds (psutil), so a peak can miss a
spike shorter than the interval. It sums two figures per process:

- RSS, resident set size: a page shared between processes (TensorFlow's shared libraries,
  mapped by the run and by every worker that imports TensorFlow) counts once per process, so
  the sum overstates the tree's memory;
- PSS, proportional set size (`/proc/<pid>/smaps_rollup`): a shared page is divided among the
  processes that map it, so the sum is the memory the tree takes from the machine.

The caller may set `label` (e.g. the component now running); peaks are also kept per label,
with the first sample of each label: what the root process carries into a component, and its
share of the tree at the component's peak, tell inherited memory from the component's own.
"""
import threading
from typing import Dict, NamedTuple, Optional

import psutil


class Memory(NamedTuple):
    """Summed resident (`rss`) and proportional (`pss`) set sizes of a tree, in bytes, and the
    root process's own PSS (`root_pss`) in the same sample."""
    rss: int
    pss: int
    root_pss: int = 0

    def max(self, other: "Memory") -> "Memory":
        """The larger RSS, and the larger PSS with the root's share in that sample."""
        larger = other if other.pss > self.pss else self
        return Memory(max(self.rss, other.rss), larger.pss, larger.root_pss)


class TreePeak:
    """Samples the tree under `pid` on a daemon thread from `start()` until `stop()`. `peak` is
    the largest summed RSS and PSS seen (zeros before the first sample), `peak_by_label` the
    same per value of `label` at the time of the sample, `first_by_label` each label's first
    sample."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.peak = Memory(0, 0)
        self.label: Optional[str] = None
        self.peak_by_label: Dict[str, Memory] = {}
        self.first_by_label: Dict[str, Memory] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TreePeak":
        self._thread.start()
        return self

    def stop(self) -> Memory:
        self._stopped.set()
        self._thread.join()
        return self.peak

    def _run(self) -> None:
        while not self._stopped.is_set():
            label, memory = self.label, tree_memory(self.pid)
            if memory is None:
                return
            self.peak = self.peak.max(memory)
            if label is not None:
                self.first_by_label.setdefault(label, memory)
                self.peak_by_label[label] = self.peak_by_label.get(label, memory).max(memory)
            self._stopped.wait(self.interval)


def tree_memory(pid: int) -> Optional[Memory]:
    """Summed RSS and PSS of `pid` and its descendants, and `pid`'s own PSS; None once `pid` is
    gone."""
    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    rss = pss = root_pss = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except psutil.NoSuchProcess:  # a worker that ended between listing and reading
            continue
        rss, pss = rss + info.rss, pss + info.pss
        if process is root:
            root_pss = info.pss
    return Memory(rss, pss, root_pss)

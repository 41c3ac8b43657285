"""Freed memory leaves the process: release_freed_memory (pages freed among live allocations),
and TensorFlow's large buffers (the allocator components/__init__.py selects)."""
import ctypes
import gc
import os
import subprocess
import sys

import psutil
import pytest

from crossfade.components import heap

_HAS_TRIM = hasattr(ctypes.CDLL(None), "malloc_trim")


def _resident() -> int:
    return psutil.Process().memory_info().rss


@pytest.mark.skipif(not _HAS_TRIM, reason="the C library has no malloc_trim (not glibc)")
def test_freed_pages_between_live_blocks_are_returned():
    # 400 MB in 4 KiB blocks (above pymalloc's 512 bytes: glibc's heap), one in 64 kept:
    # the freed ones lie among live blocks, which free() alone never gives back.
    gc.disable()  # no collection between the measurements but the function's own
    try:
        blocks = [bytes(4096) for _ in range(100_000)]
        kept = blocks[::64]
        del blocks
        before = _resident()
        assert heap.release_freed_memory()
        after = _resident()
    finally:
        gc.enable()
    assert len(kept) == 1563
    assert before - after > 200 * 2**20, (before, after)


def test_without_malloc_trim_it_only_collects(monkeypatch):
    class NoTrim:  # a C library without malloc_trim (macOS, musl)
        pass

    monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: NoTrim())
    collected = []
    monkeypatch.setattr(heap.gc, "collect", lambda: collected.append(True) or 0)
    assert heap.release_freed_memory() is False
    assert collected == [True]


_ALLOCATE_AND_FREE = """
import crossfade.components  # first, as every crossfade entry point: it sets the allocator
import psutil
import tensorflow as tf

process = psutil.Process()
warm = tf.ones([1024]) + 1  # TensorFlow's runtime and allocator up before the baseline
before = process.memory_info().rss
values = tf.ones([128 * 2**20]) + 1  # two 512 MiB buffers, each touched
peak = process.memory_info().rss
del values
print(before, peak, process.memory_info().rss)
"""


def test_tensorflow_hands_large_freed_buffers_back():
    # oneDNN's allocator would keep them in its pool for the life of the process, so every
    # component a local run executes after the Trainer carried the Trainer's peak.
    env = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([sys.executable, "-c", _ALLOCATE_AND_FREE], env=env, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    before, peak, after = map(int, out.split()[-3:])
    assert peak - before > 400 * 2**20, (before, peak)  # the buffer was resident
    assert after - before < 100 * 2**20, (before, peak, after)

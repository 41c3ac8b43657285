"""release_freed_memory: pages freed among live allocations leave the process."""
import ctypes
import gc

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

"""peak_memory: a reset peak follows what is allocated after it, not before."""
import sys

import numpy as np
import pytest

from crossfade.pipeline import peak_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="peak resident size is read from Linux's /proc")


def test_a_reset_forgets_an_earlier_peak_and_sees_a_later_one():
    big = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
    after_big = peak_memory.peak_bytes()
    del big
    if not peak_memory.reset():
        pytest.skip("/proc/self/clear_refs is not writable here (a sandbox)")
    base = peak_memory.peak_bytes()
    assert base < after_big - 200 * 2**20
    small = np.ones(100 * 2**20 // 8)  # 100 MiB
    grown = peak_memory.peak_bytes()
    assert grown >= base + 90 * 2**20
    del small
    # A peak, not the current size (which fell by 100 MiB); the kernel updates its record
    # lazily, so the figure may differ by a few pages from the one read while it grew.
    assert peak_memory.peak_bytes() >= grown - 2**20

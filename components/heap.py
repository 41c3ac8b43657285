"""Handing memory a component freed back to the operating system (Linux with glibc).

The local orchestrators (LocalDagRunner, BeamDagRunner) run the components one after another
in one process. What a component frees goes back to glibc's malloc, which returns to the
system only the free space at the top of each heap (and whole blocks it mmapped); pages freed
among allocations still alive stay resident, counted against every later component. After a
Trainer run on the default data the process kept 0.40 GiB of such pages (1.45 GiB resident,
1.04 after the release), after one epoch on `large` 0.55 GiB (1.61, 1.06; README, "Scale").

`malloc_trim(0)` walks every arena and returns each page no allocation uses (glibc >= 2.8,
by madvise); it costs a pass over the heap, well under a second at these sizes, so it is
called once at the end of a memory-heavy component, not per step.
"""
import ctypes
import gc


def release_freed_memory() -> bool:
    """Collects Python's reference cycles, then returns every free page of the C heap to the
    system. Returns False where the C library has no `malloc_trim` (macOS, musl): then only
    the collection is done."""
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True

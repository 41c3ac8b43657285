"""crossfade's TFX components and the module files they run.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported: TensorFlow Recommenders 0.7
and TFX 1.16 are written against Keras 2 (tf-keras), while TensorFlow 2.16 defaults to Keras 3.
This is the one place crossfade sets it; the other `crossfade.*` packages import this one first.
Processes that import TensorFlow before any crossfade module (the TFX container entry point,
Beam workers, pytest's own imports) get it from their environment: kubeflow/Dockerfile and the
Makefile export it.

TF_ONEDNN_USE_SYSTEM_ALLOCATOR is set here for the same reason (before TensorFlow allocates):
TensorFlow's x86 wheels enable oneDNN, whose CPU allocator (`MklCPUAllocator`) serves every
allocation of 256 KiB or more from a BFC pool that grows to the process's peak and never hands
memory back. The local orchestrators run every component in one process, so each later
component carried the Trainer's pool: on `large`'s training plays (50 steps, then the export)
the process held 5.23 GiB after the Trainer with the pool, 1.08 GiB with the system allocator
(glibc, which unmaps large blocks on free; README, "Scale"), and trained as fast within the
machine's noise. The cost is in allocations above glibc's 32 MiB mmap threshold, mapped afresh
each time where the pool reused them: the Evaluator's [batch, catalogue] scores (about 2x
slower to compute at 100,000 tracks); training steps and serving requests stay below it. Beam
workers inherit it from this process's environment; kubeflow/Dockerfile sets it for the
container.
"""
import atexit
import gc
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")

# TensorFlow functions still alive at interpreter shutdown print "Exception ignored in
# AtomicFunction.__del__" tracebacks; collecting them while modules are intact avoids that.
atexit.register(gc.collect)

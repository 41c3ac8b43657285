"""crossfade's TFX components and the module files they run.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported: TensorFlow Recommenders 0.7
and TFX 1.16 are written against Keras 2 (tf-keras), while TensorFlow 2.16 defaults to Keras 3.
This is the one place crossfade sets it; the other `crossfade.*` packages import this one first.
Processes that import TensorFlow before any crossfade module (the TFX container entry point,
Beam workers, pytest's own imports) get it from their environment: kubeflow/Dockerfile and the
Makefile export it.
"""
import atexit
import gc
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# TensorFlow functions still alive at interpreter shutdown print "Exception ignored in
# AtomicFunction.__del__" tracebacks; collecting them while modules are intact avoids that.
atexit.register(gc.collect)

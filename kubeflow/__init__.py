"""Kubeflow Pipelines (v2) and Vertex AI Pipelines: compiler, cluster settings and image."""
# TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported (this package is often
# imported first, e.g. by `python -m crossfade.kubeflow.runner`); crossfade.components sets it.
import crossfade.components  # noqa: F401 -- imported for that side effect

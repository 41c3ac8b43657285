"""Kubeflow Pipelines (v2) and Vertex AI Pipelines: compiler, cluster settings and image.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported (see components/__init__.py);
this package is often imported first, e.g. by `python -m kubeflow.runner`.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

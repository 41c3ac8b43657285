"""Serving crossfade models: clients and a local server speaking TF Serving's APIs.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported: TensorFlow Recommenders 0.7
and TFX 1.16 are written against Keras 2 (tf-keras), while TensorFlow 2.16 defaults to Keras 3.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

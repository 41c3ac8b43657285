"""Serving crossfade models: clients and a local server speaking TF Serving's APIs."""
# TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported; crossfade.components
# sets it (its docstring says why), whichever crossfade package is imported first.
import crossfade.components  # noqa: F401 -- imported for that side effect

"""A fingerprint of crossfade's component code, for correct caching.

TFX caches an execution on its inputs and execution properties. The Transform, Trainer,
ExampleGen and StreamQualifier code is imported from the installed `components` package (not
from a fingerprinted module file), so a code change alone would reuse stale results. Passing
this fingerprint as a property of those components makes any code change re-run them.
"""
import functools
import hashlib
import os

import components


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 (first 16 hex digits) of every non-test Python file of `components`."""
    root = os.path.dirname(os.path.abspath(components.__file__))
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith(".py") and not name.endswith("_test.py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()[:16]

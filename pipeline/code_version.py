"""A fingerprint of the code that runs inside crossfade's components, for correct caching.

TFX caches an execution on its inputs and execution properties. crossfade's executors, the
Transform `preprocessing_fn` and the Trainer `run_fn` are imported from the installed
`crossfade` package (not from a fingerprinted module file), so a code change alone would reuse
stale results. Passing this fingerprint as a property of those components makes a change to any
file whose code runs in them re-run them.

Which files: every non-test module of `crossfade.components`, and every `crossfade` module they
import, followed transitively (the Trainer's export imports `crossfade.serving.signatures` and
`crossfade.serving.warmup`, for example), with the `__init__.py` of each package on the way, and
the schema files `crossfade.components` ships. The imports are read from the source
(`import_graph`), not executed, so the fingerprint costs no TensorFlow import. Code outside the
closure (the command line, the local server, the KFP compiler) never invalidates the cache.
"""
import functools
import hashlib
import os
from typing import List

from crossfade.pipeline.import_graph import PACKAGE_ROOT, module_closure, package_modules

_DATA_SUFFIXES = (".pbtxt",)


def code_files() -> List[str]:
    """The files the fingerprint covers, relative to PACKAGE_ROOT, sorted."""
    files = set(module_closure(package_modules("components")))
    for folder, _, names in os.walk(os.path.join(PACKAGE_ROOT, "components")):
        files.update(os.path.relpath(os.path.join(folder, name), PACKAGE_ROOT)
                     for name in names if name.endswith(_DATA_SUFFIXES))
    return sorted(files)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 (first 16 hex digits) over the path and bytes of every file of `code_files()`."""
    digest = hashlib.sha256()
    for relative in code_files():
        digest.update(relative.replace(os.sep, "/").encode() + b"\0")
        with open(os.path.join(PACKAGE_ROOT, relative), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:16]

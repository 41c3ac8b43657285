"""A fingerprint of the code that runs inside crossfade's components, for correct caching.

TFX caches an execution on its inputs and execution properties. crossfade's executors, the
Transform `preprocessing_fn` and the Trainer `run_fn` are imported from the installed
`crossfade` package (not from a fingerprinted module file), so a code change alone would reuse
stale results. Passing this fingerprint as a property of those components makes a change to any
file whose code runs in them re-run them.

Which files: every non-test module of `crossfade.components`, and every `crossfade` module they
import, followed transitively (the Trainer's export imports `crossfade.serving.signatures` and
`crossfade.serving.warmup`, for example), with the `__init__.py` of each package on the way, and
the schema files `crossfade.components` ships. The imports are read from the source (`ast`), not
executed, so the fingerprint costs no TensorFlow import. Code outside the closure (the command
line, the local server, the KFP compiler) never invalidates the cache.
"""
import ast
import functools
import hashlib
import os
from typing import Iterable, Iterator, List, Set

import crossfade.components

PACKAGE = "crossfade"
# The folder that holds the product folders (pipeline/, components/, ...): crossfade.X is X/.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(crossfade.components.__file__)))
_DATA_SUFFIXES = (".pbtxt",)


def _module_file(module: str) -> str:
    """The source file of `crossfade.a.b` (a/b.py or a/b/__init__.py), or "" if none."""
    parts = module.split(".")[1:]
    path = os.path.join(PACKAGE_ROOT, *parts)
    for candidate in (path + ".py", os.path.join(path, "__init__.py")):
        if parts and os.path.isfile(candidate):
            return candidate
    return ""


def _imported_modules(path: str) -> Iterator[str]:
    """`crossfade.*` modules (and candidate submodules `from X import name`) `path` imports."""
    with open(path, "rb") as handle:
        tree = ast.parse(handle.read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == PACKAGE:
                parts = name.split(".")
                # `import crossfade.a.b` runs crossfade/a/__init__.py first.
                yield from (".".join(parts[:end]) for end in range(2, len(parts) + 1))


def _component_modules() -> List[str]:
    """Every non-test module of crossfade.components, as a module name."""
    root = os.path.join(PACKAGE_ROOT, "components")
    modules = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py") and not name.endswith("_test.py"):
                relative = os.path.relpath(os.path.join(folder, name[:-3]), PACKAGE_ROOT)
                parts = relative.split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                modules.append(".".join([PACKAGE] + parts))
    return modules


def module_closure(modules: Iterable[str]) -> List[str]:
    """Source files of `modules` and of every `crossfade` module they import, transitively
    (with each package's `__init__.py`), as paths relative to PACKAGE_ROOT, sorted."""
    pending = list(modules)
    seen: Set[str] = set()
    files: Set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module)
        if path:
            files.add(os.path.relpath(path, PACKAGE_ROOT))
            pending.extend(_imported_modules(path))
    return sorted(files)


def code_files() -> List[str]:
    """The files the fingerprint covers, relative to PACKAGE_ROOT, sorted."""
    files = set(module_closure(_component_modules()))
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

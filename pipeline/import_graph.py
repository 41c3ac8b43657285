"""crossfade's own import graph, read from the source (`ast`), never by importing it.

A module's edges are every `crossfade.*` module it imports anywhere in its body (top level or
inside a function), and the `__init__.py` of each package on the way (`import crossfade.a.b`
runs crossfade/a/__init__.py first). Used by the cache fingerprint (`code_version`: which
files run inside a component), the image test (what the command line reaches) and the test
that the package has no import cycle.
"""
import ast
import os
from typing import Iterable, Iterator, List, Set

import crossfade.components

PACKAGE = "crossfade"
# The folder that holds the product folders (pipeline/, components/, ...): crossfade.X is X/.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(crossfade.components.__file__)))


def module_file(module: str) -> str:
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


def imported_modules(module: str) -> Set[str]:
    """The crossfade modules (with a source file) that `module` imports."""
    path = module_file(module)
    if not path:
        return set()
    return {name for name in _imported_modules(path) if module_file(name) and name != module}


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
        path = module_file(module)
        if path:
            files.add(os.path.relpath(path, PACKAGE_ROOT))
            pending.extend(_imported_modules(path))
    return sorted(files)


def package_modules(folder: str) -> List[str]:
    """Every non-test module below the product folder `folder` (e.g. "components"), by name."""
    modules = []
    for parent, _, files in os.walk(os.path.join(PACKAGE_ROOT, folder)):
        for name in files:
            if name.endswith(".py") and not name.endswith("_test.py") and name != "conftest.py":
                relative = os.path.relpath(os.path.join(parent, name[:-3]), PACKAGE_ROOT)
                parts = relative.split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                modules.append(".".join([PACKAGE] + parts))
    return sorted(modules)

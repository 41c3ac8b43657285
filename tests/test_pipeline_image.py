"""The pipeline image (kubeflow/Dockerfile) can run every crossfade command.

The image installs crossfade (`pip install .`) from what its COPY lines take from the build
context, and kubeflow/Dockerfile.dockerignore decides which files reach that context at all.
A product folder added to setup.py's PRODUCT_FOLDERS but not copied, or not let through by the
ignore file, and a module the command line reaches outside the product folders (bench/ and
tests/ are not installed) both build an image that fails only once a step runs in it. So:
the COPY lines and the ignore file take setup.py, pyproject.toml and every product folder;
every module `crossfade.pipeline.cli` reaches (the `run`, `compile`, `serve`, `recommend` and
`benchmark quality` commands) is an installed file that reaches the image; none imports bench
or tests. The checks read the files (`ast`, text); nothing is built.
"""
import ast
import json
import os
import re

from package_sources import REPO_ROOT, product_folders

from crossfade.pipeline import import_graph

DOCKERFILE = os.path.join(REPO_ROOT, "kubeflow", "Dockerfile")
# BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile in place of the context's own.
DOCKERIGNORE = DOCKERFILE + ".dockerignore"
NOT_INSTALLED = ("bench", "tests")
CLI = "crossfade.pipeline.cli"


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _copy_sources():
    """Build-context paths the Dockerfile's COPY lines take (not those `--from` a stage)."""
    sources = []
    for line in re.sub(r"\\\n", " ", _read(DOCKERFILE)).splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        words = rest.split()
        if any(word.startswith("--from") for word in words):
            continue
        words = [word for word in words if not word.startswith("--")]
        if words and words[0].startswith("["):  # COPY ["src", ..., "dest"]
            words = json.loads(" ".join(words))
        sources += [os.path.normpath(word).rstrip("/") for word in words[:-1]]
    return sources


def _pattern(text):
    """A .dockerignore pattern as a regex: `**` any folders, `*` and `?` within one name."""
    regex = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?)", text.strip().strip("/")):
        special = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        regex += special.get(part, re.escape(part))
    return re.compile(regex)


def _ignore_rules():
    """(allows, pattern) of each line of the ignore file, in order."""
    rules = []
    for line in _read(DOCKERIGNORE).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            allows = line.startswith("!")
            rules.append((allows, _pattern(line[1:] if allows else line)))
    return rules


def _reaches_context(path, rules):
    """Docker's rule: the last pattern matching `path` or one of its folders decides."""
    parts = path.replace(os.sep, "/").split("/")
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    allowed = True
    for allows, pattern in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            allowed = allows
    return allowed


def _cli_closure():
    # module_closure reads the files below PACKAGE_ROOT: this checkout, not an installed copy.
    assert os.path.samefile(import_graph.PACKAGE_ROOT, REPO_ROOT), import_graph.PACKAGE_ROOT
    return import_graph.module_closure([CLI])


def _imports_not_installed(path):
    """`import bench...` / `from tests... import ...` lines of the file at `path`."""
    found = []
    for node in ast.walk(ast.parse(_read(path), filename=path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names
                  if name.split(".")[0] in NOT_INSTALLED]
    return found


def test_the_dockerfile_copies_the_package_sources():
    missing = {"setup.py", "pyproject.toml", *product_folders()} - set(_copy_sources())
    assert not missing, f"kubeflow/Dockerfile copies none of {sorted(missing)}"


def test_the_ignore_file_lets_every_copied_source_through():
    lines = [line.strip() for line in _read(DOCKERIGNORE).splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert lines[0] == "*", "the ignore file should exclude everything, then allow lines"
    rules = _ignore_rules()
    blocked = [source for source in _copy_sources() if not _reaches_context(source, rules)]
    assert not blocked, f"kubeflow/Dockerfile.dockerignore keeps out {blocked}"


def test_the_ignore_file_keeps_out_what_is_not_installed():
    rules = _ignore_rules()
    for path in (".venv/bin/python", "bench/beam_bench.py", "tests/conftest.py"):
        assert not _reaches_context(path, rules), path


def test_every_module_the_command_line_reaches_is_in_the_image():
    folders = product_folders()
    rules = _ignore_rules()
    for path in _cli_closure():
        parts = path.split(os.sep)
        assert parts[0] in folders, f"{path} is outside PRODUCT_FOLDERS {folders}"
        # find_packages installs a folder only if it, and each folder above it, is a package.
        for end in range(1, len(parts)):
            package = os.path.join(REPO_ROOT, *parts[:end], "__init__.py")
            assert os.path.isfile(package), f"{path}: no {package}, so it is not installed"
        assert _reaches_context(path, rules), f"the ignore file keeps {path} out of the image"


def test_the_command_line_imports_neither_bench_nor_tests():
    found = {path: lines for path in _cli_closure()
             if (lines := _imports_not_installed(os.path.join(REPO_ROOT, path)))}
    assert not found, f"imports of the uninstalled {NOT_INSTALLED}: {found}"


def test_the_closure_covers_the_serving_and_benchmark_commands():
    closure = _cli_closure()
    for module in ("crossfade.serving.commands", "crossfade.pipeline.quality.benchmark"):
        path = os.path.join(*module.split(".")[1:]) + ".py"
        assert path in closure, f"{module} ({path}) is not reached from {CLI}"

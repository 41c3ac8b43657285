"""No import cycles through crossfade.components.listening_data (function-level imports too)."""
import ast
import pathlib
from typing import Dict, List, Optional, Set

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = "crossfade.components.listening_data"


def _module_file(module: str) -> Optional[pathlib.Path]:
    """The repository file of a `crossfade.*` module (crossfade.a.b -> a/b.py), or None."""
    parts = module.split(".")
    if parts[0] != "crossfade" or len(parts) < 2:
        return None
    base = REPO.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: pathlib.Path) -> Set[str]:
    """The crossfade modules `path` imports anywhere in its body (top level, functions, ...)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import name`: `name` is a module when it has a file, else an attribute.
            candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in candidates if _module_file(name) is not None)
    return found


def import_graph() -> Dict[str, Set[str]]:
    """Module -> the crossfade modules it imports, for every module reachable from PACKAGE."""
    folder = pathlib.Path(__file__).resolve().parent
    pending = [f"{PACKAGE}.{path.stem}" for path in sorted(folder.glob("*.py"))
               if path.stem != "__init__"]
    graph: Dict[str, Set[str]] = {}
    while pending:
        module = pending.pop()
        if module not in graph:
            path = _module_file(module)
            assert path is not None, module
            graph[module] = _imports(path) - {module}
            pending.extend(graph[module])
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert f"{PACKAGE}.importers" in graph
    assert cycles(graph) == []


def test_the_contract_and_layout_modules_are_leaves():
    graph = import_graph()
    assert graph[f"{PACKAGE}.layout"] == set()
    assert graph[f"{PACKAGE}.conversion"] == set()
    for converter in ("lastfm_hetrec", "spotify_history"):
        assert f"{PACKAGE}.importers" not in graph[f"{PACKAGE}.{converter}"]
        assert f"{PACKAGE}.simulator" not in graph[f"{PACKAGE}.{converter}"]


def test_the_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    for module, targets in sorted(import_graph().items()):
        print(module, "->", ", ".join(sorted(targets)) or "(none)")
    print("cycles:", cycles(import_graph()) or "none")

"""crossfade has no import cycle, counting imports inside functions too.

A cycle makes import order matter (a half-initialised module on one path, a clean import on the
other) and ties modules that should stand alone; the graph is read from the source
(`crossfade.pipeline.import_graph`), so every module, however heavy, is covered in a second.
"""
from package_sources import product_folders

from crossfade.pipeline import import_graph


def _cycles(graph):
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _graph():
    modules = [module for folder in product_folders()
               for module in import_graph.package_modules(folder)]
    return {module: import_graph.imported_modules(module) for module in modules}


def test_the_graph_covers_the_package():
    graph = _graph()
    assert "crossfade.components.listening_data.importers" in graph
    assert "crossfade.components.listening_data.lastfm_hetrec" in \
        graph["crossfade.components.listening_data.importers"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []

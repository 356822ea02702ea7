"""The direction of imports: the project's modules import each other without a cycle.

The graph comes from grimp (the library behind import-linter), which reads every import
statement of a module, those inside functions and ``if TYPE_CHECKING:`` blocks included, so
an upward import cannot hide in a function body. A cycle is a strongly connected component of
more than one module; the failure names its modules and the import lines that close it.
"""

from __future__ import annotations

import grimp

PACKAGES = ("sessions_app", "teams_app", "config")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The graph's strongly connected components of more than one module, each sorted, in
    order of their first module (Tarjan's algorithm, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for target in imported:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return sorted(cycles)


def cycle_report(graph: grimp.ImportGraph, cycles: list[list[str]]) -> str:
    """Each cycle's modules and, under each module, its imports of the others in the cycle."""
    lines = []
    for cycle in cycles:
        lines.append(f"{len(cycle)} modules import each other: {', '.join(cycle)}")
        members = set(cycle)
        for importer in cycle:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    lines.append(
                        f"  {importer} -> {imported} (line {detail['line_number']}: {detail['line_contents'].strip()})"
                    )
    return "\n".join(lines)


def test_the_project_modules_import_each_other_without_a_cycle():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert {"sessions_app.services", "teams_app.models", "config.celery"} <= graph.modules  # all three packages
    cycles = import_cycles(graph)
    assert not cycles, "Import cycles (a lower layer must not import a higher one, not even in a function):\n" + cycle_report(
        graph, cycles
    )


def test_a_cycle_is_found_and_named_with_its_import_lines():
    graph = grimp.ImportGraph()
    for module in ("app", "app.engine", "app.tasks", "app.models", "app.views"):
        graph.add_module(module)
    graph.add_import(importer="app.views", imported="app.tasks", line_number=3, line_contents="from app import tasks")
    graph.add_import(importer="app.tasks", imported="app.engine", line_number=5, line_contents="from app import engine")
    graph.add_import(importer="app.engine", imported="app.models", line_number=7, line_contents="from app import models")
    graph.add_import(importer="app.engine", imported="app.tasks", line_number=40, line_contents="    from app.tasks import run")
    cycles = import_cycles(graph)
    assert cycles == [["app.engine", "app.tasks"]]
    report = cycle_report(graph, cycles)
    assert "app.engine -> app.tasks (line 40: from app.tasks import run)" in report
    assert "app.tasks -> app.engine (line 5: from app import engine)" in report
    assert "app.views" not in report and "app.models" not in report

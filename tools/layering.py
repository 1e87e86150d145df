"""An import-linter contract: no import cycles between the modules of a package.

import-linter's own ``layers`` contract orders packages, and ``acyclic_siblings`` looks for
cycles between sibling packages; neither finds a cycle made of two modules in different
packages (``feed.changes`` -> ``notifications.outbox`` -> ``feed.changes``), which is what an
import hidden inside a function used to paper over. This contract finds every such cycle
(strongly connected component of the module graph, imports inside functions included).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _components(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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


class AcyclicModulesContract(Contract):
    """No module of ``containers`` imports, directly or not, a module that imports it."""

    type_name = "acyclic_modules"

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots: list[str] = list(self.containers)  # type: ignore[call-overload]
        modules = {m for m in graph.modules if any(m == r or m.startswith(r + ".") for r in roots)}
        edges = {
            m: {d for d in graph.find_modules_directly_imported_by(m) if d in modules and d != m}
            for m in modules
        }
        cycles = _components(modules, edges)
        detail: list[dict[str, Any]] = []
        for members in cycles:
            inside = set(members)
            imports = []
            for importer in members:
                for imported in sorted(edges[importer] & inside):
                    lines = graph.get_import_details(importer=importer, imported=imported)
                    where = ", ".join(str(d["line_number"]) for d in lines)
                    imports.append(f"{importer} -> {imported} (l.{where})")
            detail.append({"modules": members, "imports": imports})
        return ContractCheck(kept=not cycles, metadata={"cycles": detail})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"Import cycle between {', '.join(cycle['modules'])}:")
            for line in cycle["imports"]:
                output.indent_cursor()
                output.print_error(line, bold=False)
            output.new_line()

"""The layering contract's own check finds cycles of modules, across packages too."""

from __future__ import annotations

import grimp

from tools.layering import AcyclicModulesContract, _components


def test_components_are_the_cycles_and_nothing_else() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": {"g"}, "g": {"f"}}
    assert sorted(_components("abcdefg", edges)) == [["a", "b", "c"], ["f", "g"]]


def _graph(imports: list[tuple[str, str]]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for module in {m for pair in imports for m in pair} | {"app", "app.feed", "app.outbox"}:
        graph.add_module(module)
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return graph


def _check(imports: list[tuple[str, str]]) -> bool:
    contract = AcyclicModulesContract(
        name="acyclic", session_options={}, contract_options={"containers": ["app"]}
    )
    return contract.check(_graph(imports), verbose=False).kept


def test_a_cycle_of_two_modules_in_different_packages_breaks_it() -> None:
    cycle = [("app.feed.changes", "app.outbox.write"), ("app.outbox.write", "app.feed.changes")]
    assert not _check(cycle)
    assert _check(cycle[:1])

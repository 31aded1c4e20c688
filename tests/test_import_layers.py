"""The package's import graph: no circle between modules, and no arrow from a lower layer up to a higher one.

Imports are read from the source (``ast``), those inside functions included: a deferred import is still
an arrow between the two modules, only one that the interpreter happens to tolerate.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx  # a dependency of torch

ROOT = Path(__file__).resolve().parents[1]
# pyproject's package-dir: two sub-packages of colasearch live in folders of their own.
PACKAGE_FOLDERS = {"colasearch": ROOT / "colasearch", "colasearch.searchers": ROOT / "searchers",
                   "colasearch.objectives": ROOT / "objectives"}

# (lower, higher): no module under ``lower`` may import one under ``higher``.
LAYERS = [
    ("colasearch.tasks", "colasearch.evaluator"),  # the composite task is handed its scorer
    ("colasearch.runtime", "colasearch.moe"),  # MoE gating plugs into the runtime's forward hooks
    ("colasearch.decoder", "colasearch.runtime"),
    ("colasearch.decoder", "colasearch.moe"),
    ("colasearch.distributed", "colasearch.engine"),  # Ray runs behind the Executor interface below both
    ("colasearch.executor", "colasearch.engine"),
    ("colasearch.executor", "colasearch.distributed"),
]


def package_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGE_FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module that ``import name`` runs last: ``name`` itself, or the package it is an attribute of."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(_resolve(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from package import name``: name is a submodule, or an attribute of the package.
                targets.add(_resolve(f"{base}.{alias.name}", modules) if f"{base}.{alias.name}" in modules
                            else _resolve(base, modules))
    targets.discard(None)
    targets.discard(module)
    return targets


def import_graph() -> networkx.DiGraph:
    modules = package_modules()
    graph = networkx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        graph.add_edges_from((module, target) for target in imported_modules(module, path, modules))
    return graph


def circles(graph: networkx.DiGraph) -> list[list[str]]:
    """Each group of modules that import one another round a circle, sorted."""
    return sorted(sorted(group) for group in networkx.strongly_connected_components(graph) if len(group) > 1)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def upward_arrows(graph: networkx.DiGraph) -> list[tuple[str, str]]:
    return sorted((importer, imported) for importer, imported in graph.edges
                  for lower, higher in LAYERS if _under(importer, lower) and _under(imported, higher))


def test_no_module_of_the_package_imports_itself_round_a_circle():
    assert circles(import_graph()) == []


def test_no_lower_layer_imports_a_higher_one():
    assert upward_arrows(import_graph()) == []


def test_imports_inside_functions_and_relative_imports_are_read(tmp_path):
    source = tmp_path / "composite.py"
    source.write_text("import json\nfrom colasearch.tasks import base\n\n\ndef run():\n"
                      "    from colasearch.evaluator.reference import reference_scores\n    from . import splits\n")
    modules = {name: tmp_path / "other.py" for name in (
        "colasearch.tasks", "colasearch.tasks.base", "colasearch.tasks.splits", "colasearch.evaluator",
        "colasearch.evaluator.reference")}
    modules["colasearch.tasks.composite"] = source
    assert imported_modules("colasearch.tasks.composite", source, modules) == {
        "colasearch.tasks.base", "colasearch.evaluator.reference", "colasearch.tasks.splits"}


def test_the_package_graph_holds_the_sub_packages_in_folders_of_their_own():
    graph = import_graph()
    assert graph.has_edge("colasearch.objectives.constrained", "colasearch.objectives.quality")
    assert graph.has_edge("colasearch.engine.loop", "colasearch.searchers.base")


def test_a_planted_circle_and_a_planted_upward_arrow_are_found():
    graph = networkx.DiGraph([("colasearch.a", "colasearch.b"), ("colasearch.b", "colasearch.a"),
                              ("colasearch.tasks.composite", "colasearch.evaluator.forward")])
    assert circles(graph) == [["colasearch.a", "colasearch.b"]]
    assert upward_arrows(graph) == [("colasearch.tasks.composite", "colasearch.evaluator.forward")]


if __name__ == "__main__":  # print the lists, for a report
    print("circles:", *circles(import_graph()), sep="\n  ")
    print("upward arrows:", *upward_arrows(import_graph()), sep="\n  ")

"""No module of ours imports another that imports it back.

The graph is read from the source with `ast`, not by importing anything: every
`import` and `from ... import` statement counts, at module level or inside a function,
and so do the imports under `if TYPE_CHECKING:`. Those do not run, but a cycle through
them is still two modules that each need the other to be understood, which is the
coupling this test exists to prevent; none is needed today, so they stay in the one
graph rather than a second, laxer one.

An edge goes to the module an import names: `from pkg import name` points at
`pkg.name` when that is one of our modules and at `pkg` otherwise. A submodule gets no
edge to its parent package's `__init__` merely for living inside it (Python has the
package in `sys.modules` before the submodule runs); an explicit `from pkg import name`
written inside `pkg` does count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support.managed import REPO_ROOT

PACKAGES = ("room_service", "edge_gateway", "meeting_common", "tools", "tests")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of the given packages, by dotted name."""
    return {
        module_name(root, path): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "node_modules" not in path.parts
    }


def _imported(module: str, path: Path) -> Iterator[tuple[str, str | None]]:
    """(module, name) for each `from module import name`; (module, None) for `import`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield from ((base, alias.name) for alias in node.names)


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Each of our modules to the modules of ours it imports."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for base, name in _imported(module, path):
            target = f"{base}.{name}" if f"{base}.{name}" in modules else base
            if target in modules and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One closed path through each strongly connected group of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_closed_path(graph, group) for group in groups]


def _closed_path(graph: Mapping[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle inside {sorted(group)}")


def test_no_module_of_ours_imports_one_that_imports_it_back() -> None:
    graph = import_graph(our_modules(REPO_ROOT, PACKAGES))
    found = [" -> ".join(path) for path in cycles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_the_graph_holds_our_packages_imports_including_type_checking_ones() -> None:
    graph = import_graph(our_modules(REPO_ROOT, PACKAGES))
    assert "room_service.config" in graph["room_service.app"]
    assert "meeting_common.grpc_metrics.client" in graph["meeting_common.grpc_metrics"]
    assert "edge_gateway.config" in graph["edge_gateway.auth"]
    assert "tests.support.managed" in graph["tests.unit.test_import_graph"]


def test_a_cycle_is_found_and_named(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.a import A\n",
        "pkg/a.py": "A = 1\ndef late():\n    from . import b\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import C\n",
        "pkg/c.py": "import pkg.a\nC = 1\n",
        "pkg/d.py": "from pkg import a, b\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)

    graph = import_graph(our_modules(tmp_path, ("pkg",)))

    assert graph["pkg"] == {"pkg.a"}
    assert graph["pkg.d"] == {"pkg.a", "pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]

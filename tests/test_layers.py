"""The packages form one-way layers (DESIGN.md section 4), and no two modules import each other.

Imports are read from the syntax tree of every module (imports inside functions included: a deferred
import is still a dependency), never from text, so a comment or a string cannot hide or fake one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Each package may import itself and the packages listed for it; everything else in the project is a
# later layer. The sample world is no transform: it is its own package, used by the CLI, tests and
# benchmarks, and may use only the storage layer (its atomic writer).
LAYERS = ["warehouse", "transforms", "training", "pipelines", "assets", "recforge"]
ALLOWED: dict[str, set[str]] = {name: set(LAYERS[: i + 1]) for i, name in enumerate(LAYERS)}
ALLOWED["sample_world"] = {"warehouse", "sample_world"}
ALLOWED["recforge"] |= {"sample_world"}
PROJECT = set(ALLOWED)

# Only the Dagster layers import dagster (STYLE.md rule 2).
DAGSTER_PACKAGES = {"assets", "recforge"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PROJECT:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every module name ``module`` imports (project modules resolved to the deepest existing module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in modules else base


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {i for i in _imported(m, p, modules)} for m, p in modules.items()}


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    offenders = []
    for module, imports in sorted(graph.items()):
        package = module.split(".")[0]
        for name in sorted(imports):
            top = name.split(".")[0]
            if top in PROJECT and top not in ALLOWED[package]:
                offenders.append(f"{module} imports {name} (a later layer)")
            if top == "dagster" and package not in DAGSTER_PACKAGES:
                offenders.append(f"{module} imports dagster (only {sorted(DAGSTER_PACKAGES)} may)")
    return offenders


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    edges = {m: {i for i in imports if i in graph and i != m} for m, imports in graph.items()}
    return sorted(sorted(c) for c in _strongly_connected(edges) if len(c) > 1)


def test_every_import_points_to_the_same_or_an_earlier_layer() -> None:
    assert _layer_violations(_graph()) == []


def test_no_two_modules_import_each_other() -> None:
    assert _cycles(_graph()) == []


def test_the_checks_see_violations() -> None:
    # A transform importing dagster and an asset, and two modules importing each other through a third.
    fake = {"transforms.x": {"dagster", "assets.raw", "warehouse.store"}, "warehouse.store": set()}
    assert _layer_violations(fake) == [
        "transforms.x imports assets.raw (a later layer)",
        "transforms.x imports dagster (only ['assets', 'recforge'] may)",
    ]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative: the module graph may be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                components.append(component)
    return components

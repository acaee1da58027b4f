"""searec's import graph: no cycles, and no import from a lower layer into a higher one.

Read from the source with ast (nothing is imported). An import of ``a.b.c`` also runs the
``__init__`` of every package on the way that the importer is not already inside, so
those count as edges too: that is how a package ``__init__`` that imports upwards makes a
cycle at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Low to high; a module may import its own layer and the ones below. Keyed by the first
# part after "searec." ("" is the package root, the public API over everything).
LAYERS: list[set[str]] = [
    {"errors", "io", "topk", "csr", "scores", "schema", "losses", "ops", "optim", "plugins",
     "version", "hugepages"},
    {"data", "features", "graphs", "evaluation"},
    {"separation"},
    {"models"},
    {"training"},
    {"config"},
    {"runs"},
    {"inference"},
    {"experiments", "testing"},
    {"cli", "__main__", ""},
]


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module}: not in any layer of tests/test_layers.py; add it")


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "searec").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an import names: itself, or the longest prefix that is a module."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # `from a import b` imports a.b when b is a module, else a's attribute
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                         for a in node.names]
            for name in names:
                target = _resolve(name, modules)
                if target is None or target == module:
                    continue
                graph[module].add(target)
                # the __init__ of each package on the way, unless the importer is inside it
                parts = target.split(".")
                for depth in range(2, len(parts)):
                    pkg = ".".join(parts[:depth])
                    if pkg != module and not module.startswith(pkg + "."):
                        graph[module].add(pkg)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_a_higher_layer():
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in import_graph().items() for t in sorted(targets)
              if _layer(t) > _layer(m)]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize(("low", "forbidden"), [
    ("data", ("models", "training", "experiments", "cli")),
    ("graphs", ("models", "training", "experiments", "cli")),
    ("evaluation", ("models", "training", "experiments", "cli")),
    ("models", ("training",)),
    ("separation", ("models", "training")),
])
def test_named_layer_rules(low: str, forbidden: tuple[str, ...]):
    bad = [f"{m} imports {t}" for m, targets in import_graph().items()
           if m == f"searec.{low}" or m.startswith(f"searec.{low}.")
           for t in targets if any(t == f"searec.{f}" or t.startswith(f"searec.{f}.")
                                   for f in forbidden)]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a planted cycle and a planted upward edge are found."""
    graph = {"searec.data.a": {"searec.data.b"}, "searec.data.b": {"searec.data.a"}}
    assert _cycle(graph) == ["searec.data.a", "searec.data.b", "searec.data.a"]
    assert _layer("searec.models.sea") > _layer("searec.data.dataset")
    real = import_graph()
    assert "searec.models.base" in real["searec.models.sea"]
    # an import of searec.training.trainer runs searec/training/__init__.py too
    assert "searec.training" in real["searec.runs"]

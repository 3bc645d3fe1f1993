"""Package boundaries, checked on the source: no import cycle between files, and
``hardware`` uses only kiosk's leaf modules; only composition roots import hardware."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "hardware")
# What hardware may import from kiosk: leaves that import no other kiosk module
# (or only each other) and never PyJWT, requests or the flows.
HARDWARE_MAY_USE = {
    "kiosk",  # the package itself (``__version__``)
    "kiosk.config",
    "kiosk.decode",
    "kiosk.errors",
    "kiosk.events",
    "kiosk.token_shape",
    "kiosk.vocabulary",
    "kiosk.worker",
}
# The composition roots: the only kiosk modules that may import hardware (kiosk.sources
# holds the builders of the input sources, which kiosk.service and kiosk.selftest call).
COMPOSITION_ROOTS = ("kiosk.service", "kiosk.sources", "kiosk.demo", "kiosk.rig", "kiosk.selftest")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that runs (module level or lazy in a function), not TYPE_CHECKING ones."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (n for branch in node.orelse for n in _imports(ast.Module([branch], [])))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = targets or [base]
        out.update(t for t in targets if t in modules and t != name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_known_edges() -> None:
    graph = _graph()
    assert "kiosk.vocabulary" in graph["kiosk.views"]
    assert "kiosk.backend.bodies" in graph["kiosk.journal.store"]
    assert "kiosk.flows.delivery" in graph["kiosk.flows.context"]  # a lazy import counts
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_files() -> None:
    assert _cycles(_graph()) == []


def test_hardware_imports_only_kiosk_leaves() -> None:
    graph = _graph()
    wrong = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith("hardware")
        for target in targets
        if target.startswith("kiosk") and target not in HARDWARE_MAY_USE
    }
    assert wrong == set()
    for leaf in HARDWARE_MAY_USE - {"kiosk"}:
        assert all(not t.startswith("hardware") for t in graph[leaf]), leaf


def test_only_composition_roots_import_hardware() -> None:
    graph = _graph()
    wrong = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith("kiosk") and not name.startswith(COMPOSITION_ROOTS)
        for target in targets
        if target.startswith("hardware")
    }
    assert wrong == set()


def test_the_decoder_and_readers_do_not_load_the_jwt_stack() -> None:
    code = (
        "import sys, kiosk.decode, hardware.camera, hardware.scanners, hardware.signals;"
        "print(sorted(m for m in ('jwt', 'requests', 'kiosk.tokens', 'kiosk.flows')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

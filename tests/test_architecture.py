"""The import graph of the project, read from the source with ``ast``: one direction, no cycles.

Layers, top to bottom (a module may import from its own package or any
package below it, never above; the node packages never import each other):

    tools -> scenarios -> sim_node | hw_node | camera_node | policy_node -> roarm -> bus -> schemas

Project imports sit at the top of their module: an import inside a function
hides a dependency (and, before, hid cycles). Heavy optional third-party
packages (MuJoCo, Isaac Sim, onnxruntime, matplotlib, ...) may still be
imported inside the function that needs them. Subcommands that ``hil`` loads
by name (``"package.module:attribute"`` strings, tools/lazy_group.py) count
as imports too.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"schemas": 0, "bus": 1, "roarm": 2, "sim_node": 3, "hw_node": 3, "camera_node": 3, "policy_node": 3,
          "scenarios": 4, "tools": 5}
NODE_LAYER = 3
# What the bus may import from outside the standard library and the project:
# it loads inside Isaac Sim's own Python. Three modules add one package each.
BUS_THIRD_PARTY = {"zmq", "msgpack", "google", "numpy"}
BUS_EXTRA = {"bus.cli_options": {"click"}, "bus.yamlsource": {"yaml"},
             # Foxglove's camera message types (pure Python, loads on protobuf 5.26: tests/test_schemas.py).
             "schemas.foxglove": {"foxglove_schemas_protobuf"}}
LAZY_REFERENCE = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)*):[A-Za-z_]\w*$")


@dataclass
class Import:
    source: str  # importing module
    target: str  # imported project module (or package)
    line: int
    in_function: bool
    lazy_reference: bool = False


@dataclass
class Graph:
    root: Path
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    third_party: dict[str, set[str]] = field(default_factory=dict)  # module -> top-level packages

    def where(self, imp: Import) -> str:
        return f"{self.modules[imp.source].relative_to(self.root)}:{imp.line}"

    def edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {m: set() for m in self.modules}
        for imp in self.imports:
            if imp.target != imp.source:
                out[imp.source].add(imp.target)
        return out


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to: itself, or its nearest enclosing package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _function_lines(tree: ast.AST) -> set[int]:
    """Line numbers of every statement inside a function body (nested ones too)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    lines.add(inner.lineno)
    return lines


def scan(root: Path, packages: tuple[str, ...] = tuple(LAYERS)) -> Graph:
    """Every project module under ``root`` and every import it makes, wherever in the module."""
    graph = Graph(root)
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph.modules[module_name(path, root)] = path
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(), str(path))
        in_function = _function_lines(tree)
        is_package = path.name == "__init__.py"
        outside: set[str] = set()
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, is_package)
                # ``from pkg import sub`` names a module when pkg/sub.py exists
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in graph.modules else base for a in node.names]
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and (match := LAZY_REFERENCE.match(node.value)) and match.group(1).split(".")[0] in LAYERS):
                target = _resolve(match.group(1), graph.modules)
                assert target is not None, f"{path}:{node.lineno}: {node.value!r} names no project module"
                graph.imports.append(Import(module, target, node.lineno, False, lazy_reference=True))
                continue
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in LAYERS:
                    target = _resolve(name, graph.modules)
                    assert target is not None, f"{path}:{node.lineno}: import of {name!r}, which does not exist"
                    graph.imports.append(Import(module, target, node.lineno, node.lineno in in_function))
                elif top not in stdlib:
                    outside.add(top)
        graph.third_party[module] = outside
    return graph


def layer_violations(graph: Graph) -> list[str]:
    problems = []
    for imp in graph.imports:
        source, target = imp.source.split(".")[0], imp.target.split(".")[0]
        where = graph.where(imp)
        if LAYERS[target] > LAYERS[source]:
            problems.append(f"{where}: {imp.source} imports {imp.target}, a layer above it")
        elif LAYERS[target] == LAYERS[source] == NODE_LAYER and source != target:
            problems.append(f"{where}: {imp.source} imports {imp.target}, another node package")
    return problems


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    edges = graph.edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> Graph:
    return scan(ROOT)


def test_the_scan_sees_the_whole_project(graph: Graph) -> None:
    assert len(graph.modules) > 100
    edges = graph.edges()
    assert "policy_node.policy.load" in edges["policy_node.node"]
    assert "sim_node.cli" in edges["tools.node_cli"]  # a subcommand loaded by name counts


def test_imports_point_down_and_never_sideways_between_nodes(graph: Graph) -> None:
    problems = layer_violations(graph)
    assert not problems, "\n".join(problems)


def test_no_import_cycles(graph: Graph) -> None:
    found = cycles(graph)
    assert not found, "\n".join(" <-> ".join(component) for component in found)


def test_no_project_import_inside_a_function(graph: Graph) -> None:
    hidden = [f"{graph.where(imp)}: {imp.source} imports {imp.target} inside a function"
              for imp in graph.imports if imp.in_function]
    assert not hidden, "\n".join(hidden)


def test_the_policy_library_stands_below_the_node(graph: Graph) -> None:
    """policy_node.policy is what the node, check-policy and training share: it imports none of them."""
    wrong = [f"{imp.source} imports {imp.target}" for imp in graph.imports
             if imp.source.startswith("policy_node.policy") and imp.target.startswith("policy_node")
             and not imp.target.startswith("policy_node.policy")]
    assert not wrong, "\n".join(wrong)


def test_bus_imports_only_what_isaac_sims_python_has(graph: Graph) -> None:
    wrong = {module: sorted(packages - BUS_THIRD_PARTY - BUS_EXTRA.get(module, set()))
             for module, packages in graph.third_party.items() if module.split(".")[0] in ("bus", "schemas")}
    wrong.pop("schemas.generate", None)  # the developer's generator script (grpc_tools, inside its function)
    assert not {m: p for m, p in wrong.items() if p}, wrong


# -- the checks catch what they are meant to catch ------------------------------------------------

def _project(tmp_path: Path, files: dict[str, str]) -> Graph:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in {Path(name).parts[0] for name in files}:
        (tmp_path / package / "__init__.py").touch()
    return scan(tmp_path, tuple(sorted({Path(name).parts[0] for name in files})))


def test_the_checks_find_an_upward_import_a_sideways_one_a_cycle_and_a_hidden_one(tmp_path: Path) -> None:
    graph = _project(tmp_path, {
        "bus/a.py": "from roarm import b\n",                       # up
        "roarm/b.py": "import json\n",
        "sim_node/c.py": "from hw_node.d import X\n",              # sideways
        "hw_node/d.py": "X = 1\n",
        "tools/e.py": "from tools import f\n",                      # cycle e <-> f
        "tools/f.py": "def g():\n    from tools import e\n",      # ... hidden in a function
        "tools/g.py": "COMMANDS = {'x': 'sim_node.c:main'}\n",      # a lazy reference is an edge
    })
    problems = layer_violations(graph)
    assert any("bus.a imports roarm.b, a layer above" in p for p in problems), problems
    assert any("sim_node.c imports hw_node.d, another node package" in p for p in problems), problems
    assert cycles(graph) == [["tools.e", "tools.f"]]
    assert [(i.source, i.target) for i in graph.imports if i.in_function] == [("tools.f", "tools.e")]
    assert "sim_node.c" in graph.edges()["tools.g"]

"""Checks that the project's dependencies point one way.

    .venv/bin/python scripts/check_imports.py

Reads every module of the project (not tests, migrations, the simulators or the element test kit,
which test code only imports and the image leaves out) with ``ast``, and
counts every import, including those inside functions, which is where cycles hide (not those
under ``if TYPE_CHECKING:``, which exist for annotations only). Fails when

- modules import each other in a cycle (any length), or
- a layer imports a layer above it. Layers, bottom up: ``platform_core``; ``elements.framework``
  (the element framework: platform_core only); ``tenants``, ``instances``, ``usage``,
  ``transformations``; the ``elements`` app and its element folders; ``bulk`` and ``events``.
  ``platform_core.urls`` and
  ``platform_core.settings`` are the project's composition root (the URLconf includes every
  app's URLs), the one exception.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "platform_core",
    "tenants",
    "instances",
    "usage",
    "transformations",
    "elements",
    "bulk",
    "events",
)
SKIP_PARTS = {"tests", "migrations", "simulator", "simulators", "__pycache__"}
COMPOSITION_ROOT = {"platform_core.urls", "platform_core.settings", "platform_core.test_settings"}
# The element test kit: it builds tenants and instances for the conformance suite, as tests do.
TEST_SUPPORT_FILES = {"elements/framework/testing.py"}
TEST_SUPPORT_NAMES = {"conformance.py"}  # each element's declaration for the suite


def layer(module: str) -> int:
    if module.startswith("platform_core"):
        return 0
    # The bare ``elements`` package (empty) is where the framework's registry looks for folders.
    if module.startswith("elements.framework") or module == "elements":
        return 1
    if module.split(".")[0] in ("tenants", "instances", "usage", "transformations"):
        return 2
    if module.startswith("elements"):
        return 3
    return 4  # bulk, events


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if SKIP_PARTS & set(relative.parts):
                continue
            if relative.as_posix() in TEST_SUPPORT_FILES or relative.name in TEST_SUPPORT_NAMES:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a import b``: ``a.b`` when it is a module,
    else ``a``)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module``: the module (Python imports the package first
            # whatever the importer, so that edge says nothing); else the module named.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n for n in submodules if n in known] or [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return result


def main() -> int:
    found = modules()
    known = set(found)
    graph = {}
    for name, path in found.items():
        # A package's __init__ is not a dependency of its own submodules' imports of siblings.
        graph[name] = {m for m in imports_of(path, known) if m != name}
    problems = []
    for component in cycles(graph):
        problems.append("import cycle: " + " <-> ".join(component))
    for name, targets in sorted(graph.items()):
        if name in COMPOSITION_ROOT:
            continue
        for target in sorted(targets):
            if layer(target) > layer(name):
                problems.append(f"{name} imports {target}, a layer above it")
    for problem in problems:
        print(problem)
    print(f"{len(found)} modules, {sum(map(len, graph.values()))} imports: ", end="")
    print("no cycle, every import points down" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

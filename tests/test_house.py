"""Where code may reach (``docs/house.md``), read from the imports themselves (every
``import`` in a module, function-local ones included).

- The domain never imports the doubles, the demo world or the benchmarks: they use the
  domain, not the other way round. Only ``core/runtime.py``, the wiring that starts DEMO's
  database, sandbox and worker, may.
- ``core/`` never imports Streamlit: the pages are one caller of the domain among others
  (the command lines, the workers).
- No cycle among core's packages (its first-level packages and modules: ``core.scan``,
  ``core.jobs``, ``core.db``, ``core.worker``…): if ``core.scan`` imports ``core.jobs``,
  nothing ``core.jobs`` imports leads back to ``core.scan``. A command line's
  ``__main__`` (``python -m core.scan``) is an entry of its own, not part of its package:
  Python runs it, never imports it, so its imports close no cycle (and nothing may
  import one).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
OUTSIDE_THE_DOMAIN = ("core.demo", "core.sandbox", "core.bench")
WIRING = {"runtime.py"}


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports, with its line: ``from core import scan`` as
    ``core.scan``, a relative import as the absolute name it stands for."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(path, node.module, node.level)
            if module == "core":  # what the root package gives are its packages
                for alias in node.names:
                    yield f"core.{alias.name}", node.lineno
            elif module:
                yield module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def _absolute(path: Path, module: str | None, level: int) -> str | None:
    if level == 0:
        return module
    package = path.resolve().relative_to(CORE.parent).with_suffix("").parts[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join((*base, module) if module else base)


def _domain_modules() -> list[Path]:
    outside = {name.split(".")[1] for name in OUTSIDE_THE_DOMAIN}
    return [
        path
        for path in sorted(CORE.rglob("*.py"))
        if path.relative_to(CORE).parts[0] not in outside
        and str(path.relative_to(CORE)) not in WIRING
    ]


def test_the_domain_never_imports_the_demo_the_sandbox_or_the_benchmarks() -> None:
    modules = _domain_modules()
    assert len(modules) > 50  # the walk found the domain
    reaching = [
        f"{path.relative_to(CORE.parent)}:{line} imports {module}"
        for path in modules
        for module, line in _imports(path)
        if module.startswith(OUTSIDE_THE_DOMAIN)
    ]
    assert reaching == []


def test_core_never_imports_streamlit() -> None:
    reaching = [
        f"{path.relative_to(CORE.parent)}:{line} imports {module}"
        for path in sorted(CORE.rglob("*.py"))
        for module, line in _imports(path)
        if module.split(".")[0] == "streamlit"
    ]
    assert reaching == []


def test_the_walk_sees_function_local_imports(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text("def later() -> None:\n    from core.demo import seed_demo_world\n")
    assert list(_imports(module)) == [("core.demo", 2)]


def _node(path: Path) -> str:
    """The package a module of core belongs to (``core/scan/plan.py``: ``core.scan``), or,
    for a command line's ``__main__``, that entry itself (``core.scan.__main__``)."""
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    if parts[-1] == "__main__":
        return ".".join(parts)
    return ".".join(parts[:2])


def _package_graph() -> dict[str, dict[str, str]]:
    """package -> {package it imports: the first import that says so (file:line)}."""
    graph: dict[str, dict[str, str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        if path.parent == CORE and path.name == "__init__.py":
            continue
        source = _node(path)
        edges = graph.setdefault(source, {})
        for module, line in _imports(path):
            parts = module.split(".")
            if parts[0] != "core" or len(parts) < 2:
                continue
            target = ".".join(parts[:2])
            if target != source and target not in edges:
                edges[target] = f"{path.relative_to(CORE.parent)}:{line} imports {module}"
    return graph


def _cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each sorted: the
    packages that import one another, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_no_cycle_among_core_s_packages() -> None:
    graph = _package_graph()
    assert {"core.scan", "core.compare", "core.jobs", "core.db", "core.worker"} <= set(graph)
    cycles = _cycles(graph)
    where = [
        f"{' <-> '.join(group)}:\n"
        + "\n".join(
            f"  {source} -> {target}: {line}"
            for source in group
            for target, line in sorted(graph[source].items())
            if target in group
        )
        for group in cycles
    ]
    assert cycles == [], "packages of core that import one another:\n" + "\n".join(where)


def test_nothing_imports_a_command_line_entry() -> None:
    """What keeps a ``__main__`` out of its package's imports (see the module's note)."""
    reaching = [
        f"{path.relative_to(CORE.parent)}:{line} imports {module}"
        for path in sorted(CORE.rglob("*.py"))
        for module, line in _imports(path)
        if module.split(".")[-1] == "__main__"
    ]
    assert reaching == []


def test_the_cycle_finder_finds_cycles_and_only_those() -> None:
    graph = {
        "core.a": {"core.b": "a.py:1"},
        "core.b": {"core.c": "b.py:1"},
        "core.c": {"core.a": "c.py:1", "core.d": "c.py:2"},
        "core.d": {},
        "core.e": {"core.f": "e.py:1"},
        "core.f": {"core.e": "f.py:1"},
    }
    assert _cycles(graph) == [["core.a", "core.b", "core.c"], ["core.e", "core.f"]]
    assert _cycles({"core.a": {"core.b": "a.py:1"}, "core.b": {}}) == []


def test_the_walk_reads_the_root_package_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text("from core import maintenance, scan\n")
    assert list(_imports(module)) == [("core.maintenance", 1), ("core.scan", 1)]
    inside = CORE / "scan" / "plan.py"
    assert _absolute(inside, None, 1) == "core.scan"  # from . import tasks
    assert _absolute(inside, "jobs.app", 2) == "core.jobs.app"  # from ..jobs.app import app

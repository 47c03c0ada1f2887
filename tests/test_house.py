"""Where code may reach (``docs/house.md``), read from the imports themselves (every
``import`` in a module, function-local ones included).

- The domain never imports the doubles, the demo world or the benchmarks: they use the
  domain, not the other way round. Only ``core/runtime.py``, the wiring that starts DEMO's
  database, sandbox and worker, may.
- ``core/`` never imports Streamlit: the pages are one caller of the domain among others
  (the command lines, the workers).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
OUTSIDE_THE_DOMAIN = ("core.demo", "core.sandbox", "core.bench")
WIRING = {"runtime.py"}


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


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

"""The example DAGs sit on top of the provider: no module outside ``example_dags`` imports it.

The operators, hooks and transfers must stay usable (and importable) without the shipped DAGs, and the DAGs
are built from the provider's public operators only. Read from the source with ``ast``, so an import inside
a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_ringcx"
EXAMPLE_DAGS = "airflow_provider_ringcx.example_dags"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every module ``path`` (the module ``module``) imports, relative imports resolved."""
    found: set[str] = set()
    package = (module or _module(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_no_module_outside_example_dags_imports_it() -> None:
    offenders = {
        _module(path): sorted(name for name in _imports(path) if name.startswith(EXAMPLE_DAGS))
        for path in PACKAGE.rglob("*.py")
        if not _module(path).startswith(EXAMPLE_DAGS)
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_check_sees_relative_and_function_level_imports(tmp_path: Path) -> None:
    assert f"{EXAMPLE_DAGS}.settings" not in _imports(PACKAGE / "operators" / "report.py")
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..example_dags import settings\n")
    assert f"{EXAMPLE_DAGS}.settings" in _imports(probe, "airflow_provider_ringcx.operators.probe")


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module's code (docstrings left out: they may name the shipped DAG)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_settings_code_names_a_dag_id() -> None:
    """The factory passes DAG ids; settings, task bodies and the factory never name the shipped DAG."""
    for name in ("settings.py", "tasks.py", "runplan.py", "factory.py"):
        strings = _code_strings(PACKAGE / "example_dags" / name)
        assert not [text for text in strings if "ringcx_recordings_to_s3" in text], name
    assert "ringcx_recordings_to_s3" in _code_strings(PACKAGE / "example_dags" / "ringcx_recordings_to_s3.py")

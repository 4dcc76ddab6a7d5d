"""Imports flow one way: gateway -> schema -> resolvers -> integrations. Nothing imports a layer above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["gateway", "schema", "resolvers", "integrations"]  # top to bottom


def project_imports(path: Path) -> set[str]:
    """Top-level project packages imported by a module, including imports inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_a_layer_above_it(layer: str) -> None:
    above = set(LAYERS[: LAYERS.index(layer)])
    offenders = {
        str(path.relative_to(ROOT)): sorted(project_imports(path) & above)
        for path in (ROOT / layer).rglob("*.py")
        if project_imports(path) & above
    }
    assert offenders == {}


def test_resolvers_and_integrations_know_nothing_of_http_or_graphql() -> None:
    banned = {"strawberry", "starlette", "graphql", "uvicorn"}
    offenders = {}
    for layer in ("resolvers", "integrations"):
        for path in (ROOT / layer).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            if names & banned:
                offenders[str(path.relative_to(ROOT))] = sorted(names & banned)
    assert offenders == {}


def test_only_gateway_reads_the_environment() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for layer in ("schema", "resolvers", "integrations")
        for path in (ROOT / layer).rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8") or "getenv(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []

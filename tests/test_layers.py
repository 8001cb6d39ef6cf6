"""The house's layers, read from the source: evalhub's modules import each other without a cycle (every
import counts: module level, inside functions, under TYPE_CHECKING), nothing below the Hub facade
imports it, and the tracking server imports no client, ML or notebook code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Who may import evalhub.hub: the facade's users (the notebook, the CLI, the tools that build a tiny
# model into a hub), and the package root, which re-exports it lazily.
ABOVE_THE_FACADE = ("evalhub", "evalhub.magics", "evalhub._magic", "evalhub.widgets", "evalhub.commands",
                    "evalhub.cli", "evalhub.tiny", "evalhub.t2i._train", "evalhub.hub")  # fmt: skip


def _modules(package: Path, prefix: str) -> dict[str, Path]:
    out = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    assert any(m.startswith(prefix) for m in out)
    return out


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from pkg import sub`` is an edge to ``pkg.sub``)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                found = known(target)
                if found is not None and found != module:
                    graph[module].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_evalhub_has_no_import_cycle() -> None:
    assert _cycles(_graph(_modules(ROOT / "evalhub", "evalhub"))) == []


def test_the_server_has_no_import_cycle() -> None:
    assert _cycles(_graph(_modules(ROOT / "server" / "evalhub_server", "evalhub_server"))) == []


def test_nothing_below_the_facade_imports_the_hub() -> None:
    graph = _graph(_modules(ROOT / "evalhub", "evalhub"))
    offenders = sorted(
        m for m, deps in graph.items() if "evalhub.hub" in deps and not m.startswith(ABOVE_THE_FACADE)
    )
    assert offenders == []


def test_the_server_imports_only_the_contract_of_the_client_package() -> None:
    """The server shares ``evalhub.protocol`` (and the package root it lives in), nothing else of evalhub;
    and no torch, ray, lm-eval or notebook library at all."""
    heavy = {"torch", "ray", "lm_eval", "transformers", "polars", "altair", "anywidget", "IPython", "httpx"}
    for path in (ROOT / "server" / "evalhub_server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in heavy, f"{path.name} imports {name}"
                if top == "evalhub":
                    assert name == "evalhub" or name.startswith("evalhub.protocol"), (
                        f"{path.name} imports {name}"
                    )

"""The shape of the code: packages by capability, imports that point one way.

Every import between the project's own modules is read from the source (top-level and inside
functions alike, since a lazy import still ties two modules together), and the graph must have no
ring: no module pair or longer cycle imports each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("infra", "components", "policy")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "venv" in path.relative_to(ROOT).parts:
                continue
            found[module_name(path)] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports (a `from pkg import mod` names the submodule)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                targets.add(sub if sub in known else source)
    return {t for t in targets if t in known and t != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_rings():
    graph = import_graph()
    assert len(graph) > 40, "the module walk found too few modules to mean anything"
    assert cycles(graph) == []


def test_the_ring_finder_finds_a_ring():
    # The check above is only worth something if it can fail.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_and_package_imports_are_edges(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from infra.config import yamlio\n    import infra.offline.plan\n")
    known = {"infra.config", "infra.config.yamlio", "infra.offline.plan", "x"}
    assert imports_of(path, "x", known) == {"infra.config.yamlio", "infra.offline.plan"}


def test_infra_keeps_a_handful_of_entry_modules():
    direct = sorted(p.name for p in (ROOT / "infra").glob("*.py"))
    assert len(direct) <= 6, direct
    for package in ("config", "offline", "policy", "failover", "cost", "dr", "traffic", "simulate"):
        assert (ROOT / "infra" / package / "__init__.py").is_file(), package


def test_the_failover_contract_import_path():
    from infra.failover import Control, Report, failover
    from infra.failover.orchestrator import Control as OrchestratorControl

    assert Control is OrchestratorControl
    assert callable(failover) and Report.__name__ == "Report"


def test_pure_logic_imports_no_pulumi():
    # Models, rules and orchestration test fast and run anywhere: no Pulumi import, direct or lazy.
    pure = ["infra.config.loader", "infra.config.readers", "infra.config.services", "infra.dr.pair",
            "infra.traffic.config", "infra.cost.model", "infra.policy.rules", "infra.failover.orchestrator",
            "components.spec", "components.shapes",
            "infra.simulate.hpa", "infra.simulate.engine", "infra.simulate.inputs", "infra.simulate.recommend",
            "infra.simulate.pricing", "infra.simulate.run"]
    modules = project_modules()
    for name in pure:
        tree = ast.parse(modules[name].read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0].startswith("pulumi")], name

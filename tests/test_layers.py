"""Dependencies point one way: no import cycles in worker/ and tasks/, and no domain module (tasks/)
reaching the Celery layer.

The graph is read from the source (every import statement, in functions too, and every function
the stage table names by ``Ref("module:name")``, imported when first called), not from what a test
run happens to import.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("worker", "tasks")
CELERY = ("celery", "kombu", "billiard")
# Modules that must work without Celery: the stage contract, the table, the runner and what the
# stages are given. (Everything in tasks/ is checked as well.)
CELERY_FREE = ("worker.job", "worker.stage", "worker.pipeline", "worker.runner", "worker.runtime",
               "worker.payloads", "worker.delayed", "worker.inflight", "worker.registry")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """What ``name`` imports: modules of ours (resolved to the deepest one that exists) and the
    top-level names of everything else."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def ours_or_theirs(dotted: str) -> str:
        probe = dotted
        while probe and probe not in known:
            probe = probe.rpartition(".")[0]
        return probe or dotted.split(".")[0]

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(ours_or_theirs(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                out.add(submodule if submodule in known else ours_or_theirs(base))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Ref"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.add(ours_or_theirs(node.args[0].value.partition(":")[0]))
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue  # not ours
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def celery_layer(edges: dict[str, set[str]]) -> set[str]:
    """Our modules that import Celery or kombu, directly or through another of ours."""
    layer = {m for m, deps in edges.items() if deps & set(CELERY)}
    grew = True
    while grew:
        more = {m for m, deps in edges.items() if m not in layer and deps & layer}
        layer |= more
        grew = bool(more)
    return layer


def test_the_checker_sees_a_cycle_and_the_celery_layer():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "celery"}, "e": {"d"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert celery_layer(edges) == {"d", "e"}
    real = graph()
    assert "worker.runner" in real["worker.celery_tasks"]  # function-level imports count too
    assert "tasks.fetch" in real["worker.pipeline"] and "celery" in real["worker.app"]  # and Ref("tasks.fetch:...")


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_domain_never_imports_the_celery_layer():
    edges = graph()
    layer = celery_layer(edges)
    assert {"worker.app", "worker.celery_tasks", "worker.dispatch"} <= layer
    leaks = sorted(m for m in edges if m.startswith("tasks") and m in layer)
    assert leaks == [], f"domain modules reaching Celery: {leaks}"
    assert sorted(set(CELERY_FREE) & layer) == []


def test_migrations_import_no_live_code():
    """A migration is a record of what was done; importing today's code would change it."""
    edges = graph()
    versions = [m for m in edges if m.startswith("worker.migrations.versions.")]
    assert versions
    assert {m: sorted(d for d in deps if d in edges) for m, deps in edges.items()
            if m in versions and deps & set(edges)} == {}


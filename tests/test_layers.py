"""The import rules between the rooms of analytics/ and dashboard/ (docs/architecture.md).

Every module is parsed with ast, so every import counts: at the top, inside a function (a
late import) or in a try block. Only imports under `if TYPE_CHECKING:` are left out: they
never run, and they let a lower room name a type in a hint (a plotly figure in publish/).

- only analytics/store/ imports the database driver (duckdb);
- only analytics/charts/ imports plotly and kaleido;
- only dashboard/ imports streamlit;
- analytics/stats/ imports nothing of the store, the charts, publishing or the analyses;
- arrows point down: a module imports from its own room or from a lower level (LEVELS);
- no import cycle among modules.

A failure names the module, its line and the import, and the rule it breaks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("analytics", "dashboard")

# Rooms from the bottom up. A module may import from its own room and from any lower level,
# never from a room of its own level or above. Rooms on one level are independent.
LEVELS: list[tuple[str, ...]] = [
    ("settings", "safe_files"),    # declared settings; the formula-safe CSV/XLSX writer (both import nothing of ours)
    ("store", "stats"),            # the database / pure estimators (numpy, pandas, scipy, statsmodels)
    ("access",),                   # roles, users, audit log
    ("outcomes",),                 # filters, period, outcome definitions, person-weeks
    ("ingest",),                   # import format, validation, load, bootstrap, synthetic data
    ("analyses",),                 # what a page or a command asks for
    ("charts",),                   # plotly figures and their files
    ("publish",),                  # privacy, exports, report: protected numbers into files
    ("cli",),                      # python -m analytics
    ("dashboard",),                # the Streamlit app
]
LEVEL = {room: i for i, rooms in enumerate(LEVELS) for room in rooms}

# third-party package -> the rooms that may import it
ONLY_IN = {"duckdb": {"store"}, "plotly": {"charts"}, "kaleido": {"charts"}, "streamlit": {"dashboard"}}
STATS_MAY_NOT_IMPORT = ("store", "charts", "publish", "analyses")

# (importer, imported module): breaks a rule today; each names the work that removes it.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    # TODO(storesql helper): connection imports migrations late, migrations imports connection.
    ("analytics.store.connection", "analytics.store.migrations"): "store <-> migrations cycle",
    # Store.open hands a postgresql:// address to the server store, a second engine built on Store.
    ("analytics.store.connection", "analytics.store.server"): "store <-> server store cycle (late import)",
}


@dataclass(frozen=True)
class Import:
    module: str   # the importing module
    target: str   # the imported module (a submodule where `from pkg import sub` names one)
    line: int
    text: str     # the import statement as written

    def __str__(self) -> str:
        path = self.module.replace(".", "/")
        return f"{self.module} ({path}.py:{self.line}): {self.text}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = all_modules()


def room(module: str) -> str:
    """'analytics.charts.render' -> 'charts'; 'analytics.__main__' -> 'cli'; 'dashboard.x' -> 'dashboard'."""
    parts = module.split(".")
    if parts[0] == "dashboard":
        return "dashboard"
    if module in ("analytics", "analytics.__main__"):
        return "cli"  # the package's docstring and version; `python -m analytics`
    return parts[1]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`) blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                skip |= {id(n) for n in ast.walk(child)}
    return skip


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[Import]:
    """Every import the module can run (top level, late, conditional), one per imported module."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        text = ast.unparse(node) if isinstance(node, (ast.Import, ast.ImportFrom)) else ""
        if isinstance(node, ast.Import):
            out += [Import(module, alias.name, node.lineno, text) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            targets = {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
            out += [Import(module, t, node.lineno, text) for t in sorted(targets)]
    return out


IMPORTS = {m: imports_of(m) for m in MODULES}
OURS = [i for imps in IMPORTS.values() for i in imps if i.target.split(".")[0] in PACKAGES]


def _failures(broken: list[tuple[Import, str]]) -> str:
    return "\n".join(f"  {imp}\n      -> {why}" for imp, why in broken)


def _known(imp: Import) -> bool:
    return (imp.module, imp.target) in KNOWN_EXCEPTIONS


# --- the rules --------------------------------------------------------------------------

@pytest.mark.parametrize("package", sorted(ONLY_IN))
def test_third_party_package_only_in_its_room(package: str):
    allowed = ONLY_IN[package]
    broken = [(i, f"only {', '.join(sorted(allowed))}/ may import {package}")
              for imps in IMPORTS.values() for i in imps
              if i.target.split(".")[0] == package and room(i.module) not in allowed and not _known(i)]
    assert not broken, f"{package} imported outside {', '.join(sorted(allowed))}/:\n{_failures(broken)}"


def test_stats_is_pure():
    broken = [(i, f"stats/ may not import analytics.{room(i.target)}")
              for i in OURS if room(i.module) == "stats" and i.target.startswith("analytics.")
              and room(i.target) in STATS_MAY_NOT_IMPORT and not _known(i)]
    assert not broken, f"analytics/stats/ must stay pure:\n{_failures(broken)}"


def test_every_module_has_a_room():
    lost = sorted({m for m in MODULES if room(m) not in LEVEL})
    assert not lost, f"modules in no room of tests/test_layers.py LEVELS (add the room there): {lost}"


def test_imports_point_down():
    broken = []
    for i in OURS:
        mine, theirs = room(i.module), room(i.target)
        if mine == theirs or _known(i) or i.target in PACKAGES:
            continue
        if LEVEL.get(theirs, len(LEVELS)) >= LEVEL.get(mine, -1):
            broken.append((i, f"{mine}/ (level {LEVEL.get(mine)}) may not import {theirs}/ "
                              f"(level {LEVEL.get(theirs)}): arrows point down"))
    assert not broken, f"imports that point up or sideways:\n{_failures(broken)}"


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(component) > 1 or v in edges.get(v, ()):
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles():
    edges: dict[str, set[str]] = {}
    for i in OURS:
        if i.target in MODULES and not _known(i):
            edges.setdefault(i.module, set()).add(i.target)
    cycles = find_cycles(edges)
    report = []
    for component in cycles:
        inside = [i for i in OURS if i.module in component and i.target in component and not _known(i)]
        report.append(" <-> ".join(component) + "\n" + "\n".join(f"    {i}" for i in inside))
    assert not cycles, "import cycles (late imports included):\n" + "\n".join(report)


# --- the checker itself -----------------------------------------------------------------

def test_find_cycles_sees_a_cycle_through_three_modules_and_nothing_in_a_tree():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}}) == []
    assert find_cycles({"a": {"a"}}) == [["a"]]


def test_late_imports_and_relative_imports_are_seen():
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    import plotly\n"
              "def f():\n    from analytics.publish import exports\n    import duckdb\n")
    tree = ast.parse(source)
    skip = _type_checking_nodes(tree)
    seen = [ast.unparse(n) for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]
    assert seen == ["from typing import TYPE_CHECKING", "from analytics.publish import exports", "import duckdb"]
    relative = ast.parse("from ..charts import render\nfrom . import privacy").body
    assert _resolve("analytics.publish.exports", relative[0]) == "analytics.charts"
    assert _resolve("analytics.publish.exports", relative[1]) == "analytics.publish"
    assert _resolve("analytics.publish", relative[1]) == "analytics.publish"  # in a package's __init__
    # a real late import: the CLI's commands import the analyses inside functions
    late = [i for i in IMPORTS["analytics.cli.analyses"] if i.target == "analytics.analyses.survival"]
    assert late and all(i.line > 1 for i in late)


def test_rooms_and_levels():
    assert room("analytics.charts.render") == "charts"
    assert room("analytics.__main__") == "cli"
    assert room("dashboard.views.home") == "dashboard"
    assert LEVEL["store"] == LEVEL["stats"] < LEVEL["access"] < LEVEL["outcomes"] < LEVEL["ingest"] \
        < LEVEL["analyses"] < LEVEL["charts"] < LEVEL["publish"] < LEVEL["cli"] < LEVEL["dashboard"]

"""Only analytics/store/ talks to the database: no SQL text and no `import duckdb`
anywhere else in the product (analytics/ and dashboard/).

SQL text is found in string literals (f-strings included, their pieces joined) by the
statement shapes this code base writes: SELECT ... FROM, INSERT INTO, UPDATE t SET,
DELETE FROM, CREATE/DROP/ALTER TABLE, WITH x AS (, CASE WHEN, and DuckDB's bound
parameter casts ($name::TYPE). Keywords are matched in capitals only, so prose such as
"select the program from the list" in a docstring is not SQL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from analytics.store.connection import REPO_ROOT

SQL_SHAPES = {
    "SELECT ... FROM": re.compile(r"\bSELECT\b.*?\bFROM\b", re.S),
    "INSERT INTO": re.compile(r"\bINSERT\s+INTO\b"),
    "UPDATE ... SET": re.compile(r"\bUPDATE\s+\w+\s+SET\b"),
    "DELETE FROM": re.compile(r"\bDELETE\s+FROM\b"),
    "DDL": re.compile(r"\b(CREATE|DROP|ALTER)\s+(OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?"
                      r"(TABLE|VIEW|INDEX|SEQUENCE)\b"),
    "WITH ... AS (": re.compile(r"\bWITH\s+\w+\s+AS\s*\("),
    "CASE WHEN": re.compile(r"\bCASE\s+WHEN\b"),
    "$param::TYPE": re.compile(r"\$\w+::[A-Z]"),
}
DRIVERS = ("duckdb",)

# SQL that another piece of work moves into the store layer; an entry must still hold SQL,
# so it is deleted here once the move has landed. None left.
PENDING: set[str] = set()


def product_modules() -> list[Path]:
    files = sorted((REPO_ROOT / "analytics").rglob("*.py")) + sorted((REPO_ROOT / "dashboard").rglob("*.py"))
    store = REPO_ROOT / "analytics" / "store"
    return [f for f in files if store not in f.parents]


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal with its line; an f-string's literal pieces joined by '{}'."""
    inside_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "{}".join(v.value if isinstance(v, ast.Constant) else ""
                                               for v in node.values)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings:
            out.append((node.lineno, node.value))
    return out


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            out.append((node.lineno, str(node.args[0].value)))
    return out


def findings(source: str) -> list[str]:
    """'line N: what' for each SQL text and each database-driver import in `source`."""
    tree = ast.parse(source)
    found = [f"line {line}: {shape}: {text.strip()[:70]!r}"
             for line, text in _strings(tree) for shape, pattern in SQL_SHAPES.items() if pattern.search(text)]
    found += [f"line {line}: imports {name}" for line, name in _imports(tree)
              if name.split(".")[0] in DRIVERS]
    return found


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


@pytest.mark.parametrize("path", product_modules(), ids=_relative)
def test_no_sql_outside_the_store(path: Path) -> None:
    if _relative(path) in PENDING:
        assert findings(path.read_text(encoding="utf-8")), (
            f"{_relative(path)} holds no SQL any more: remove it from PENDING")
        return
    assert findings(path.read_text(encoding="utf-8")) == []


def test_the_scan_covers_the_product() -> None:
    names = {_relative(p) for p in product_modules()}
    assert {"analytics/analyses/kpis.py", "analytics/access/users.py", "dashboard/common.py"} <= names
    assert not any(n.startswith("analytics/store/") for n in names)
    assert PENDING <= names


@pytest.mark.parametrize("source, expected", [
    ('Q = """\nSELECT a\nFROM t"""', ["SELECT ... FROM"]),
    ('def f(t):\n    return f"SELECT count(*) FROM {t}"', ["SELECT ... FROM"]),
    ('Q = f"SELECT {cols} FROM {t}"', ["SELECT ... FROM"]),
    ('X = "INSERT INTO audit_log VALUES (?)"', ["INSERT INTO"]),
    ('X = "UPDATE users SET role = ?"', ["UPDATE ... SET"]),
    ('X = "DELETE FROM users"', ["DELETE FROM"]),
    ('X = "CREATE TEMP TABLE pw AS SELECT 1"', ["DDL"]),
    ('X = "WITH p AS (SELECT 1) SELECT * FROM p"', ["SELECT ... FROM", "WITH ... AS ("]),
    ('X = "CASE WHEN weeks = 0 THEN 1 END"', ["CASE WHEN"]),
    ('X = f"p.enrolled_on <= $cutoff::DATE AND {w}"', ["$param::TYPE"]),
    ('"""Select the program from the list; update the view, then create a table of results."""', []),
    ('X = "Choose a period: the KPIs are computed WITH the filters FROM the sidebar."', []),
])
def test_the_scan_finds_sql_text(source: str, expected: list[str]) -> None:
    assert [f.split(": ")[1] for f in findings(source)] == expected


@pytest.mark.parametrize("source", ["import duckdb", "import duckdb as db", "from duckdb import connect",
                                    "import importlib\nimportlib.import_module('duckdb')"])
def test_the_scan_finds_the_driver(source: str) -> None:
    assert [f.split(": ")[1] for f in findings(source)] == ["imports duckdb"]

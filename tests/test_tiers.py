"""Every test is in exactly one tier, and the tiers are what README and pytest.ini say."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from conftest import COLLECTED_TIERS, TIERS

ROOT = Path(__file__).resolve().parent.parent
# Whole modules in one tier besides unit (test_engagement.py has one R test among unit tests).
MODULE_TIERS = {
    "test_cox_vs_r.py": "r", "test_survival_vs_r.py": "r", "test_tvcox_vs_r.py": "r",
    "test_browser.py": "browser", "test_browser_auth.py": "browser", "test_chart_export.py": "browser",
    "test_import_crash.py": "crash", "test_notebooks.py": "notebook",
    "test_assessments_vs_r.py": "r", "test_accessibility.py": "browser",
    "test_server_store.py": "postgres", "test_server_mirror_load.py": "postgres",
    "test_server_dashboard.py": "postgres", "test_server_sessions.py": "postgres",
    "test_server_scoping.py": "postgres",
    "test_cohort_trends_keyed.py": "unit", "test_recovery_capital_keyed.py": "unit",
    "test_server_disclosure_key.py": "postgres",
}


@pytest.fixture
def collected(request: pytest.FixtureRequest) -> dict[str, list[str]]:
    """node id -> tiers of every test collected in this run (before any -m selection)."""
    return request.config.stash[COLLECTED_TIERS]


def test_every_test_carries_exactly_one_tier(collected: dict[str, list[str]]):
    assert "tests/test_tiers.py::test_every_test_carries_exactly_one_tier" in collected
    wrong = {node: tiers for node, tiers in collected.items() if len(tiers) != 1}
    assert wrong == {}


def test_whole_modules_are_in_their_tier(collected: dict[str, list[str]]):
    for node, tiers in collected.items():
        module = node.split("::")[0].rsplit("/", 1)[-1]
        if module in MODULE_TIERS:
            assert tiers == [MODULE_TIERS[module]], node
    modules = {node.split("::")[0].rsplit("/", 1)[-1] for node in collected}
    if modules >= {path.name for path in (ROOT / "tests").glob("test_*.py")}:  # the whole suite ran
        r_tests = [node for node, tiers in collected.items() if tiers == ["r"]]
        assert "tests/test_engagement.py::test_time_varying_cox_matches_r_on_the_person_week_table" in r_tests
        assert {tier for tiers in collected.values() for tier in tiers} == set(TIERS)


def test_the_tiers_are_registered_and_documented():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "pytest.ini")
    registered = [line.split(":")[0].strip() for line in ini["pytest"]["markers"].strip().splitlines()]
    assert registered == list(TIERS)
    assert "--strict-markers" in ini["pytest"]["addopts"].split()  # a misspelt tier is an error
    assert ini["pytest"]["strict_markers"] == "true"  # (pytest 9 reads this one)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m pytest -m unit" in readme
    for tier in TIERS:
        assert f"`{tier}`" in readme, tier


def test_ci_runs_the_readme_test_command_and_checks_every_system_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("Run the tests:", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    command = block.strip()
    assert command.endswith("python -m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().splitlines()[-1] == command  # the last command: its status is the script's
    assert "set -euo pipefail" in ci
    for package in ("r-base-core", "r-cran-survival", "r-cran-lme4", "chromium", "fonts-dejavu-core",
                    "poppler-utils", "postgresql"):
        assert f" {package}" in ci, package
    assert "npm ci" in ci  # axe-core for the accessibility tests (package-lock.json)
    for check in ("library(survival); library(lme4)", "/usr/bin/chromium", "pdftotext",
                  "/usr/lib/postgresql/*/bin/initdb"):
        assert check in ci, check

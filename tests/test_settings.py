"""Settings declared once (analytics/settings.py): documented in the README, the CLI's defaults,
the library's defaults and the environment all agree, and nothing writes into os.environ."""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analytics import settings
from analytics.access.users import SignInPolicy
from analytics.cli.main import build_parser
from analytics.outcomes.definitions import OutcomeSettings
from analytics.publish import privacy
from analytics.settings import SETTINGS, Setting
from analytics.store.connection import resolve_path

ROOT = Path(__file__).resolve().parent.parent
ENV_VARS = [s.env for s in SETTINGS if s.env]


def readme_settings_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_readme_table_with_its_default(setting: Setting):
    key = f"`{setting.env or setting.cli}`"
    rows = [r for r in readme_settings_rows() if r[0].startswith(key)]
    assert len(rows) == 1, f"README's Settings table has no row for {key}"
    (_, default, meaning), = rows
    assert default == f"`{setting.shown_default()}`" and len(meaning) > 20


def test_the_readme_table_has_no_setting_that_is_not_declared():
    declared = {f"`{s.env or s.cli}`" for s in SETTINGS}
    assert {r[0].split(" ")[0] for r in readme_settings_rows()} == declared


def _options(parser: argparse.ArgumentParser, path: str = ""):
    """(command path, action) for every option of every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}".strip())
        elif action.option_strings:
            yield path, action


def test_cli_defaults_and_help_are_the_declared_ones():
    seen: dict[str, list[str]] = {}
    for command, action in _options(build_parser()):
        for s in SETTINGS:
            if s.cli in action.option_strings:
                seen.setdefault(s.name, []).append(command)
                if s is settings.STORE:  # None: resolved at run time ($OUTCOMES_DB, else the default)
                    assert action.default is None and "$OUTCOMES_DB" in action.help
                    assert s.shown_default() in action.help
                else:
                    assert action.default == s.default, (command, s.cli)
                    assert f"(default {s.shown_default()})" in action.help, (command, s.cli)
    assert set(seen["threshold"]) == {"report"}
    assert {"survival", "engagement", "report"} <= set(seen["inactivity_days"])
    every_command = {command for command, action in _options(build_parser())
                     if command and not isinstance(action, argparse._HelpAction)}  # not a group (users, audit)
    assert set(seen["store"]) == every_command  # every command takes --db


def test_library_defaults_are_the_declared_ones(monkeypatch: pytest.MonkeyPatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert OutcomeSettings().inactivity_days == settings.INACTIVITY_DAYS.default == 30
    assert privacy.DEFAULT_THRESHOLD == privacy.MIN_THRESHOLD == settings.THRESHOLD.default == 11
    with pytest.raises(ValueError, match="at least 11"):
        privacy.check_threshold(10)
    assert SignInPolicy() == SignInPolicy(max_failures=5, lockout_minutes=15, idle_minutes=30, session_hours=12)
    assert resolve_path() == ROOT / "data" / "outcomes.duckdb"


def test_environment_values_are_read_when_needed_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("OUTCOMES_IDLE_MINUTES", "0.5")
    monkeypatch.setenv("OUTCOMES_MAX_FAILED_SIGN_INS", "3")
    monkeypatch.setenv("OUTCOMES_DB", str(tmp_path / "x.duckdb"))
    policy = SignInPolicy()
    assert (policy.idle_minutes, policy.max_failures, policy.session_hours) == (0.5, 3, 12)
    assert resolve_path() == tmp_path / "x.duckdb"
    monkeypatch.setenv("OUTCOMES_SESSION_HOURS", "twelve")
    with pytest.raises(ValueError, match="OUTCOMES_SESSION_HOURS must be a number, not 'twelve'"):
        SignInPolicy()
    monkeypatch.setenv("OUTCOMES_SESSION_HOURS", " ")  # blank: the default
    monkeypatch.setenv("OUTCOMES_MAX_FAILED_SIGN_INS", "0")
    with pytest.raises(ValueError, match="OUTCOMES_MAX_FAILED_SIGN_INS must be at least 1, got 0"):
        SignInPolicy()
    with pytest.raises(ValueError, match="inactivity_days must be at least 1"):
        OutcomeSettings(cutoff=dt.date(2026, 1, 1), inactivity_days=0)


SOURCES = sorted([*(ROOT / "analytics").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py")])


def test_the_environment_is_read_only_through_settings_and_never_written():
    writes = re.compile(r"os\.environ\s*\[[^\]]+\]\s*=|environ\.(setdefault|update|pop)\(|putenv"
                        r"|os\.environ\b(?!\.get)")
    offenders = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        if path == ROOT / "analytics" / "settings.py":
            assert not re.search(r"os\.environ\s*\[[^\]]+\]\s*=|setdefault|putenv", text)
            continue
        if writes.search(text) or "getenv" in text or "environ.get" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], "read settings through analytics.settings; never write os.environ"


HEAVY = ("numpy", "pandas", "duckdb", "scipy", "statsmodels", "lifelines", "plotly", "reportlab", "streamlit")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return ast.literal_eval(run.stdout.strip())


def test_settings_and_the_cli_parser_import_no_heavy_package():
    assert _loaded_after("import analytics.settings") == []
    assert _loaded_after("from analytics.cli.main import build_parser\nbuild_parser().parse_args(['survival'])") == []


def test_a_survival_analysis_without_cox_needs_neither_scipy_stats_nor_statsmodels():
    assert _loaded_after("import analytics.analyses.survival, analytics.stats.competing\n"
                         "assert 'scipy.stats' not in sys.modules") == ["duckdb", "numpy", "pandas", "scipy"]

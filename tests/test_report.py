"""The outcome report: its numbers equal the analytics functions', no small count leaves,
the PDF opens, has every section and real colours; the CLI and the audit log."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analytics.access import audit
from analytics.analyses import cohorts
from analytics.analyses import kpis
from analytics.publish import report
from analytics.ingest.bootstrap import ensure_store
from analytics.publish.exports import ALL_ROW
from analytics.outcomes.filters import Filters
from analytics.analyses.kpis import Period
from analytics.store.connection import Store
from analytics.analyses.survival import analyse

ROOT = Path(__file__).resolve().parent.parent
PERIOD = Period(dt.date(2025, 10, 1), dt.date(2026, 9, 30))
TITLES = ["People served", "Engagement dose", "Retention", "Sobriety", "Cohort comparison",
          "Outcomes by program", "Methods"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store.open(ensure_store(tmp_path_factory.mktemp("report") / "s.duckdb"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def built(store: Store) -> report.Report:
    return report.build(store, PERIOD)


@pytest.fixture(scope="module")
def pdf(store: Store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    report.write_report(store, PERIOD, str(out), user="grant.writer")
    return out


def section(r: report.Report, title: str) -> report.Section:
    return next(s for s in r.sections if s.title == title)


def values(r: report.Report, title: str) -> pd.DataFrame:
    return section(r, title).exports[0].table.values


def test_people_served_and_dose_equal_the_kpis(store: Store, built: report.Report):
    overall = kpis.overview(store, Filters(), PERIOD).kpis
    served = values(built, "People served")
    assert served.loc[ALL_ROW, "active"] == overall["active"].current
    assert served.loc[ALL_ROW, "new_enrollments"] == overall["new_enrollments"].current
    for program in served.index.drop(ALL_ROW):
        one = kpis.overview(store, Filters(programs=(program,)), PERIOD).kpis
        assert served.loc[program, "active"] == one["active"].current
        assert served.loc[program, "new_enrollments"] == one["new_enrollments"].current
    dose = values(built, "Engagement dose")
    assert dose.loc[ALL_ROW, "meetings"] == overall["meetings"].current
    assert dose.loc[ALL_ROW, "meetings_per_active"] == pytest.approx(
        overall["meetings"].current / overall["active"].current)


@pytest.mark.parametrize(("title", "outcome", "times"), [("Retention", "retention", (30, 90, 180)),
                                                          ("Sobriety", "sobriety", (90, 180, 365))])
def test_survival_sections_equal_the_analysis(store: Store, built: report.Report, title, outcome, times):
    a = analyse(store, outcome, by="program", times=times,
                filters=Filters(enrolled_from=PERIOD.start, enrolled_to=PERIOD.end))
    protected = section(built, title).exports[0].table
    table, hidden = protected.values, protected.suppressed
    compared = 0
    for g in a.groups:
        assert table.loc[g.group, "n"] == g.n and table.loc[g.group, "events"] == g.events
        for t in times:
            expected, got = g.survival[t], table.loc[g.group, f"survival_{t}"]
            if hidden.loc[g.group, f"survival_{t}"]:  # hidden only because fewer than 11 are still followed
                assert hidden.loc[g.group, f"at_risk_{t}"] and 0 < a.curves[g.group].table.query(
                    "time >= @t").n_risk.iloc[0] < built.threshold
            elif expected is None:
                assert np.isnan(got)
            else:
                assert got == pytest.approx(expected), (g.group, t)
                compared += 1
    assert table.loc[ALL_ROW, "n"] == a.durations.n and compared >= 6


def test_cohort_section_equals_cohort_retention(store: Store, built: report.Report):
    r = cohorts.cohort_retention(store, Filters(enrolled_to=PERIOD.end), "quarter", max_months=12)
    protected = section(built, "Cohort comparison").exports[0].table
    table, hidden = protected.values, protected.suppressed
    compared = 0
    for cohort in table.index:
        for m in report.COHORT_MONTHS:
            got, expected = table.loc[cohort, f"month_{m}"], r.shares.loc[cohort, m]
            if hidden.loc[cohort, f"month_{m}"]:  # fewer than 11 still followed
                assert 0 < r.at_risk.loc[cohort, m] < built.threshold
            elif np.isnan(expected):
                assert np.isnan(got)
            else:
                assert got == pytest.approx(expected)
                compared += 1
    assert compared >= 20


def test_no_small_count_in_any_table(built: report.Report):
    for s in built.sections:
        for e in s.exports:
            shown = e.table.display()
            for col in e.table.counts:
                numbers = [v for v in shown[col] if not isinstance(v, str) and pd.notna(v)]
                assert not [v for v in numbers if 0 < v < built.threshold], (s.title, col)


def test_small_groups_are_hidden_with_a_complement(store: Store):
    """A site-level report on the sample has small weekly and cohort counts; one small program
    cell always comes with a second hidden cell in its column (the total is shown)."""
    r = report.build(store, Period(dt.date(2026, 9, 1), dt.date(2026, 9, 30)))
    served = section(r, "People served").exports[0].table
    shown = served.display()
    assert (shown["new_enrollments"] == "<11").any()
    hidden = served.suppressed["new_enrollments"].drop(ALL_ROW)
    assert hidden.sum() != 1


def test_pdf_has_every_section_and_the_method(pdf: Path):
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for title in TITLES:
        assert title in text
    assert "shown as \"<11\"" in text and "Data cutoff 2026-09-30" in text
    assert "statsmodels" in text and "reportlab" in text  # software versions in the appendix


def test_pdf_pages_render_in_colour(pdf: Path, tmp_path: Path):
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "2", "-l", "2", str(pdf), str(tmp_path / "p")],
                   check=True)
    page = next(tmp_path.glob("p*.png"))
    pixels = np.asarray(Image.open(page).convert("RGB")).reshape(-1, 3).astype(int)
    blue = np.abs(pixels - [0x00, 0x72, 0xB2]).sum(axis=1) < 60  # Okabe-Ito blue, not a grey placeholder
    assert blue.sum() > 50


def test_report_is_audited(store: Store, pdf: Path):
    entry = audit.entries(store, action="report").iloc[0]
    assert entry.user_name == "grant.writer" and entry.what == str(pdf)
    assert json.loads(entry.details)["period"] == [str(PERIOD.start), str(PERIOD.end)]


def test_threshold_below_11_is_refused(store: Store):
    with pytest.raises(ValueError, match="at least 11"):
        report.build(store, PERIOD, threshold=10)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analytics", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_report(tmp_path: Path):
    db = str(ensure_store(tmp_path / "cli.duckdb"))
    out = tmp_path / "r.pdf"
    done = cli("report", "--from", "2026-01-01", "--to", "2026-06-30", "--program", "Recovery Mentoring",
               "--out", str(out), "--db", db)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:5] == b"%PDF-" and "estimating retention" in done.stderr
    low = cli("report", "--from", "2026-01-01", "--to", "2026-06-30", "--threshold", "5", "--out",
              str(tmp_path / "x.pdf"), "--db", db)
    assert low.returncode == 2 and "at least 11" in low.stderr
    nobody = cli("report", "--from", "2026-01-01", "--to", "2026-06-30", "--program", "nope", "--out",
                 str(tmp_path / "y.pdf"), "--db", db)
    assert nobody.returncode == 1 and "nobody was active" in nobody.stderr
    backwards = cli("report", "--from", "2026-06-30", "--to", "2026-01-01", "--out", str(tmp_path / "z.pdf"),
                    "--db", db)
    assert backwards.returncode == 2
    assert not any((tmp_path / n).exists() for n in ("x.pdf", "y.pdf", "z.pdf"))
    with Store.open(db, read_only=True) as s:
        log = audit.entries(s, action="report")
    assert list(log.what) == [str(out)]


def test_report_bytes_open_as_pdf(built: report.Report):
    data = report.render_pdf(built)
    assert data[:5] == b"%PDF-" and b"%%EOF" in data[-1024:]
    assert len(io.BytesIO(data).getvalue()) > 50_000

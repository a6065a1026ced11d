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
from analytics.publish import cellkey, disclosure, report
from analytics.ingest.bootstrap import ensure_store
from analytics.publish.exports import ALL_ROW
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import Period
from analytics.store.connection import Store
from analytics.analyses.survival import analyse
from analytics.stats.survival import kaplan_meier
from tests import cellkey_truth as truth
from tests.disclosure_data import set_secret
from tests.disclosure_auditor import actuarial_of, survival_noise
from analytics.outcomes.definitions import durations

ROOT = Path(__file__).resolve().parent.parent
PERIOD = Period(dt.date(2025, 10, 1), dt.date(2026, 9, 30))
TITLES = ["People served", "Engagement dose", "Retention", "Sobriety", "Cohort comparison",
          "Outcomes by program", "Methods"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store.open(ensure_store(tmp_path_factory.mktemp("report") / "s.duckdb"))
    set_secret(s, 3)  # the same noise on every run (a store's own secret is random)
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


def test_people_served_and_dose_equal_the_kpis_perturbed(store: Store, built: report.Report):
    """Counts of people are the KPIs' true counts perturbed by the cell key method: each equals the
    perturbation of its members (found here with pandas) and is within 2 of the true count; counts
    of meetings are exact; per active participant divides by the published (perturbed) count."""
    overall = kpis.overview(store, Filters(), PERIOD).kpis
    served = values(built, "People served")
    moved = 0
    for program in served.index:
        which = {} if program == ALL_ROW else {"programs": (program,)}
        true = kpis.overview(store, Filters(**which), PERIOD).kpis
        for col, members in (("active", truth.active), ("new_enrollments", truth.new_enrollments)):
            ids = members(store, PERIOD.start, PERIOD.end, **which)
            assert len(ids) == true[col].current
            assert served.loc[program, col] == truth.published(store, ids), (program, col)
            assert abs(served.loc[program, col] - true[col].current) <= 2
            moved += served.loc[program, col] != true[col].current
    assert moved >= 3  # the noise is there: 8 cells, each unmoved with chance 1/5
    dose = values(built, "Engagement dose")
    assert dose.loc[ALL_ROW, "meetings"] == overall["meetings"].current
    assert dose.loc[ALL_ROW, "active"] == served.loc[ALL_ROW, "active"]
    assert dose.loc[ALL_ROW, "meetings_per_active"] == pytest.approx(
        overall["meetings"].current / served.loc[ALL_ROW, "active"])


def published_counts(store: Store, sub: pd.DataFrame, points: list[int]) -> tuple[list[int], list[int], list[int]]:
    """The life table's published counts on ``points``, worked out here: at risk at each point, events
    and censored in each interval, each the cell key method's count of the participants behind it."""
    ids = lambda rows: set(rows.participant_id)  # noqa: E731
    at_risk = [truth.published(store, ids(sub[sub.days >= d])) for d in points]
    inside = [sub[(sub.days >= a) & (sub.days < b)] for a, b in zip(points, points[1:])]
    return (at_risk, [truth.published(store, ids(i[i.event])) for i in inside],
            [truth.published(store, ids(i[~i.event])) for i in inside])


@pytest.mark.parametrize(("title", "outcome", "times"), [("Retention", "retention", (30, 90, 180)),
                                                          ("Sobriety", "sobriety", (90, 180, 365))])
def test_survival_sections_equal_the_life_table(store: Store, built: report.Report, title, outcome, times):
    """Every published survival is the actuarial value, at a published point of the group's own grid,
    of the published counts; every number at risk, event and censoring count is the true count
    perturbed by the cell key method (found here from the durations: the perturbation of its
    members, within 2 of the true count)."""
    d = durations(store, outcome, filters=Filters(enrolled_from=PERIOD.start, enrolled_to=PERIOD.end)).frame
    lt = built.life_tables[outcome]
    table = section(built, title).exports[0].table.values
    compared = 0
    for g in lt.groups:
        sub = d if g == ALL_ROW else d[d.program == g]
        points = lt.grid(g)
        at_risk, events, censored = published_counts(store, sub, points)
        assert (at_risk, events, censored) == (lt.at_risk[g], lt.events[g], lt.censored[g])
        assert abs(table.loc[g, "n"] - len(sub)) <= 2 and table.loc[g, "n"] == at_risk[0]
        surv = actuarial_of(at_risk, events, censored)
        for t in times:
            if t in points:
                k = points.index(t)
                assert table.loc[g, f"survival_{t}"] == pytest.approx(surv[k], abs=1e-15), (g, t)
                assert table.loc[g, f"at_risk_{t}"] == at_risk[k]
                assert abs(at_risk[k] - (sub.days >= t).sum()) <= 2
                compared += 1
            else:
                assert np.isnan(table.loc[g, f"survival_{t}"]) and np.isnan(table.loc[g, f"at_risk_{t}"])
    assert compared >= 5  # 6 before the noise: perturbed counts merge one more sobriety interval here


def test_life_table_is_close_to_kaplan_meier(store: Store, built: report.Report):
    """The published value differs from Kaplan-Meier of the true counts by the actuarial method's
    share (about half the censored share of an interval: under 3 points on the sample) plus the
    noise: at most the sum over the intervals so far of how far each factor can move when each
    published count is off by up to cellkey.MAX_NOISE (about 2 / at risk each). Holds for any secret:
    checked on the report and on its life table under several other secrets."""
    filters = Filters(enrolled_from=PERIOD.start, enrolled_to=PERIOD.end)
    a = analyse(store, "retention", by="program", times=(30, 90, 180), filters=filters)
    frame = a.durations.frame
    tables = [built.life_tables["retention"]] + [
        disclosure.life_table(frame.days.to_numpy(), frame.event.to_numpy(), frame.program.to_numpy(),
                              (*report.CANDIDATE_DAYS, 30, 90, 180), keys=cellkey.record_keys(
                                  np.random.default_rng(seed).bytes(32), frame.participant_id))
        for seed in range(4)]
    compared = 0
    for lt in tables:
        for g in a.groups:
            for t in (30, 90, 180):
                value, _ = lt.at(g.group, t)
                if value is not None:
                    bound = 0.03 + survival_noise(lt, g.group, lt.grids[g.group].index(t))
                    assert abs(value - g.survival[t]) <= bound, (g.group, t, bound)
                    compared += 1
    assert compared >= 20


def cohort_members(d: pd.DataFrame, cohort: str) -> pd.DataFrame:
    """The participants of a cohort label: "All", a quarter, or a run "2024-Q2 to 2024-Q4"."""
    if cohort == ALL_ROW:
        return d
    first, _, last = cohort.partition(" to ")
    return d[d.cohort_quarter.between(first, last or first)]


def test_cohort_section_equals_its_life_table(store: Store, built: report.Report):
    lt = built.life_tables["cohorts"]
    table = section(built, "Cohort comparison").exports[0].table.values
    months = [int(c.removeprefix("month_")) for c in table.columns if c.startswith("month_")]
    compared = 0
    d = durations(store, "retention", filters=Filters(enrolled_to=PERIOD.end)).frame
    assert sum(len(cohort_members(d, c)) for c in table.index if c != ALL_ROW) == len(d)  # runs cover everyone once
    for cohort in table.index:
        members = cohort_members(d, cohort)
        assert abs(table.loc[cohort, "n"] - len(members)) <= 2
        assert table.loc[cohort, "n"] == truth.published(store, set(members.participant_id))
        at_risk, events, censored = published_counts(store, members, lt.grid(cohort))
        surv = actuarial_of(at_risk, events, censored)
        km = kaplan_meier(members.days.to_numpy(), members.event.to_numpy())
        for m in months:
            got = table.loc[cohort, f"month_{m}"]
            if not np.isnan(got):
                k = lt.grid(cohort).index(cohorts.month_day(m))
                assert got == pytest.approx(surv[k], abs=1e-15)
                assert table.loc[cohort, f"at_risk_{m}"] == at_risk[k] >= 11
                assert abs(got - km.at(cohorts.month_day(m))) <= 0.03 + survival_noise(lt, cohort, k)  # Kaplan-Meier
                compared += 1
    assert compared >= 3


def test_cohort_comparison_publishes_most_of_its_cells(store: Store, built: report.Report):
    """Quarters kept apart published 3 of 40 cells on the sample; the cohorts and months chosen
    publish at least half of the values of cohorts followed long enough, for at least 3 cohorts,
    and the section says what was chosen."""
    s = section(built, "Cohort comparison")
    values = s.exports[0].table.values.drop(index=ALL_ROW)
    shares = values[[c for c in values.columns if c.startswith("month_")]]
    lt = built.life_tables["cohorts"]
    d = durations(store, "retention", filters=Filters(enrolled_to=PERIOD.end)).frame
    followed = {g: (built.cutoff - pd.to_datetime(cohort_members(d, g).start).max().date()).days
                for g in values.index}
    possible = sum(cohorts.month_day(int(c.removeprefix("month_"))) + 30 <= followed[g]
                   for g in values.index for c in shares.columns if g in lt.groups)
    published = int(shares.notna().sum().sum())
    assert published >= 3 and published >= 0.5 * possible, (published, possible)
    assert (shares.notna().any(axis=1)).sum() >= 3
    assert f"({published} of {possible} values" in s.text and "merged" in s.text


def test_every_perturbed_table_says_so(built: report.Report):
    """The exports whose counts of people are perturbed state it in their method line (files and
    the Published charts page); the appendix names the method."""
    for title in ("People served", "Engagement dose", "Outcomes by program", "Retention", "Sobriety",
                  "Cohort comparison"):
        export = section(built, title).exports[0]
        assert export.table.perturbed and "cell key method" in export.lines()[-1], title
    assert dict(built.methods)["Consistent perturbation (cell key method)"].startswith("Counts of people")


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
    assert "Cutler-Ederer" in text and "Hundepool" in text  # the method, named in the appendix
    flat = " ".join(text.split())
    assert "Consistent perturbation (cell key method)" in flat and "Australian Bureau of Statistics" in flat
    assert "off by at most 2" in flat  # its effect on accuracy
    assert "statsmodels" in text and "reportlab" in text  # software versions in the appendix


def test_long_method_texts_appear_once(pdf: Path):
    """The life-table, cell-key and suppression methods are stated once, in the appendix; the captions
    of the Retention, Sobriety and Cohort sections refer to it."""
    from analytics.publish import cellkey, disclosure, privacy

    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    for method in (disclosure.METHOD.format(t=11), cellkey.METHOD.format(t=11), privacy.method_statement(11)):
        opening = " ".join(method.split()[:12])
        assert text.count(opening) == 1, opening
    assert text.count(report.SHORT_METHOD) >= 3


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


def test_report_bytes_open_as_pdf(built: report.Report, tmp_path: Path):
    data = report.render_pdf(built)
    assert data[:5] == b"%PDF-" and b"%%EOF" in data[-1024:]
    (tmp_path / "r.pdf").write_bytes(data)
    info = subprocess.run(["pdfinfo", str(tmp_path / "r.pdf")], capture_output=True, text=True, check=True).stdout
    assert int(next(l for l in info.splitlines() if l.startswith("Pages:")).split()[1]) >= len(TITLES) + 1


def test_no_near_empty_page_and_no_split_table(pdf: Path, built: report.Report):
    """Every page holds more than a spilled caption, and every table is one table across the page."""
    from analytics.publish import report_pdf

    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    words = [len(p.split()) for p in pages if p.strip()]
    assert min(words) > 100, words
    for s in built.sections:
        for e in s.exports:
            tables = report_pdf._tables(e.table.display())
            assert len(tables) == 1 and len(tables[0]._cellvalues[0]) <= 10, s.title


def test_a_value_and_its_number_at_risk_share_a_cell():
    from analytics.publish import formatting

    frame = pd.DataFrame({"n": [158], "survival_30": [0.8933], "at_risk_30": [126], "ci_low": [3.3],
                          "ci_high": [5.01]}, index=pd.Index(["A"], name="group"))
    out = formatting.formatted(frame)
    assert out.loc["A"].tolist() == ["158", "89.3% (126)", "3.30 to 5.01"]
    assert list(out.columns) == ["n", "survival 30 (at risk)", "95% CI"]


def test_published_tables_are_formatted_as_in_the_pdf(built: report.Report):
    """What the Published charts page shows: labels, not column names; percentages, not floats;
    blanks, never None or nan."""
    from analytics.publish.formatting import formatted

    for s in built.sections:
        for e in s.exports:
            table = formatted(e.table.display())
            assert not [c for c in table.columns if "_" in c], s.title
            cells = table.to_numpy().ravel().tolist()
            assert all(isinstance(v, str) for v in cells)
            assert not [v for v in cells if v in ("None", "nan", "NaN") or "0.96153" in v or "e-" in v]
    values = section(built, "Retention").exports[0].table.values
    retention = formatted(section(built, "Retention").exports[0].table.display())
    assert retention.loc[ALL_ROW, "survival 30 (at risk)"] == (
        f"{values.loc[ALL_ROW, 'survival_30']:.1%} ({int(values.loc[ALL_ROW, 'at_risk_30']):,})")

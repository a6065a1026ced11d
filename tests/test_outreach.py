"""The outreach ranking (issue 13): the landmark windows against a plain SQL definition, no
leakage after a cutoff, the AUC against its definition, simulated data with no engagement
effect (terms cover 1, no skill beyond days silent) and with the generator's known effects
(recovered, skill shown), the fallback, the command line and the numbers on the sample.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics.analyses import engagement
from analytics.analyses.outreach import (TERMS, outreach, outreach_csv, reasons, windows, _words)
from analytics.analyses.outreach_settings import OutreachSettings
from analytics.ingest import importer, synthetic
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.definitions import OutcomeSettings
from analytics.outcomes.filters import Filters
from analytics.outcomes.person_weeks import ONLINE_MEETING_SQL, person_weeks
from analytics.stats.discrimination import auc, auc_difference
from analytics.store.connection import Store
from analytics.store.queries.outreach import outreach_activity, outreach_people
from conftest import TODAY

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 9, 30)  # the sample's last day

# The window table as one SQL query: the reference definition (module docstring of
# analytics.analyses.outreach), which the numpy construction must equal row for row.
REFERENCE_SQL = """
WITH p AS (
    SELECT p.participant_id, p.program, p.site, p.enrolled_on, p.exited_on, p.exit_reason
    FROM participants p WHERE {where} AND p.enrolled_on <= $as_of::DATE),
activity AS (
    SELECT participant_id, attended_on AS d, CASE WHEN {online} THEN 1 ELSE 0 END AS kind, NULL::BOOLEAN AS used
        FROM attendance WHERE attended_on <= $as_of::DATE
    UNION ALL SELECT participant_id, checked_in_on, 2, used FROM checkins WHERE checked_in_on <= $as_of::DATE
    UNION ALL SELECT participant_id, met_on, 3, NULL FROM mentoring WHERE met_on <= $as_of::DATE),
buckets AS (  -- per participant and window j: the activity dated in (s_j - horizon, s_j]
    SELECT a.participant_id, ($as_of::DATE - a.d) // $horizon::INTEGER AS j,
           count(*) FILTER (WHERE kind = 0)::INTEGER AS in_person, count(*) FILTER (WHERE kind = 1)::INTEGER AS online,
           count(*) FILTER (WHERE kind = 2)::INTEGER AS checkins, count(*) FILTER (WHERE kind = 3)::INTEGER AS mentoring,
           coalesce(arg_max(used, d) FILTER (WHERE kind = 2), false) AS used_last,
           max(d) AS last_day, min(d) AS first_day
    FROM activity a JOIN p USING (participant_id) GROUP BY ALL),
grid AS (
    SELECT p.*, unnest(range(0, ($as_of::DATE - p.enrolled_on) // $horizon::INTEGER + 1)) AS j FROM p),
joined AS (
    SELECT g.*, ($as_of::DATE - ($horizon::INTEGER * g.j)::INTEGER) AS s,
           coalesce(b.in_person, 0) AS in_person, coalesce(b.online, 0) AS online,
           coalesce(b.checkins, 0) AS checkins, coalesce(b.mentoring, 0) AS mentoring,
           coalesce(b.used_last, false) AS used_last,
           max(b.last_day) OVER (PARTITION BY g.participant_id ORDER BY g.j DESC ROWS UNBOUNDED PRECEDING) AS seen,
           nb.first_day AS next_contact
    FROM grid g
    LEFT JOIN buckets b ON b.participant_id = g.participant_id AND b.j = g.j
    LEFT JOIN buckets nb ON nb.participant_id = g.participant_id AND nb.j = g.j - 1),
state AS (
    SELECT *, greatest(coalesce(seen, enrolled_on), enrolled_on) AS last_contact,
           greatest(coalesce(seen, enrolled_on), enrolled_on) + $inactivity::INTEGER AS silent_day,
           exited_on IS NOT NULL AND exited_on <= s AS exited
    FROM joined WHERE s >= enrolled_on),
windows AS (
    SELECT *, s - last_contact < $inactivity::INTEGER AND NOT exited AS active,
           j > 0 AND silent_day <= s + $horizon::INTEGER
               AND (next_contact IS NULL OR next_contact > silent_day) AS goes_silent,
           j > 0 AND exited_on IS NOT NULL AND exited_on <= s + $horizon::INTEGER AS exit_in
    FROM state)
SELECT participant_id, program, site, j, s, enrolled_on, last_contact,
       (s - last_contact)::INTEGER AS days_silent, (s - enrolled_on)::INTEGER AS tenure_days,
       in_person, online, checkins, mentoring, used_last, active,
       CASE WHEN j = 0 THEN 0
            WHEN exit_in AND (NOT goes_silent OR exited_on <= silent_day) THEN exited_on - s
            WHEN goes_silent THEN silent_day - s
            ELSE $horizon::INTEGER END::INTEGER AS stop,
       CASE WHEN exit_in AND (NOT goes_silent OR exited_on <= silent_day) THEN exit_reason = 'dropped_out'
            ELSE coalesce(goes_silent, false) END AS event
FROM windows
WHERE (active OR (j = 0 AND NOT exited)) AND j <= $max_j
ORDER BY j, participant_id
"""


def reference_windows(store: Store, filters: Filters, as_of: dt.date) -> pd.DataFrame:
    where, params = filters.where("p")
    return store.df(REFERENCE_SQL.format(where=where, online=ONLINE_MEETING_SQL), {
        **params, "as_of": as_of, "horizon": 28, "inactivity": 30, "max_j": 10**6})


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Store:
    store = Store.open(ensure_store(tmp_path_factory.mktemp("outreach") / "s.duckdb"), read_only=True)
    yield store
    store.close()


@pytest.fixture(scope="module")
def result(sample: Store):
    return outreach(sample)


# --- the windows ------------------------------------------------------------------------

@pytest.mark.parametrize("filters, as_of", [(Filters(), AS_OF), (Filters(programs=("Recovery Mentoring",)), AS_OF),
                                            (Filters(), dt.date(2026, 3, 14))])
def test_windows_equal_the_sql_definition(sample: Store, filters: Filters, as_of: dt.date):
    people = outreach_people(sample, filters, as_of)
    got = windows(people, outreach_activity(sample, filters, as_of, 28), 28, 30)
    want = reference_windows(sample, filters, as_of)
    assert len(got) == len(want) > 100
    assert got.person.map(dict(enumerate(people.participant_id))).tolist() == want.participant_id.tolist()
    for col in ("j", "days_silent", "tenure_days", "in_person", "online", "checkins", "mentoring", "used_last",
                "active", "stop", "event"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    assert got.program.astype(str).tolist() == want.program.astype(str).tolist()
    assert got[got.j > 0].event.sum() > 20  # leavings to learn from


# --- nothing after a cutoff leaks into it ---------------------------------------------------

def truncated_copy(sample: Store, tmp_path: Path, cutoff: dt.date) -> Store:
    """A copy of the sample holding only what was known on `cutoff`."""
    path = tmp_path / "truncated.duckdb"
    shutil.copyfile(sample.path, path)
    store = Store.open(path)
    with store.transaction() as s:
        for table, col in (("attendance", "attended_on"), ("checkins", "checked_in_on"), ("mentoring", "met_on")):
            s.execute(f"DELETE FROM {table} WHERE {col} > $c", {"c": cutoff})
        s.execute("UPDATE participants SET exited_on = NULL, exit_reason = NULL WHERE exited_on > $c", {"c": cutoff})
        s.execute("DELETE FROM participants WHERE enrolled_on > $c", {"c": cutoff})
    return store


def test_no_leakage_after_a_cutoff(sample: Store, result, tmp_path: Path):
    k = 4
    cutoff = result.backtest.cutoffs[-k]
    assert cutoff == AS_OF - dt.timedelta(days=28 * k)
    with truncated_copy(sample, tmp_path, cutoff) as known:
        then = outreach(known, as_of=cutoff)
        assert known.scalar("SELECT max(attended_on) FROM attendance") <= cutoff
    # the backtest's model at that cutoff is the model fitted on what was known then
    past = result.backtest.models[-k]
    assert past.kind == then.model.kind == "fitted" and past.events == then.model.events
    np.testing.assert_allclose(past.coef, then.model.coef, rtol=1e-12)  # (sums in another order)
    assert past.baseline == pytest.approx(then.model.baseline, rel=1e-12)
    # and who it scored then, with what risk, is the list one would have drawn up that day
    row = result.backtest.per_cutoff.iloc[-k]
    assert row.active == len(then.participants)
    # the full store looked at as of the cutoff gives exactly the same, backtest included
    again = outreach(sample, as_of=cutoff)
    assert rounded(again.to_json()) == rounded(then.to_json())


def rounded(doc):
    """JSON with floats to 10 significant digits (fits agree to rounding error)."""
    if isinstance(doc, dict):
        return {k: rounded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [rounded(v) for v in doc]
    return float(f"{doc:.10g}") if isinstance(doc, float) else doc


# --- the AUC ----------------------------------------------------------------------------------

def test_auc_is_the_mann_whitney_statistic_with_delong_errors():
    rng = np.random.default_rng(3)
    event = rng.random(400) < 0.3
    score = rng.normal(size=400) + event + np.round(rng.random(400), 1)  # with ties
    got = auc(score, event)
    u = stats.mannwhitneyu(score[event], score[~event]).statistic
    assert got.estimate == pytest.approx(u / (event.sum() * (~event).sum()), rel=1e-12)
    # DeLong's variance by its definition: S10 / n1 + S01 / n0 over all pairs
    pos, neg = score[event], score[~event]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    delong = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert got.se ** 2 == pytest.approx(delong, rel=0.01)  # equal up to factors (n - 1) / n
    assert got.ci == pytest.approx((got.estimate - 1.959964 * got.se, got.estimate + 1.959964 * got.se))
    # clusters of one row each: the same variance
    assert auc(score, event, np.arange(400)).se == pytest.approx(got.se, rel=1e-12)
    # every row three times: no more information; the cluster-robust SE says so, the naive one does not
    tripled = auc(np.repeat(score, 3), np.repeat(event, 3), np.repeat(np.arange(400), 3))
    assert tripled.estimate == pytest.approx(got.estimate)
    assert tripled.se == pytest.approx(got.se, rel=0.01)
    assert auc(np.repeat(score, 3), np.repeat(event, 3)).se < 0.6 * got.se
    # the paired difference of a score with itself is 0, with no error; of two scores, as it should be
    same = auc_difference(score, score, event)
    assert same.estimate == 0 and same.se == 0
    other = score + rng.normal(size=400)
    diff = auc_difference(score, other, event)
    assert diff.estimate == pytest.approx(got.estimate - auc(other, event).estimate)
    assert 0 < diff.se < got.se + auc(other, event).se


# --- the sample -------------------------------------------------------------------------------

def test_the_sample_model_backtest_and_list(result):
    m, b = result.model, result.backtest
    assert result.as_of == AS_OF
    assert m.kind == "fitted" and m.events >= 50
    assert [t.term for t in m.terms][:7] == list(TERMS)
    silent = m.terms[0]
    assert silent.term == "weeks_silent" and silent.ci[0] > 1  # a longer silence, a higher risk
    assert len(b.cutoffs) == 13 and b.cutoffs[-1] == AS_OF - dt.timedelta(days=28)
    assert all((later - earlier).days == 28 for earlier, later in zip(b.cutoffs, b.cutoffs[1:]))
    assert 0.5 < b.model.auc.estimate < 1 and 0.5 < b.days_silent.auc.estimate < 1
    assert b.model.auc.ci[0] < b.model.auc.estimate < b.model.auc.ci[1]
    assert b.difference.estimate == pytest.approx(b.model.auc.estimate - b.days_silent.auc.estimate)
    # calibration: tenths of the pooled backtest rows, predicted risk rising, observed shares real
    cal = b.calibration
    assert cal.tenth.tolist() == list(range(1, 11))
    assert cal.n.sum() == b.per_cutoff.active.sum() and cal.n.max() - cal.n.min() <= 1
    assert cal.predicted.is_monotonic_increasing
    assert ((cal.observed >= 0) & (cal.observed <= 1)).all()
    assert cal.observed.iloc[-1] > cal.observed.iloc[0]
    assert (b.per_cutoff.model_top20_left <= 20).all()
    assert b.model.top20_left == pytest.approx(b.per_cutoff.model_top20_left.mean())
    # the list: active participants, highest risk first, each with its reasons
    ranked = result.participants
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert ranked.risk_28d.is_monotonic_decreasing and ranked.risk_28d.between(0, 1).all()
    assert (ranked.days_since_contact < 30).all() and ranked.participant_id.is_unique
    assert all(1 <= len(r) <= 3 for r in ranked.reasons.head(20))
    top = ranked.iloc[0]
    assert f"no contact in {top.days_since_contact // 7} weeks" in top.reasons
    assert result.silent_no_exit > 0


def test_reasons_in_words(result):
    row = pd.Series({"days_silent": 23, "in_person": 0, "online": 2, "checkins": 1, "mentoring": 0,
                     "used_last": True, "tenure_days": 40})
    r = next(pd.DataFrame([row]).itertuples())
    assert _words("weeks_silent", r) == "no contact in 3 weeks"
    assert _words("in_person_groups", r) == "no in-person group meeting in 4 weeks"
    assert _words("online_communities", r) == "2 online community meetings in 4 weeks"
    assert _words("checkins", r) == "1 check-in in 4 weeks"
    assert _words("used_at_last_checkin", r) == "reported use at the last check-in"
    assert _words("first_90_days", r) == "in the first 90 days"
    # the words are the terms that raise this participant's risk most, against the average
    rows = pd.DataFrame([row, row.replace({23: 1})]).assign(
        program=pd.Categorical(["Community Peer Support"] * 2), used_last=[True, False])
    words = reasons(result.model, rows)
    assert words[0][0] == "no contact in 3 weeks" and "no contact" not in " ".join(words[1])


def test_csv_download_lists_the_ranking(result):
    text = outreach_csv(result.participants.head(5)).decode()
    lines = text.strip().split("\n")
    assert lines[0].startswith("rank,participant_id,program,site,risk_28d,reasons,")
    assert len(lines) == 6 and result.participants.participant_id.iloc[0] in lines[1]
    assert "; ".join(result.participants.reasons.iloc[0]) in lines[1]


def test_too_few_leavings_falls_back_to_days_silent(sample: Store):
    few = outreach(sample, Filters(programs=("Recovery Mentoring",)), as_of=dt.date(2025, 6, 1))
    assert few.model.kind == "days_silent" and few.model.events < 50 and not few.model.terms
    assert "ranked by days since the last contact alone" in few.rule
    ranked = few.participants
    assert ranked.risk_28d.isna().all()
    assert ranked.days_since_contact.is_monotonic_decreasing
    assert all(r == [_words("weeks_silent", SimpleNamespace(days_silent=d))]
               for r, d in zip(ranked.reasons, ranked.days_since_contact))
    doc = few.to_json()
    assert doc["model"]["kind"] == "days_silent" and doc["participants"][0]["risk_28d"] is None


# --- the command line ------------------------------------------------------------------------

def test_cli_json_shape_and_numbers(sample: Store, result):
    out = subprocess.run([sys.executable, "-m", "analytics", "outreach", "--top", "20", "--json",
                          "--db", str(sample.path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"as_of", "model", "backtest", "participants"} <= set(doc)
    assert {"kind", "events", "person_weeks", "terms"} <= set(doc["model"])
    assert all({"term", "hr", "ci", "p"} <= set(t) for t in doc["model"]["terms"])
    assert {"cutoffs", "model", "days_silent", "calibration"} <= set(doc["backtest"])
    for side in ("model", "days_silent"):
        assert {"auc", "auc_ci", "top20_left"} <= set(doc["backtest"][side])
    assert len(doc["participants"]) == 20
    assert all({"rank", "participant_id", "risk_28d", "reasons"} <= set(p) for p in doc["participants"])
    assert json.dumps(doc) == json.dumps(json.loads(json.dumps(result.to_json(20), default=str)))
    assert doc["backtest"]["model"]["auc"] == result.backtest.model.auc.estimate
    assert doc["participants"][0]["risk_28d"] == result.participants.risk_28d.iloc[0]
    text = subprocess.run([sys.executable, "-m", "analytics", "outreach", "--top", "3", "--program", "Nobody",
                           "--db", str(sample.path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert text.returncode == 1 and "nobody active" in text.stderr


# --- simulated data ---------------------------------------------------------------------------

NO_EFFECT = {"in_person": 1.0, "online": 1.0, "checkin": 1.0, "mentoring": 1.0}
# The ranking on one program: the programs' baseline hazards differ (a genuine skill beyond days
# silent, which the no-effect check is not about).
ONE_PROGRAM = Filters(programs=("Community Peer Support",))


def simulated(tmp_path: Path, participants: int, seed: int, dropout_hr: dict | None) -> Store:
    folder = tmp_path / "sim"
    synthetic.write_sample(folder, participants=participants, seed=seed, dropout_hr=dropout_hr)
    store = Store.open(folder / "s.duckdb")
    assert importer.import_files(store, [folder], today=TODAY).ok
    return store


def test_no_engagement_effect_terms_cover_1_and_no_skill_beyond_days_silent(tmp_path: Path):
    with simulated(tmp_path, 6000, 7, NO_EFFECT) as store:
        tv, _ = engagement.time_varying(store, "retention", ["program"], OutcomeSettings(), Filters())
        result = outreach(store, ONE_PROGRAM)
    for t in tv:  # in-person groups, online communities, check-ins, mentoring: each covers 1
        assert t.ci[0] < 1 < t.ci[1], t
    b = result.backtest
    assert result.model.kind == "fitted"
    assert b.difference.ci[0] < 0 < b.difference.ci[1], b.difference  # no skill beyond days silent
    assert b.model.auc.estimate > 0.6  # (days silent itself does tell)


def test_known_effects_recovered_and_the_ranking_shows_skill(tmp_path: Path):
    with simulated(tmp_path, 6000, 7, None) as store:
        tv, _ = engagement.time_varying(store, "retention", ["program"], OutcomeSettings(), Filters())
        result = outreach(store, ONE_PROGRAM)
    truth = synthetic.TRUTH["dropout"]
    got = {t.term: t for t in tv}
    for term, key in (("in_person_groups", "hr_per_in_person_meeting"), ("online_communities", "hr_per_online_meeting"),
                      ("mentoring", "hr_per_mentoring")):
        assert got[term].ci[0] - 0.02 < truth[key] < got[term].ci[1] + 0.02, (term, got[term])
    assert got["in_person_groups"].ci[1] < got["online_communities"].ci[0] < 1  # in person more than online
    terms = {t.term: t for t in result.model.terms}
    assert terms["in_person_groups"].ci[1] < 1  # and the outreach model learns it
    assert result.backtest.difference.ci[0] > 0, result.backtest.difference  # skill beyond days silent

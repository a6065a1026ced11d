"""Who is in a published cell, worked out here with pandas from the raw tables (not the product's
SQL), so a test can check a published count against analytics.publish.cellkey.perturb(secret, members)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics.publish import cellkey
from analytics.store.connection import Store
from analytics.store.queries.disclosure import cell_key_secret

_ACTIVITY = {"attendance": "attended_on", "checkins": "checked_in_on", "mentoring": "met_on"}


def participants(store: Store, programs: tuple[str, ...] = (), sites: tuple[str, ...] = ()) -> pd.DataFrame:
    p = store.df("SELECT participant_id, program, site, enrolled_on, exited_on FROM participants")
    for col in ("enrolled_on", "exited_on"):
        p[col] = pd.to_datetime(p[col]).dt.date
    keep = pd.Series(True, index=p.index)
    if programs:
        keep &= p.program.isin(programs)
    if sites:
        keep &= p.site.isin(sites)
    return p[keep]


def new_enrollments(store: Store, start: dt.date, end: dt.date, **which) -> set[str]:
    p = participants(store, **which)
    return set(p.participant_id[(p.enrolled_on >= start) & (p.enrolled_on <= end)])


def active(store: Store, start: dt.date, end: dt.date, **which) -> set[str]:
    """Enrolled by the end, no exit before the start, and a contact of any kind in the period."""
    p = participants(store, **which)
    p = p[(p.enrolled_on <= end) & (p.exited_on.isna() | (p.exited_on >= start))]
    seen: set[str] = set()
    for table, day in _ACTIVITY.items():
        a = store.df(f"SELECT participant_id, {day} AS day FROM {table}")
        a = a[(pd.to_datetime(a.day).dt.date >= start) & (pd.to_datetime(a.day).dt.date <= end)]
        seen |= set(a.participant_id)
    return set(p.participant_id) & seen


def published(store: Store, members: set[str]) -> int:
    """The count the cell key method publishes for these members in this store."""
    return cellkey.perturb(cell_key_secret(store), sorted(members))


def adherence_bands(store: Store, start: dt.date, end: dt.date, mondays: list[dt.date]) -> dict[str, set[str]]:
    """Members of each check-in adherence band: the period's active participants, their whole weeks
    (Mondays they were enrolled by, with no exit before the Sunday) and the weeks with a check-in."""
    p = participants(store).set_index("participant_id")
    checks = store.df("SELECT participant_id, checked_in_on FROM checkins")
    checks["day"] = pd.to_datetime(checks.checked_in_on).dt.date
    checks = checks[(checks.day >= start) & (checks.day <= end)]
    weeks_checked = {(r.participant_id, r.day - dt.timedelta(days=r.day.weekday())) for r in checks.itertuples()}
    bands: dict[str, set[str]] = {}
    for pid in active(store, start, end):
        row = p.loc[pid]
        eligible = [m for m in mondays if row.enrolled_on <= m
                    and (pd.isna(row.exited_on) or row.exited_on >= m + dt.timedelta(days=6))]
        if eligible:
            k = sum((pid, m) in weeks_checked for m in eligible)
            share = k / len(eligible)
            band = ("0%" if k == 0 else "100%" if k == len(eligible) else "1-24%" if share < 0.25 else
                    "25-49%" if share < 0.5 else "50-74%" if share < 0.75 else "75-99%")
            bands.setdefault(band, set()).add(pid)
    return bands


def caseloads(store: Store, start: dt.date, end: dt.date) -> dict[str, set[str]]:
    """Each mentor's active mentees: participants enrolled by the end, with no exit before the
    start, who met the mentor in the period."""
    p = participants(store)
    p = p[(p.enrolled_on <= end) & (p.exited_on.isna() | (p.exited_on >= start))]
    m = store.df("SELECT mentor_id, participant_id, met_on FROM mentoring")
    m["day"] = pd.to_datetime(m.met_on).dt.date
    m = m[(m.day >= start) & (m.day <= end) & m.participant_id.isin(set(p.participant_id))]
    return {mentor: set(g.participant_id) for mentor, g in m.groupby("mentor_id")}

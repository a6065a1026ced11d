"""Synthetic data for a peer-support addiction-recovery program network.

Writes the four import files of docs/import-format.md (version 1):
participants.csv, attendance.csv, checkins.csv, mentoring.csv. Everything is
made up; the generator exists so the app, the tests and the notebooks have
realistic data with *known* built-in effects that the statistics must recover.

Regenerate the committed sample with::

    python -m analytics sample --out data/sample --participants 800 --seed 20261127

The same (participants, seed, end) always gives byte-identical files.

Model (the built-in effects are also in ``TRUTH``)
-----------------------------------------------------
Participants. Enrolment days are spread over the 913 days (~2.5 years) up to
``end`` with a density rising linearly to 3x from first to last day and fewer
enrolments at weekends (Sat 0.3, Sun 0.2 of a weekday). Program shares drift
with enrolment time t in [0, 1]: Community Peer Support 0.50-0.15t, Recovery
Mentoring 0.30-0.05t, Online Recovery Community 0.20+0.20t. Sites:
Community Peer Support: Northside/Riverside/Eastgate (0.40/0.35/0.25);
Recovery Mentoring: Downtown/Westfield (0.60/0.40); Online Recovery
Community: the single site "Online". 25% have a sobriety_start 1-180 days
before enrolled_on; the rest leave it blank (= enrolled_on).

Time runs in weeks since each participant's enrolment: week k covers days
7k..7k+6 after enrolled_on. In week k the participant's engagement is drawn
first; the week's hazards then depend on the counts written for week k-1
(0 counts in week 0). Engagement never depends on relapse state.

Engagement. Each participant has a propensity e ~ lognormal(sigma 0.7, mean 1)
and every week a shared shock ~ lognormal(sigma 0.35, mean 1); rates decay
slowly with weeks in program by (1 + k/26)^-0.35.
* Meetings: a Bernoulli per day x meeting type (so keys are unique), with
  expected meetings/week = base (CPS 4.5, RM 3.5, online 5.0) x e x shock x
  decay, split over types by a per-participant preference (Dirichlet; the
  online program mostly online_community, AA/NA leaning by substance) and over
  weekdays by type-specific day-of-week weights (fewer on Sunday except AA).
  Modality (drawn as the meeting is simulated, since leaving depends on it):
  online_community always online, other types online with a
  per-participant probability (mean 0.12 / 0.20 / 0.75 by program). Minutes:
  typical per type (e.g. AA/NA 60, SMART 90), 10% blank.
* Check-ins: a Bernoulli per day, expected 3.3 x adherence x e^0.3 x shock x
  decay^0.5 per week, adherence ~ Beta(3, 2) (about 1-3 a week).
* Mentoring: 70% / 80% / 65% of participants (by program) get a pseudonymous
  mentor (M-0001..., numbered by site) of their site, from day 0-7; caseloads
  are skewed (mentor weights lognormal sigma 0.8, about 7 mentees per mentor
  over the whole period, so some have 1-3 and some 10+). Sessions:
  a Bernoulli per day, expected 0.8 / 1.2 / 0.6 per week by program x e^0.5 x
  personal factor x shock x decay. Modality in_person/phone/video/text by
  program; minutes 20-90 by modality, 8% blank (30% for text).

Leaving the program (latent dropout). In week k the daily hazard is constant:
    h = base_dropout[program] x 0.80^in_person x 0.95^online x 0.90^checkins x 0.75^mentoring
with the counts of week k-1 (in_person: meetings attended in person; online: meetings of
type online_community or with modality online, the rule the analyses use), base_dropout = 0.005 / 0.0035 / 0.007 per day
(CPS / RM / online). The leave time is drawn continuously within the week and
floored to a day; activity after the leave day is removed. A latent dropout is
recorded as exit_reason dropped_out, exited_on = leave day with probability
0.60 / 0.70 / 0.50; otherwise it is silent disengagement (activity just stops,
no exit recorded).

Other exits, unrelated to engagement (scheduled at enrolment, competing with
dropout, the earliest wins): completion after 52 weeks (CPS) or 26 weeks (RM):
still-enrolled participants complete during that week with probability 0.85,
the others later with probability 0.15 per extra week; the online program has
no fixed length, completion hazard 0.004/day after day 364. Constant daily
hazards: transferred 0.00015, incarcerated 0.00008, deceased 0.00003, other
0.00008. Participants still in at ``end`` have no exit.

First relapse, measured from enrolment (participants with an earlier
sobriety_start were sober up to enrolment): daily hazard constant within week k
    h = base_relapse[program] x substance x 0.90^meetings x 0.80^mentoring
with week k-1 counts (meetings in person or online alike; check-ins: no effect, HR 1.0), base_relapse = 0.006 /
0.005 / 0.007 per day, substance multipliers alcohol 1.0, opioids 1.4,
stimulants 1.25, cannabis 0.8, polysubstance 1.5, other 1.0. Relapse is only
simulated while the participant is in the program. Check-ins before the
relapse day have used=false, the first on or after it used=true, later ones
used=true with probability 0.15 + 0.50 x exp(-days since relapse / 60).

Check-in craving (0-10) drifts down by ~3 and mood (1-5) up by ~1.2 over the
first months (time constant 90 days); craving is higher and mood lower in the
two weeks before a relapse and stays raised after it (decaying). Gaussian
noise; 5% blank each.

What the files can show. Dropout: fitting the rule above on person-weeks built
from the files (recorded dropped_out = event; at risk to exited_on, or to the
last activity for the silent leavers) recovers 0.80 / 0.95 / 0.90 / 0.75 closely:
silent leavers are censored at their last activity, which costs events but
hardly biases the ratios. Relapse is only seen at the next check-in, so a
week without check-ins pushes detections into the following week; an analysis
of "first used=true check-in" shows a spurious protective check-in effect
(HR about 0.82 instead of 1.0) and attenuated meeting/mentoring effects
(about 0.94 / 0.86 instead of 0.90 / 0.80). The truths below are those of the
latent process.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

DEFAULT_SEED = 20261127
DEFAULT_END = datetime.date(2026, 9, 30)

EPOCH = datetime.date(1970, 1, 1)  # date32 day 0, a Thursday
NO_DAY = np.iinfo(np.int32).max
SPAN_DAYS = 913  # enrolment window, ~2.5 years

PROGRAMS = ("Community Peer Support", "Recovery Mentoring", "Online Recovery Community")
SITES = (  # (program index, site name, share within program)
    (0, "Northside", 0.40),
    (0, "Riverside", 0.35),
    (0, "Eastgate", 0.25),
    (1, "Downtown", 0.60),
    (1, "Westfield", 0.40),
    (2, "Online", 1.00),
)
# Alphabetical, so that sorting by code equals sorting by the written name.
MEETING_TYPES = ("aa", "na", "online_community", "other", "peer_group", "smart")
EXIT_REASONS = ("completed", "dropped_out", "transferred", "incarcerated", "deceased", "other")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_P = (0.10, 0.28, 0.27, 0.18, 0.12, 0.05)
GENDERS = ("female", "male", "non-binary", None)
GENDER_P = (0.40, 0.54, 0.02, 0.04)
SUBSTANCES = ("alcohol", "opioids", "stimulants", "cannabis", "polysubstance", "other")
SUBSTANCE_P = (0.38, 0.24, 0.14, 0.08, 0.12, 0.04)
REFERRALS = ("self", "treatment_center", "healthcare", "court", "family", "employer", "other", None)
REFERRAL_P = (0.30, 0.22, 0.15, 0.12, 0.08, 0.04, 0.04, 0.05)
MENTOR_MODALITIES = ("in_person", "phone", "video", "text")

# --- built-in effects -------------------------------------------------------
DROPOUT_BASE = np.array([0.005, 0.0035, 0.007])  # per day, by program
# In-person groups protect more than online communities (the stated truth for issue 13).
DROPOUT_HR = {"in_person": 0.80, "online": 0.95, "checkin": 0.90, "mentoring": 0.75}
DROPOUT_RECORDED = np.array([0.60, 0.70, 0.50])
RELAPSE_BASE = np.array([0.006, 0.005, 0.007])  # per day, by program
RELAPSE_HR = {"meeting": 0.90, "checkin": 1.00, "mentoring": 0.80}
SUBSTANCE_HR = np.array([1.0, 1.4, 1.25, 0.8, 1.5, 1.0])
COMPLETION_WEEKS = (52, 26, None)
COMPLETION_P_AT_LENGTH = 0.85
COMPLETION_P_EXTRA_WEEK = 0.15
ONLINE_COMPLETION_HAZARD = 0.004  # per day after day 364
OTHER_EXIT_HAZARD = {"transferred": 0.00015, "incarcerated": 0.00008, "deceased": 0.00003, "other": 0.00008}

# --- engagement -------------------------------------------------------------
PROPENSITY_SIGMA = 0.7
WEEKLY_SHOCK_SIGMA = 0.35
DECAY_WEEKS, DECAY_POWER = 26.0, 0.35
MEETINGS_PER_WEEK = np.array([4.5, 3.5, 5.0])
CHECKINS_PER_WEEK = 3.3
MENTORING_PER_WEEK = np.array([0.8, 1.2, 0.6])
MENTOR_SHARE = np.array([0.70, 0.80, 0.65])
MENTEES_PER_MENTOR = 7
ONLINE_SHARE = np.array([0.12, 0.20, 0.75])
MAX_DAY_P = 0.9
# Dirichlet weights over MEETING_TYPES (aa, na, online_community, other, peer_group, smart).
PREF_ALPHA = np.array([
    [3.0, 2.0, 0.4, 0.5, 2.5, 1.0],
    [2.0, 1.5, 0.5, 0.5, 2.0, 1.5],
    [0.4, 0.3, 6.0, 0.2, 0.3, 0.6],
])
PREF_SUBSTANCE = np.array([  # multipliers per substance x type
    [2.0, 0.3, 1, 1, 1, 1],
    [0.6, 2.0, 1, 1, 1, 1],
    [0.6, 2.0, 1, 1, 1, 1],
    [1.0, 1.0, 1, 1.5, 1, 1.5],
    [0.6, 2.0, 1, 1, 1, 1],
    [1.0, 1.0, 1, 1, 1, 1],
])
# Day-of-week weights, rows Mon..Sun, columns MEETING_TYPES; normalised to mean 1.
DOW = np.array([
    [1.0, 1.0, 1.0, 1.1, 1.2, 1.1],
    [1.0, 1.0, 1.0, 1.1, 1.2, 1.2],
    [1.0, 1.0, 1.0, 1.1, 1.2, 1.2],
    [1.0, 1.0, 1.0, 1.1, 1.2, 1.1],
    [1.1, 1.1, 0.9, 1.0, 1.0, 0.8],
    [1.2, 1.0, 0.8, 0.6, 0.5, 0.4],
    [1.2, 0.6, 0.9, 0.3, 0.2, 0.2],
])
DOW = DOW / DOW.mean(axis=0)
MEETING_MINUTES = (  # (options, probabilities) per type
    ((60, 90, 30), (0.75, 0.15, 0.10)),
    ((60, 90, 45), (0.75, 0.15, 0.10)),
    ((15, 30, 45, 60), (0.30, 0.35, 0.20, 0.15)),
    ((30, 60, 90, 120), (0.20, 0.50, 0.20, 0.10)),
    ((60, 75, 90), (0.40, 0.20, 0.40)),
    ((90, 60, 120), (0.80, 0.15, 0.05)),
)
MEETING_MINUTES_BLANK = 0.10
MENTOR_MODALITY_P = np.array([
    [0.50, 0.30, 0.10, 0.10],
    [0.60, 0.20, 0.15, 0.05],
    [0.05, 0.25, 0.40, 0.30],
])
MENTOR_MINUTES = (  # per MENTOR_MODALITIES
    ((45, 60, 75, 90), (0.25, 0.45, 0.15, 0.15)),
    ((20, 30, 45, 60), (0.30, 0.40, 0.20, 0.10)),
    ((30, 45, 60), (0.35, 0.40, 0.25)),
    ((20, 30), (0.70, 0.30)),
)
MENTOR_MINUTES_BLANK = np.array([0.08, 0.08, 0.08, 0.30])
CHECKIN_BLANK = 0.05

TRUTH: dict = {
    "time_unit": "day; hazards constant within week k since enrolment, driven by week k-1 counts",
    "programs": list(PROGRAMS),
    "sites": {p: [s for i, s, _ in SITES if i == j] for j, p in enumerate(PROGRAMS)},
    "dropout": {
        "hr_per_in_person_meeting": DROPOUT_HR["in_person"],
        "hr_per_online_meeting": DROPOUT_HR["online"],
        "online_rule": "meeting_type online_community or modality online",
        "hr_per_checkin": DROPOUT_HR["checkin"],
        "hr_per_mentoring": DROPOUT_HR["mentoring"],
        "base_daily_hazard": dict(zip(PROGRAMS, DROPOUT_BASE.tolist())),
        "p_recorded": dict(zip(PROGRAMS, DROPOUT_RECORDED.tolist())),
    },
    "relapse": {
        "hr_per_meeting": RELAPSE_HR["meeting"],
        "hr_per_checkin": RELAPSE_HR["checkin"],
        "hr_per_mentoring": RELAPSE_HR["mentoring"],
        "base_daily_hazard": dict(zip(PROGRAMS, RELAPSE_BASE.tolist())),
        "substance_multiplier": dict(zip(SUBSTANCES, SUBSTANCE_HR.tolist())),
        "measured_from": "enrolled_on",
    },
    "completion": {
        "weeks": dict(zip(PROGRAMS, COMPLETION_WEEKS)),
        "p_at_length": COMPLETION_P_AT_LENGTH,
        "p_per_extra_week": COMPLETION_P_EXTRA_WEEK,
        "online_daily_hazard_after_day_364": ONLINE_COMPLETION_HAZARD,
    },
    "other_exit_daily_hazard": dict(OTHER_EXIT_HAZARD),
    "mentor_share": dict(zip(PROGRAMS, MENTOR_SHARE.tolist())),
    "sobriety_start_share": 0.25,
    "enrolment_span_days": SPAN_DAYS,
}


@dataclass
class _People:
    """Per-participant arrays, index i = rank of participant_id."""

    codes: np.ndarray  # uint8 (n, width) ASCII of participant_id
    program: np.ndarray
    site: np.ndarray
    enrolled: np.ndarray  # int32 days since 1970-01-01
    sobriety_back: np.ndarray  # days before enrolment, 0 = blank
    age: np.ndarray
    gender: np.ndarray
    substance: np.ndarray
    referral: np.ndarray
    propensity: np.ndarray
    pref: np.ndarray  # (n, 6) meeting type shares
    p_online: np.ndarray
    checkin_rate: np.ndarray
    mentor: np.ndarray  # mentor number (1-based), 0 = none
    mentor_from: np.ndarray  # first possible mentoring day (absolute)
    mentoring_rate: np.ndarray
    sched_day: np.ndarray  # absolute day of the scheduled non-dropout exit
    sched_cause: np.ndarray  # index into EXIT_REASONS
    drop_recorded: np.ndarray  # bool


@dataclass
class _Activity:
    """Simulated rows (sorted) and per-participant outcomes."""

    att: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pidx, day, type, online (0/1)
    chk: tuple[np.ndarray, np.ndarray]  # pidx, day
    men: tuple[np.ndarray, np.ndarray]  # pidx, day
    exit_day: np.ndarray  # NO_DAY = no recorded exit
    exit_cause: np.ndarray  # -1 = no recorded exit
    relapse_day: np.ndarray  # NO_DAY = no relapse while in program


def _day(d: datetime.date) -> int:
    return (d - EPOCH).days


def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix (rows may differ)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return (u[:, None] >= cum).sum(axis=1)


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique hex codes 'P-XXXXXX', sorted, as an ASCII byte matrix."""
    width = 6
    while 16**width < 20 * n:
        width += 1
    nums = np.sort(rng.choice(16**width, size=n, replace=False))
    digits = (nums[:, None] // 16 ** np.arange(width - 1, -1, -1)) % 16
    hexchars = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
    out = np.empty((n, width + 2), dtype=np.uint8)
    out[:, :2] = np.frombuffer(b"P-", dtype=np.uint8)
    out[:, 2:] = hexchars[digits]
    return out


def _enrolment(rng: np.random.Generator, n: int, end_day: int) -> np.ndarray:
    """Enrolment days over SPAN_DAYS, growing 3x, fewer at weekends."""
    days = np.arange(end_day - SPAN_DAYS + 1, end_day + 1)
    t = (days - days[0]) / (SPAN_DAYS - 1)
    weekday = (days + 3) % 7
    w = (1 + 2 * t) * np.where(weekday == 5, 0.3, np.where(weekday == 6, 0.2, 1.0))
    return rng.choice(days, size=n, p=w / w.sum()).astype(np.int32)


def _mentors(rng: np.random.Generator, program: np.ndarray, site: np.ndarray) -> np.ndarray:
    """Mentor number per participant (0 = none), skewed caseloads per site."""
    has = rng.random(len(program)) < MENTOR_SHARE[program]
    key = np.full(len(program), -1, dtype=np.int64)
    for s in range(len(SITES)):
        members = np.flatnonzero(has & (site == s))
        m = max(2, -(-len(members) // MENTEES_PER_MENTOR))
        w = rng.lognormal(0.0, 0.8, m)
        key[members] = s * 1_000_000 + rng.choice(m, size=len(members), p=w / w.sum())
    mentor = np.zeros(len(program), dtype=np.int32)
    _, inv = np.unique(key[has], return_inverse=True)
    mentor[has] = inv + 1
    return mentor


def _scheduled_exits(rng: np.random.Generator, program: np.ndarray, enrolled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exits unrelated to engagement: completion and constant-hazard exits."""
    n = len(program)
    length = np.array([w or 0 for w in COMPLETION_WEEKS])[program] * 7
    extra = np.where(rng.random(n) < COMPLETION_P_AT_LENGTH, 0, rng.geometric(COMPLETION_P_EXTRA_WEEK, n))
    completion = length + 7 * extra + rng.integers(0, 7, n)
    online = 364 + np.floor(rng.exponential(1 / ONLINE_COMPLETION_HAZARD, n))
    completion = np.where(program == 2, online, completion)
    rates = np.array(list(OTHER_EXIT_HAZARD.values()))
    other = np.floor(rng.exponential(1 / rates.sum(), n))
    other_cause = 2 + rng.choice(len(rates), size=n, p=rates / rates.sum())
    first = np.minimum(completion, other)
    cause = np.where(completion <= other, 0, other_cause).astype(np.int8)
    day = np.minimum(enrolled + first, NO_DAY - 1).astype(np.int64)
    return day, cause


def _people(rng: np.random.Generator, n: int, end_day: int) -> _People:
    """Draw participants, their descriptors and latent traits."""
    codes = _ids(rng, n)
    enrolled = _enrolment(rng, n, end_day)
    t = (enrolled - (end_day - SPAN_DAYS + 1)) / (SPAN_DAYS - 1)
    program = _categorical(rng, np.stack([0.50 - 0.15 * t, 0.30 - 0.05 * t, 0.20 + 0.20 * t], axis=1))
    site_p = np.array([[share if i == p else 0.0 for i, _, share in SITES] for p in range(3)])
    site = _categorical(rng, site_p[program])
    sobriety_back = np.where(rng.random(n) < 0.25, rng.integers(1, 181, n), 0)
    age = rng.choice(len(AGE_BANDS), size=n, p=AGE_P)
    gender = rng.choice(len(GENDERS), size=n, p=GENDER_P)
    substance = rng.choice(len(SUBSTANCES), size=n, p=SUBSTANCE_P)
    referral = rng.choice(len(REFERRALS), size=n, p=REFERRAL_P)
    propensity = rng.lognormal(-PROPENSITY_SIGMA**2 / 2, PROPENSITY_SIGMA, n)
    pref = rng.gamma(PREF_ALPHA[program] * PREF_SUBSTANCE[substance])
    pref /= pref.sum(axis=1, keepdims=True)
    conc = 6.0
    p_online = rng.beta(ONLINE_SHARE[program] * conc, (1 - ONLINE_SHARE[program]) * conc)
    checkin_rate = CHECKINS_PER_WEEK * rng.beta(3.0, 2.0, n) * propensity**0.3
    mentor = _mentors(rng, program, site)
    mentor_from = enrolled + rng.integers(0, 8, n)
    mentoring_rate = np.where(mentor > 0, MENTORING_PER_WEEK[program] * propensity**0.5 * rng.lognormal(-0.08, 0.4, n), 0.0)
    sched_day, sched_cause = _scheduled_exits(rng, program, enrolled)
    drop_recorded = rng.random(n) < DROPOUT_RECORDED[program]
    return _People(codes, program, site, enrolled, sobriety_back, age, gender, substance, referral,
                   propensity, pref, p_online, checkin_rate, mentor, mentor_from, mentoring_rate,
                   sched_day, sched_cause, drop_recorded)


def _week_rows(rng: np.random.Generator, P: _People, idx: np.ndarray, ws: np.ndarray, last_off: np.ndarray, k: int):
    """Engagement of week k for active participants idx: (local index, offset[, type]) per table."""
    a = len(idx)
    offs = np.arange(7)
    ok = offs[None, :] <= last_off[:, None]
    shock = rng.lognormal(-WEEKLY_SHOCK_SIGMA**2 / 2, WEEKLY_SHOCK_SIGMA, a)
    decay = (1 + k / DECAY_WEEKS) ** -DECAY_POWER
    meet = MEETINGS_PER_WEEK[P.program[idx]] * P.propensity[idx] * shock * decay / 7
    weekday = (ws[:, None] + offs[None, :] + 3) % 7
    p = meet[:, None, None] * P.pref[idx][:, None, :] * DOW[weekday]
    hit = (rng.random(p.shape) < np.minimum(p, MAX_DAY_P)) & ok[:, :, None]
    att = np.nonzero(hit)
    online = (att[2] == MEETING_TYPES.index("online_community")) | (rng.random(len(att[2])) < P.p_online[idx[att[0]]])
    att = (*att, online)
    pc_ = np.minimum(P.checkin_rate[idx] * shock * decay**0.5 / 7, MAX_DAY_P)
    chk = np.nonzero((rng.random((a, 7)) < pc_[:, None]) & ok)
    pm = np.minimum(P.mentoring_rate[idx] * shock * decay / 7, MAX_DAY_P)
    men_ok = ok & (ws[:, None] + offs[None, :] >= P.mentor_from[idx][:, None])
    men = np.nonzero((rng.random((a, 7)) < pm[:, None]) & men_ok)
    return att, chk, men


def _simulate(rng: np.random.Generator, P: _People, end_day: int, dropout_hr: dict[str, float]) -> _Activity:
    """Week-by-week simulation of engagement, leaving and first relapse."""
    n = len(P.enrolled)
    lag = np.zeros((4, n), dtype=np.int16)  # in-person meetings, online meetings, check-ins, mentoring in week k-1
    in_prog = np.ones(n, dtype=bool)
    exit_day = np.full(n, NO_DAY, dtype=np.int32)
    exit_cause = np.full(n, -1, dtype=np.int8)
    relapse_day = np.full(n, NO_DAY, dtype=np.int32)
    att_c, chk_c, men_c = [], [], []
    weeks = (end_day - int(P.enrolled.min())) // 7 + 1
    for k in range(weeks):
        idx = np.flatnonzero(in_prog & (P.enrolled + 7 * k <= end_day))
        if len(idx) == 0:
            continue
        ws = P.enrolled[idx] + 7 * k
        sched_off = P.sched_day[idx] - ws
        last_off = np.minimum(sched_off, end_day - ws)
        att, chk, men = _week_rows(rng, P, idx, ws, last_off, k)
        prog = P.program[idx]
        inp, onl, c, s = lag[0, idx], lag[1, idx], lag[2, idx], lag[3, idx]
        m = inp + onl
        h = (DROPOUT_BASE[prog] * dropout_hr["in_person"] ** inp * dropout_hr["online"] ** onl
             * dropout_hr["checkin"] ** c * dropout_hr["mentoring"] ** s)
        drop_off = np.floor(np.minimum(rng.exponential(1.0, len(idx)) / h, 99)).astype(np.int64)
        hr = (RELAPSE_BASE[prog] * SUBSTANCE_HR[P.substance[idx]]
              * RELAPSE_HR["meeting"] ** m * RELAPSE_HR["checkin"] ** c * RELAPSE_HR["mentoring"] ** s)
        rel_off = np.floor(np.minimum(rng.exponential(1.0, len(idx)) / hr, 99)).astype(np.int64)
        dropped = (drop_off < np.minimum(sched_off, 7)) & (drop_off <= end_day - ws)
        scheduled = ~dropped & (sched_off <= 6) & (sched_off <= end_day - ws)
        stop = np.where(dropped, drop_off, last_off)  # last day offset with activity
        new_rel = (relapse_day[idx] == NO_DAY) & (rel_off <= np.minimum(stop, 6))
        relapse_day[idx[new_rel]] = ws[new_rel] + rel_off[new_rel]
        counts = []
        for rows, chunks in ((att, att_c), (chk, chk_c), (men, men_c)):
            keep = rows[1] <= stop[rows[0]]
            li = rows[0][keep]
            day = (ws[li] + rows[1][keep]).astype(np.int32)
            chunks.append((idx[li].astype(np.int32), day) + tuple(r[keep].astype(np.int8) for r in rows[2:]))
            if chunks is att_c:  # meetings: in person and online apart
                online = rows[3][keep]
                counts.append(np.bincount(li[~online], minlength=len(idx)))
                counts.append(np.bincount(li[online], minlength=len(idx)))
            else:
                counts.append(np.bincount(li, minlength=len(idx)))
        lag[:, idx] = np.stack(counts)
        gone = dropped | scheduled
        in_prog[idx[gone]] = False
        rec = (dropped & P.drop_recorded[idx]) | scheduled
        exit_day[idx[rec]] = ws[rec] + np.where(dropped, drop_off, sched_off)[rec]
        exit_cause[idx[rec]] = np.where(dropped, 1, P.sched_cause[idx])[rec]
    return _Activity(_merge(att_c), _merge(chk_c), _merge(men_c), exit_day, exit_cause, relapse_day)


def _merge(chunks: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Concatenate weekly chunks and order by participant (stable keeps date/type order)."""
    cols = tuple(np.concatenate(c) for c in zip(*chunks))
    order = np.argsort(cols[0], kind="stable")
    return tuple(c[order] for c in cols)


# --- Arrow columns -------------------------------------------------------------

def _pid_column(P: _People, pidx: np.ndarray) -> pa.Array:
    """participant_id strings for row indices, built from fixed-width bytes."""
    codes = P.codes[pidx]
    n, w = codes.shape
    offsets = np.arange(0, n * w + 1, w, dtype=np.int32 if n * w < 2**31 else np.int64)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(codes.tobytes())])


def _labels(names: tuple, codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Map integer codes to text; None names and masked rows become blanks."""
    codes = np.asarray(codes)
    blank = np.array([x is None for x in names])[codes]
    if mask is not None:
        blank |= mask
    return pc.take(pa.array([x or "" for x in names]), pa.array(codes, mask=blank))


def _dates(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32(), mask=mask)


def _ints(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int16), type=pa.int16(), mask=mask)


def _minutes_by(rng: np.random.Generator, kind: np.ndarray, table: tuple) -> np.ndarray:
    """Typical minutes per kind (meeting type or mentoring modality)."""
    out = np.zeros(len(kind), dtype=np.int16)
    for j, (options, probs) in enumerate(table):
        rows = np.flatnonzero(kind == j)
        out[rows] = rng.choice(options, size=len(rows), p=probs)
    return out


def _participants_table(P: _People, A: _Activity) -> pa.Table:
    sob = P.enrolled - P.sobriety_back
    has_exit = A.exit_cause >= 0
    return pa.table({
        "participant_id": _pid_column(P, np.arange(len(P.enrolled))),
        "program": _labels(PROGRAMS, P.program),
        "site": _labels(tuple(s for _, s, _ in SITES), P.site),
        "enrolled_on": _dates(P.enrolled),
        "sobriety_start": _dates(sob, mask=P.sobriety_back == 0),
        "exited_on": _dates(np.where(has_exit, A.exit_day, 0), mask=~has_exit),
        "exit_reason": _labels(EXIT_REASONS, np.maximum(A.exit_cause, 0), mask=~has_exit),
        "age_band": _labels(AGE_BANDS, P.age),
        "gender": _labels(GENDERS, P.gender),
        "primary_substance": _labels(SUBSTANCES, P.substance),
        "referral_source": _labels(REFERRALS, P.referral),
    })


def _attendance_table(rng: np.random.Generator, P: _People, A: _Activity) -> pa.Table:
    pidx, day, typ, online = A.att
    minutes = _minutes_by(rng, typ, MEETING_MINUTES)
    return pa.table({
        "participant_id": _pid_column(P, pidx),
        "attended_on": _dates(day),
        "meeting_type": _labels(MEETING_TYPES, typ),
        "modality": _labels(("in_person", "online"), online.astype(np.int8)),
        "minutes": _ints(minutes, mask=rng.random(len(typ)) < MEETING_MINUTES_BLANK),
    })


def _checkins_table(rng: np.random.Generator, P: _People, A: _Activity) -> pa.Table:
    pidx, day = A.chk
    n = len(day)
    rel = A.relapse_day[pidx].astype(np.int64)
    after = day >= rel
    same = np.r_[False, pidx[1:] == pidx[:-1]]
    first = after & ~(np.r_[False, after[:-1]] & same)
    since = np.where(after, day - rel, 0)
    used = first | (after & (rng.random(n) < 0.15 + 0.50 * np.exp(-since / 60)))
    t = (day - P.enrolled[pidx]).astype(np.float64)
    s = np.clip(day - rel, -100, None).astype(np.float64)  # days since relapse; far before = no effect
    before = np.exp(np.minimum(s, 0) / 7) * (s > -14)
    bump = np.where(rel == NO_DAY, 0.0, np.where(s < 0, before, 0.4 + 0.6 * np.exp(-np.maximum(s, 0) / 30)))
    base = rng.normal(6.0, 1.5, len(P.enrolled)) + 0.5 * np.isin(P.substance, (1, 4))
    settle = 1 - np.exp(-t / 90)
    craving = np.clip(np.rint(base[pidx] - 3.0 * settle + 3.0 * bump + rng.normal(0, 1.2, n)), 0, 10)
    mood0 = rng.normal(2.7, 0.5, len(P.enrolled))
    mood = np.clip(np.rint(mood0[pidx] + 1.2 * settle - 1.2 * bump + rng.normal(0, 0.6, n)), 1, 5)
    return pa.table({
        "participant_id": _pid_column(P, pidx),
        "checked_in_on": _dates(day),
        "used": pa.array(used),
        "craving": _ints(craving, mask=rng.random(n) < CHECKIN_BLANK),
        "mood": _ints(mood, mask=rng.random(n) < CHECKIN_BLANK),
    })


def _mentoring_table(rng: np.random.Generator, P: _People, A: _Activity) -> pa.Table:
    pidx, day = A.men
    n = len(day)
    modality = _categorical(rng, MENTOR_MODALITY_P[P.program[pidx]])
    minutes = _minutes_by(rng, modality, MENTOR_MINUTES)
    nums = P.mentor[pidx]
    width = max(4, len(str(int(P.mentor.max()))))
    names = pa.array([f"M-{i:0{width}d}" for i in range(int(P.mentor.max()) + 1)])  # one per mentor, not per row
    return pa.table({
        "participant_id": _pid_column(P, pidx),
        "mentor_id": pc.take(names, pa.array(nums)),
        "met_on": _dates(day),
        "minutes": _ints(minutes, mask=rng.random(n) < MENTOR_MINUTES_BLANK[modality]),
        "modality": _labels(MENTOR_MODALITIES, modality),
    })


# --- public API -------------------------------------------------------------

TABLES = ("participants", "attendance", "checkins", "mentoring", "assessments")


def _as_date(end: datetime.date | str) -> datetime.date:
    return datetime.date.fromisoformat(end) if isinstance(end, str) else end


def _run(participants: int, seed: int, end: datetime.date | str, dropout_hr: dict[str, float] | None = None):
    """Simulate once; return a builder for each table with its own random stream.
    `dropout_hr` replaces DROPOUT_HR (e.g. all 1.0: no engagement effect, for tests)."""
    if participants < 1:
        raise ValueError("participants must be at least 1")
    end_day = _day(_as_date(end))
    streams = np.random.default_rng(seed).spawn(5)
    P = _people(streams[0], participants, end_day)
    A = _simulate(streams[1], P, end_day, DROPOUT_HR | (dropout_hr or {}))
    builders = {
        "participants": lambda: _participants_table(P, A),
        "attendance": lambda: _attendance_table(streams[2], P, A),
        "checkins": lambda: _checkins_table(streams[3], P, A),
        "mentoring": lambda: _mentoring_table(streams[4], P, A),
        "assessments": lambda: _assessments_table(seed, P, A, end_day),
    }
    return builders


def generate(participants: int = 800, seed: int = DEFAULT_SEED, end: datetime.date = DEFAULT_END,
             dropout_hr: dict[str, float] | None = None) -> dict[str, pd.DataFrame]:
    """The four tables as DataFrames in import-format column order.

    Dates are datetime.date objects, optional integers use pandas Int64, blank
    text is None; exactly the values write_sample writes.
    """
    builders = _run(participants, seed, end, dropout_hr)
    mapper = {pa.int16(): pd.Int64Dtype()}.get
    return {name: builders[name]().to_pandas(types_mapper=mapper) for name in TABLES}


def _write_csv(table: pa.Table, path: Path) -> None:
    """Unquoted CSV: header line written by hand because Arrow quotes header names."""
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def write_sample(out_dir: str | Path, participants: int = 800, seed: int = DEFAULT_SEED,
                 end: datetime.date = DEFAULT_END, progress: Callable[[str], None] | None = None,
                 dropout_hr: dict[str, float] | None = None) -> dict[str, Path]:
    """Write participants/attendance/checkins/mentoring.csv into out_dir; return their paths."""
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say(f"simulating {participants:,} participants (seed {seed}, end {_as_date(end)})")
    builders = _run(participants, seed, end, dropout_hr)
    paths = {}
    for name in TABLES:
        table = builders[name]()
        paths[name] = out / f"{name}.csv"
        say(f"writing {paths[name]} ({table.num_rows:,} rows)")
        _write_csv(table, paths[name])
        del table
    return paths


# --- assessments (format 1.1, issue 14) -----------------------------------------
# Drawn from their own random stream (seed, spawn key 14) after the simulation, so the
# other four files are the same with or without them.

ASSESSMENT_STREAM = 14
ASSESS_BASELINE_SHARE = 0.92  # the rest never had a baseline assessment
ASSESS_BASELINE_OFFSET = (-21, 21)  # days around enrollment, uniform
ASSESS_BASELINE_MEAN = 32.0  # BARC-10 total
ASSESS_BASELINE_SD = 6.0  # besides the engagement part below
ASSESS_BASELINE_PER_SD_PROPENSITY = 4.0  # more engaged people start higher
ASSESS_GROWTH_PER_MONTH = 0.3  # true change per 30.44 days without mentoring
ASSESS_GROWTH_PER_MENTORING = 0.2  # true change per mentoring session since baseline
ASSESS_SLOPE_SD = 0.2  # per-person random slope, points per month
ASSESS_NOISE_SD = 2.5  # measurement error of one assessment
ASSESS_DUE_DAYS = (180, 365, 730)  # follow-ups after baseline
ASSESS_DONE_P = {"engaged": 0.90, "completed": 0.60, "left": 0.20}  # by state 30 days before due
ASSESS_DONE_LOGIT_PER_POINT = 0.08  # and harder to reach with less recovery capital at baseline
ASSESS_TIMING_SD = 10  # days around the due day
ASSESS_LATE_SHARE = 0.06  # done 31-50 days late: outside the window
ASSESS_FORMAT_P = (0.60, 0.25, 0.15)  # items and total / total only / items only
MONTH_DAYS = 30.44

ASSESSMENT_TRUTH = {
    "instrument": "barc10",
    "baseline_share": ASSESS_BASELINE_SHARE,
    "baseline_mean": ASSESS_BASELINE_MEAN,
    "baseline_sd": ASSESS_BASELINE_SD,
    "baseline_per_sd_log_propensity": ASSESS_BASELINE_PER_SD_PROPENSITY,
    "growth_per_month": ASSESS_GROWTH_PER_MONTH,
    "growth_per_mentoring_session": ASSESS_GROWTH_PER_MENTORING,
    "growth_per_meeting": 0.0,
    "growth_per_checkin": 0.0,
    "random_slope_sd": ASSESS_SLOPE_SD,
    "measurement_sd": ASSESS_NOISE_SD,
    "followup_days": list(ASSESS_DUE_DAYS),
    "p_followup_done": dict(ASSESS_DONE_P),
    "followup_log_odds_per_baseline_point": ASSESS_DONE_LOGIT_PER_POINT,
    "followup_bias": "follow-up is likelier while engaged and with a higher baseline, and engagement "
                     "brings mentoring: those lost start lower and completers-only change overstates "
                     "the change of all",
}
TRUTH["assessments"] = ASSESSMENT_TRUTH


def _left_day(P: _People, A: _Activity, end_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Per participant: the day they left (recorded exit, else last activity when silent for
    30 days by the end; NO_DAY while in) and whether they died."""
    n = len(P.enrolled)
    last = P.enrolled.astype(np.int64).copy()
    for pidx, day in (A.att[:2], A.chk, A.men):
        np.maximum.at(last, pidx, day)
    left = np.where(A.exit_cause >= 0, A.exit_day, np.where(last < end_day - 30, last, NO_DAY))
    dead = A.exit_cause == EXIT_REASONS.index("deceased")
    return left.astype(np.int64), dead


def _true_capital(P: _People, A: _Activity, who: np.ndarray, day: np.ndarray, base: np.ndarray,
                  b: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Latent BARC-10 total of participants `who` on `day`: baseline level plus growth per month
    plus growth per mentoring session held after the baseline day b."""
    key = A.men[0].astype(np.int64) * 2**32 + A.men[1]
    sessions = (np.searchsorted(key, who * 2**32 + day, "right")
                - np.searchsorted(key, who * 2**32 + b[who], "right"))
    months = (day - b[who]) / MONTH_DAYS
    return base[who] + (ASSESS_GROWTH_PER_MONTH + slope[who]) * months + ASSESS_GROWTH_PER_MENTORING * sessions


def _assessment_plan(seed: int, P: _People, A: _Activity, end_day: int) -> dict[str, np.ndarray]:
    """Who is assessed when, and the latent and observed totals (sorted by participant, day)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ASSESSMENT_STREAM,)))
    n = len(P.enrolled)
    z = np.log(P.propensity) / PROPENSITY_SIGMA
    base = ASSESS_BASELINE_MEAN + ASSESS_BASELINE_PER_SD_PROPENSITY * z + rng.normal(0, ASSESS_BASELINE_SD, n)
    slope = rng.normal(0, ASSESS_SLOPE_SD, n)
    b = P.enrolled + rng.integers(ASSESS_BASELINE_OFFSET[0], ASSESS_BASELINE_OFFSET[1] + 1, n)
    left, dead = _left_day(P, A, end_day)
    alive_on = lambda i, d: ~dead[i] | (d <= left[i])  # noqa: E731
    has_base = (rng.random(n) < ASSESS_BASELINE_SHARE) & (b <= end_day) & alive_on(np.arange(n), b)
    who, day = [np.flatnonzero(has_base)], [b[has_base]]
    completed = A.exit_cause == EXIT_REASONS.index("completed")
    for due in ASSESS_DUE_DAYS:
        target = b + due
        state_day = target - 30
        engaged = left > state_day
        p = np.where(engaged, ASSESS_DONE_P["engaged"],
                     np.where(completed, ASSESS_DONE_P["completed"], ASSESS_DONE_P["left"]))
        odds = p / (1 - p) * np.exp(ASSESS_DONE_LOGIT_PER_POINT * (base - ASSESS_BASELINE_MEAN))
        p = odds / (1 + odds)
        shift = np.clip(np.rint(rng.normal(0, ASSESS_TIMING_SD, n)), -30, 30).astype(np.int64)
        late = rng.random(n) < ASSESS_LATE_SHARE
        shift = np.where(late, rng.integers(31, 51, n), shift)
        when = target + shift
        done = has_base & (rng.random(n) < p) & (when <= end_day) & alive_on(np.arange(n), when)
        who.append(np.flatnonzero(done))
        day.append(when[done])
    who_a, day_a = np.concatenate(who).astype(np.int64), np.concatenate(day).astype(np.int64)
    order = np.lexsort((day_a, who_a))
    who_a, day_a = who_a[order], day_a[order]
    latent = _true_capital(P, A, who_a, day_a, base, b, slope)
    observed = np.clip(np.rint(latent + rng.normal(0, ASSESS_NOISE_SD, len(who_a))), 10, 60).astype(np.int64)
    return {"who": who_a, "day": day_a, "latent": latent, "total": observed, "base": base, "b": b,
            "slope": slope, "has_base": has_base, "format": rng.choice(3, size=len(who_a), p=ASSESS_FORMAT_P),
            "items": _items(rng, observed)}


def _items(rng: np.random.Generator, total: np.ndarray) -> np.ndarray:
    """Ten items 1-6 summing to each total: an even split, the remainder on random items."""
    q, r = np.divmod(total, 10)
    rank = np.argsort(rng.random((len(total), 10)), axis=1)
    return (q[:, None] + (rank < r[:, None])).astype(np.int64)


def _assessments_table(seed: int, P: _People, A: _Activity, end_day: int) -> pa.Table:
    plan = _assessment_plan(seed, P, A, end_day)
    fmt = plan["format"]
    cols = {"participant_id": _pid_column(P, plan["who"]), "assessed_on": _dates(plan["day"]),
            "instrument": pa.array(["barc10"] * len(fmt))}
    for k in range(10):
        cols[f"item_{k + 1}"] = _ints(plan["items"][:, k], mask=fmt == 1)
    cols["total"] = _ints(plan["total"], mask=fmt == 2)
    return pa.table(cols)


def assessment_latent(participants: int = 800, seed: int = DEFAULT_SEED,
                      end: datetime.date | str = DEFAULT_END) -> pd.DataFrame:
    """Per participant with a baseline: latent baseline level and the latent change over the
    first 180 days after it (what a complete follow-up would show without measurement error),
    for tests that check completers-only change against the truth for everyone."""
    end_day = _day(_as_date(end))
    streams = np.random.default_rng(seed).spawn(5)
    P = _people(streams[0], participants, end_day)
    A = _simulate(streams[1], P, end_day, DROPOUT_HR)
    plan = _assessment_plan(seed, P, A, end_day)
    who = np.flatnonzero(plan["has_base"])
    at = plan["b"][who] + ASSESS_DUE_DAYS[0]
    change = _true_capital(P, A, who, at, plan["base"], plan["b"], plan["slope"]) - plan["base"][who]
    return pd.DataFrame({"participant_id": _pid_column(P, who).to_pylist(),
                         "baseline_on": pd.to_datetime(plan["b"][who], unit="D").date,
                         "latent_baseline": plan["base"][who], "latent_change_180": change})

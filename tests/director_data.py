"""Hand-made records shared by the director-page tests (test_kpis, test_activity,
test_cohorts): every number those tests expect is worked out by hand from these rows."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.ingest import importer
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.period import Period
from analytics.store.connection import Store

D = dt.date
CUR = Period(D(2025, 6, 2), D(2025, 6, 29))
PREV = Period(D(2025, 5, 5), D(2025, 6, 1))
EVIL = "x'; DROP TABLE participants; --"

PARTICIPANTS = """participant_id,program,site,enrolled_on,sobriety_start,exited_on,exit_reason
A1,A,N1,2025-04-01,,,
A2,A,N1,2025-05-20,,,
A3,A,N1,2025-06-02,,2025-06-20,dropped_out
C1,A,N1,2025-06-02,,,
D1,A,N1,2025-08-15,,,
D2,B,S1,2025-07-01,,,
B1,B,S1,2025-03-01,,2025-05-01,completed
B2,B,S1,2025-06-16,,,
B3,B,S1,2025-05-05,,2025-06-10,transferred
"""
ATTENDANCE = """participant_id,attended_on,meeting_type,modality
A1,2025-05-06,aa,in_person
A1,2025-05-13,aa,in_person
A1,2025-06-03,aa,in_person
A1,2025-06-04,na,online
A1,2025-06-10,aa,in_person
A2,2025-05-21,na,in_person
A3,2025-06-09,smart,in_person
B1,2025-04-15,aa,in_person
B1,2025-05-10,aa,in_person
B2,2025-06-24,aa,online
B2,2025-07-10,peer_group,in_person
B3,2025-06-03,peer_group,in_person
D2,2025-08-20,smart,online
"""
CHECKINS = """participant_id,checked_in_on,used,craving,mood
A1,2025-05-07,false,5,3
A1,2025-06-03,false,4,4
A1,2025-06-17,false,,
A1,2025-09-30,false,3,4
A3,2025-06-02,false,6,3
A3,2025-06-10,true,8,5
B2,2025-06-25,false,,4
B3,2025-05-05,false,,
B3,2025-05-12,false,,
B3,2025-05-19,false,,
C1,2025-06-05,false,4,2
C1,2025-08-20,false,,
C1,2025-09-29,false,,
D2,2025-08-20,true,7,2
"""
MENTORING = """participant_id,mentor_id,met_on,modality
A1,M1,2025-06-11,in_person
A1,M1,2025-06-18,phone
A3,M1,2025-06-12,video
B2,M2,2025-06-16,in_person
B3,M1,2025-05-20,phone
"""


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> Store:
    folder = tmp_path_factory.mktemp("hand")
    for name, text in (("participants", PARTICIPANTS), ("attendance", ATTENDANCE),
                       ("checkins", CHECKINS), ("mentoring", MENTORING)):
        (folder / f"{name}.csv").write_text(text)
    s = Store.open(folder / "hand.duckdb")
    assert importer.import_files(s, [folder], today=D(2025, 12, 31)).ok
    yield s
    s.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Store:
    s = Store.open(ensure_store(tmp_path_factory.mktemp("sample") / "s.duckdb"), read_only=True)
    yield s
    s.close()

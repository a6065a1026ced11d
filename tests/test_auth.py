"""Sign-in, roles and hostile inputs, run as a user would (Streamlit AppTest).

The store here holds the bundled sample plus one small import of "our own" data (four
participants at a new site, Harbor), so the dashboard asks everyone to sign in. The
expected pages of each role are written out below, not taken from dashboard/app.py, so a
change to the app's table is caught rather than copied.

Every test that writes to the store (sign-ins, lock-outs, uploads) works on its own copy;
the role and page tests share one copy so the cached analyses are computed once.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import json
import math
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Dataframe, Html, Markdown, Metric

import analytics
from analytics.access import roles as access
from analytics.analyses import activity, outreach
from analytics.access import audit, sessions
from analytics.analyses import cohorts
from analytics.analyses import kpis
from analytics.analyses import quality
from analytics.access import users
from analytics.access.roles import AccessDenied, User
from analytics.ingest.bootstrap import ensure_store
from analytics.outcomes.filters import Filters
from analytics.outcomes.period import default_period
from analytics.ingest.importer import import_files
from analytics.store.connection import Store
from tests.conftest import TODAY

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "dashboard" / "app.py")
VIEWS = REPO / "dashboard" / "views"
PASSWORD = "correct horse battery staple"
ROLES = ("admin", "director", "clinician", "grant_writer")
REFUSED = "Your role cannot open this page."

# Written out on purpose (DESIGN: who sees what). page file stem: (its st.title, roles that may open it),
# in navigation order: the first page a role may open is the one it lands on.
STAFF = {"admin", "director", "clinician"}
EVERYONE = set(ROLES)
PAGES = {
    "home": ("Recovery outcomes", STAFF),
    "overview": ("Overview", STAFF),
    "engagement": ("Engagement", STAFF),
    "cohorts": ("Cohorts", STAFF),
    "survival": ("Sobriety and retention", STAFF),
    "engagement_retention": ("Engagement and retention", STAFF),
    "recovery_capital": ("Recovery capital", STAFF),
    "published": ("Published charts", EVERYONE),
    "reports": ("Reports", EVERYONE),
    "data": ("Data", {"admin", "director"}),
    "admin": ("Users and audit log", {"admin"}),
}
FORBIDDEN = [(role, stem) for role in ROLES for stem, (_, roles) in PAGES.items() if role not in roles]

# "Our own" data: two sites small enough that every count on them is below the threshold,
# Harbor (4 participants with check-ins) and Bayview (3, who never checked in).
OWN_IDS = [f"P-HRB00{i}" for i in range(1, 5)] + [f"P-BAY00{i}" for i in range(1, 4)]
OWN = {
    "participants.csv": "participant_id,program,site,enrolled_on\n"
                        + "".join(f"{pid},Recovery Mentoring,{'Harbor' if 'HRB' in pid else 'Bayview'},2026-07-0{i % 4 + 1}\n"
                                  for i, pid in enumerate(OWN_IDS)),
    "attendance.csv": "participant_id,attended_on,meeting_type,modality,minutes\n"
                      + "".join(f"{pid},2026-09-{d:02d},aa,in_person,60\n" for pid in OWN_IDS for d in (3, 10, 17, 24)),
    "checkins.csv": "participant_id,checked_in_on,used,craving,mood\n"
                    + "".join(f"P-HRB00{i},2026-09-{d:02d},false,3,4\n" for i in range(1, 5) for d in (5, 19)),
}

INJECTIONS = ("x'; DROP TABLE participants; --", "' OR 1=1 --")
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


# --- stores ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """Sample + our own small import + one account per role, closed (safe to copy)."""
    tmp = tmp_path_factory.mktemp("auth")
    db = ensure_store(tmp / "pristine.duckdb")
    own = tmp / "own"
    own.mkdir()
    for name, text in OWN.items():
        (own / name).write_text(text)
    with cli():
        store = Store.open(db)
        result = import_files(store, [own], source="user", today=TODAY)
        assert result.ok, result.problems
        for role in ROLES:
            users.add_user(store, role, role, PASSWORD)
        assert users.sign_in_required(store)
        store.close()
    return db


@pytest.fixture(scope="module")
def shared_path(pristine: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth_shared") / "shared.duckdb"
    shutil.copyfile(pristine, path)
    return path


@pytest.fixture
def shared(shared_path: Path, monkeypatch) -> Path:
    """The copy the read-only tests share (cached analyses are keyed on its path)."""
    monkeypatch.setenv("OUTCOMES_DB", str(shared_path))
    return shared_path


@pytest.fixture
def fresh(pristine: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of its own for a test that writes (sign-ins, lock-outs, imports)."""
    path = tmp_path / "fresh.duckdb"
    shutil.copyfile(pristine, path)
    monkeypatch.setenv("OUTCOMES_DB", str(path))
    return path


@contextmanager
def cli() -> Iterator[None]:
    """Read the store as the command line does: an AppTest run in this thread leaves the
    dashboard's enforcement and acting user behind."""
    access.enforce(False)
    access.set_user(None)
    yield


def open_store(path: Path) -> Store:
    return Store.open(path)  # same process as the app: the same database instance


def participant_ids(path: Path) -> list[str]:
    with cli():
        return [r[0] for r in open_store(path).rows("SELECT participant_id FROM participants")]


def table_counts(path: Path) -> dict[str, int]:
    with cli():
        s = open_store(path)
        names = [r[0] for r in s.rows("SELECT table_name FROM information_schema.tables ORDER BY 1")]
        return {n: s.scalar(f'SELECT count(*) FROM "{n}"') for n in names}


def log(path: Path, action: str | None = None) -> pd.DataFrame:
    with cli():
        return audit.entries(open_store(path), action=action)


# --- the app ---------------------------------------------------------------------------

def app(script: str = APP) -> AppTest:
    return AppTest.from_file(script, default_timeout=120)


def as_user(at: AppTest, role: str, name: str | None = None) -> AppTest:
    """Signed in as the account `name` (default: the one named after the role), as a reload
    finds it: a session token the store knows."""
    with cli():
        store = open_store(Path(os.environ["OUTCOMES_DB"]))
        if users.load_user(store, name or role) is None:
            users.add_user(store, name or role, role, PASSWORD)
        at.session_state["session_token"] = sessions.start(store, users.load_user(store, name or role))
    return at


def elements(node) -> Iterator:
    if isinstance(node, Block):
        for child in node.children.values():
            yield from elements(child)
    else:
        yield node


def page_text(at: AppTest) -> str:
    """Everything the page sends to the browser as text: every element's message (labels,
    markdown, metrics, chart specs) and every dataframe's cells and index."""
    parts = []
    for el in elements(at._tree):
        if isinstance(el, Dataframe):
            parts.append(el.value.to_csv())
        else:
            parts.append(str(el.proto))
    return "\n".join(parts)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def leaked_ids(at: AppTest, ids: list[str]) -> list[str]:
    text = page_text(at)
    return [pid for pid in ids if pid in text]


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --- 1. each role sees exactly its pages -----------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_pages(shared: Path, role: str):
    at = as_user(app(), role).run()
    assert not at.exception
    allowed = [stem for stem, (_, roles) in PAGES.items() if role in roles]
    assert titles(at) == [PAGES[allowed[0]][0]]  # lands on its first page
    assert any(f"Signed in as **{role}**" in c.value for c in at.sidebar.caption)
    assert at.sidebar.button(key="sign_out")
    for stem, (title, roles) in PAGES.items():
        if role in roles:
            at.switch_page(f"views/{stem}.py").run()
            assert not at.exception, (role, stem)
            assert titles(at) == [title], (role, stem)
            assert REFUSED not in errors(at), (role, stem)
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(f"views/{stem}.py")


def test_nobody_signed_in_sees_only_the_sign_in_page(shared: Path):
    at = app().run()
    assert not at.exception
    assert titles(at) == ["Sign in"]
    assert not at.dataframe and not at.metric and not at.get("plotly_chart")
    for stem in PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"views/{stem}.py")


# --- 2. refused on the server side too -------------------------------------------------

@pytest.mark.parametrize(("role", "stem"), FORBIDDEN, ids=[f"{r}-{s}" for r, s in FORBIDDEN])
def test_a_forbidden_page_refuses_even_when_its_script_runs(shared: Path, role: str, stem: str):
    ids = participant_ids(shared)
    before = len(log(shared, "view"))
    at = as_user(app(str(VIEWS / f"{stem}.py")), role, name=f"{role}-direct").run()
    assert not at.exception
    assert errors(at) == [REFUSED]
    assert not titles(at) and not at.dataframe and not at.metric and not at.get("plotly_chart")
    assert not leaked_ids(at, ids)
    refused = log(shared, "view")
    assert len(refused) == before + 1
    assert (refused.user_name.iloc[0], refused.what.iloc[0]) == (f"{role}-direct", "refused page")


@pytest.mark.parametrize("stem", ["engagement", "published", "admin"])
def test_a_page_script_run_without_a_user_asks_to_sign_in(shared: Path, stem: str):
    at = app(str(VIEWS / f"{stem}.py")).run()
    assert not at.exception
    assert titles(at) == ["Sign in"]
    assert not at.dataframe and not at.metric and not at.get("plotly_chart")


def protected_functions() -> list:
    """Every data function in analytics/ that declares a permission (@requires)."""
    found = {}
    for info in pkgutil.walk_packages(analytics.__path__, "analytics."):
        if info.name in ("analytics.__main__",) or info.name.startswith("analytics.cli"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if callable(obj) and access.permission_of(obj) and getattr(obj, "__module__", None) == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return sorted(found.items())


def test_analytics_refuse_a_role_without_the_permission(shared: Path):
    with cli():
        store = open_store(shared)
    gw = User("gw", "grant_writer")
    with access.acting_as(gw), pytest.raises(AccessDenied, match="grant_writer"):
        outreach.outreach(store, Filters())
    functions = protected_functions()
    assert "analytics.analyses.outreach.outreach" in dict(functions)
    for name, func in functions:
        for role in ROLES:
            user = User(role, role)
            if user.may(access.permission_of(func)):
                continue
            # the check comes before the function body: no arguments needed to be refused
            with access.acting_as(user), pytest.raises(AccessDenied):
                func(store)
            assert name  # (for the traceback)
    # while the dashboard enforces, nobody acting is refused too
    access.enforce(True)
    try:
        with pytest.raises(AccessDenied, match="nobody signed in"):
            outreach.outreach(store, Filters())
    finally:
        access.enforce(False)
    with access.acting_as(User("c", "clinician")):
        assert not outreach.outreach(store, Filters()).participants.empty


# --- 3. a grant writer never sees an ID nor a small count -------------------------------

COUNT_COLUMN = re.compile(r"^(n|events|censored|active|new[_ ]enrollments|meetings|checkins|mentoring[_ ]sessions|"
                          r"mentored|checked[_ ]in|checkins[_ ]reporting[_ ]use|participants|at[_ ]risk([_ ]\d+)?|"
                          r"n_\w+)$")
AT_RISK_CELL = re.compile(r"\(([^)]*)\)$")  # "89.3% (126)": the number at risk in a "... (at risk)" column


def count_cells(col: str, values) -> list:
    """The counts of a published column: the column itself, the number in brackets of a
    "survival 30 (at risk)" cell, or the count before the brackets of a "... (share)" cell."""
    col = str(col)
    if col.endswith(" (at risk)"):
        return [m.group(1) if isinstance(v, str) and (m := AT_RISK_CELL.search(v)) else v for v in values]
    if col.endswith(" (share)") and COUNT_COLUMN.match(col[:-len(" (share)")]):
        return [v.split(" (")[0] if isinstance(v, str) else v for v in values]
    return list(values) if COUNT_COLUMN.match(col) else []


def protected_value(v) -> bool:
    """0, >= 11, "<11" or "*" (a blank cell is no number: not known / not applicable)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return True
    if isinstance(v, str):
        if v in ("<11", "*", "", "None", "nan", "<NA>"):
            return True
        try:
            v = float(v.replace(",", ""))
        except ValueError:
            return False
    return v == 0 or v >= 11


def small_counts(at: AppTest) -> list:
    bad = []
    for d in at.dataframe:
        frame = d.value
        for col in frame.columns:
            bad += [(col, v) for v in count_cells(col, frame[col]) if not protected_value(v)]
    for m in at.metric:
        if not protected_value(m.value):
            bad.append((m.label, m.value))
    for chart in at.get("plotly_chart"):  # the weekly count of active participants is a chart of counts
        for trace in json.loads(chart.proto.spec)["data"]:
            if trace.get("name") == "Active participants":
                bad += [("chart: active participants", v) for v in values(trace["y"]) if not protected_value(v)]
    return bad


# A count written in words: "n=5", "events = 3", "left out: 2 no check-in", "4 participants".
COUNT_IN_TEXT = re.compile(r"(?:\bn\s*=\s*|\bevents\s*=\s*|\bcensored\s*=\s*|\bleft out:?\s*)(\d[\d,]*)"
                           r"|(?<![<\d.,])\b(\d[\d,]*) (?:participants?|people(?! served)|no check-in|enrolled|active)", re.IGNORECASE)
METHOD = re.compile(r"Counts of 1 to 10 people")  # the suppression statement itself


def texts(at: AppTest) -> list[str]:
    """The words on the page: markdown, captions, alerts, headings, metric labels, chart notes,
    titles and legends."""
    out = []
    for el in elements(at._tree):
        if isinstance(el, Dataframe):
            continue
        if getattr(el, "type", None) == "plotly_chart":
            spec = json.loads(el.proto.spec)
            layout = spec.get("layout", {})
            out += [str(a.get("text", "")) for a in layout.get("annotations", [])]
            out += [str(t.get("name", "")) for t in spec.get("data", [])]
            out.append(json.dumps(layout.get("title", "")))
            continue
        for attr in ("value", "label", "body"):
            v = getattr(el, attr, None)
            if isinstance(v, str):
                out.append(v)
    return out


def small_counts_in_text(at: AppTest) -> list[str]:
    bad = []
    for text in texts(at):
        for m in COUNT_IN_TEXT.finditer(METHOD.sub("", text)):
            number = int((m.group(1) or m.group(2)).replace(",", ""))
            if 0 < number < 11:
                bad.append(text[max(0, m.start() - 80):m.end() + 40])
    return bad


def values(data) -> list:
    """A plotly array: a list, or {"dtype", "bdata"} (base64 of the numpy array)."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


SMALL_SITES = ["Westfield", "Harbor", "Bayview"]  # 78 participants; 4; 3 who never checked in


@pytest.mark.parametrize("site", SMALL_SITES)
def test_a_grant_writers_published_charts_show_no_id_and_no_small_count(shared: Path, site: str):
    ids = participant_ids(shared)
    assert set(OWN_IDS) <= set(ids)
    at = as_user(app(), "grant_writer")
    at.query_params["site"] = site
    at.run()
    assert not at.exception
    assert titles(at) == ["Published charts"]
    assert at.sidebar.multiselect(key="site").value == [site]
    assert at.dataframe, "the published tables are shown"
    count_columns = {c for d in at.dataframe for c in d.value.columns if COUNT_COLUMN.match(str(c))}
    assert {"active", "new enrollments"} <= count_columns  # the pattern does find the (labelled) count columns
    text = page_text(at)
    assert "&lt;11" in text or "<11" in text  # small groups: something was suppressed
    assert not leaked_ids(at, ids)
    assert not small_counts(at)
    assert not small_counts_in_text(at), "a count of 1-10 written in the words of the page"


@pytest.mark.parametrize("site", SMALL_SITES)
def test_a_grant_writers_report_shows_no_id_and_no_small_count(shared: Path, site: str, tmp_path: Path):
    ids = participant_ids(shared)
    at = as_user(app(), "grant_writer")
    at.query_params["site"] = site
    at.run()
    at.switch_page("views/reports.py").run()
    assert not at.exception and titles(at) == ["Reports"]
    assert at.sidebar.multiselect(key="site").value == [site]
    at.button(key="build_report").click().run()
    assert not at.exception
    assert not leaked_ids(at, ids)
    assert not small_counts(at)
    assert not small_counts_in_text(at)
    pdf = at.session_state["report_pdf"][0]
    assert pdf[:5] == b"%PDF-"
    (tmp_path / "r.pdf").write_bytes(pdf)
    words = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                           check=True).stdout
    assert site in words
    assert [pid for pid in ids if pid in words] == []
    flat = " ".join(words.split())
    small = [flat[max(0, m.start() - 80):m.end() + 20] for m in COUNT_IN_TEXT.finditer(METHOD.sub("", flat))
             if 0 < int((m.group(1) or m.group(2)).replace(",", "")) < 11]
    assert not small, "a count of 1-10 in the PDF's words"
    assert (log(shared, "report").user_name == "grant_writer").any()


def test_a_hidden_value_is_not_labelled_as_a_number_in_a_published_chart(shared: Path):
    """Where the table shows "*", the chart must draw no bar and no label: plotly writes
    "0.0" / "0%" for a missing y under a texttemplate, which reads as a real zero."""
    at = as_user(app(), "grant_writer")
    at.query_params["site"] = "Harbor"
    at.run()
    assert not at.exception and at.dataframe
    labelled_blanks = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for trace in spec["data"]:
            if trace.get("type") == "bar" and "texttemplate" in trace and "y" in trace:
                ys = values(trace["y"])
                missing = [x for x, y in zip(values(trace.get("x", [])), ys)
                           if y is None or (isinstance(y, float) and math.isnan(y))]
                if missing:
                    labelled_blanks.append((json.dumps(spec["layout"].get("title", ""))[:60], trace.get("name"),
                                            trace["texttemplate"], missing))
    assert labelled_blanks == []


# --- 4. the sign-in form, lock-out, timeouts, sign-out ----------------------------------

def test_sign_in_with_a_wrong_then_the_right_password(fresh: Path):
    at = app().run()
    assert titles(at) == ["Sign in"]
    sign_in(at, "director", "not the password at all")
    assert not at.exception
    assert any("wrong user name or password" in e for e in errors(at))
    assert "user" not in at.session_state
    assert titles(at) == ["Sign in"] and not at.dataframe

    sign_in(at, "director", PASSWORD)
    assert not at.exception
    assert at.session_state["user"] == User("director", "director")
    assert titles(at) == ["Recovery outcomes"]
    at.switch_page("views/data.py").run()
    assert titles(at) == ["Data"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/admin.py")

    entries = log(fresh)
    assert {"sign_in", "sign_in_failed"} <= set(entries.action)
    failed = entries[entries.action == "sign_in_failed"].iloc[-1]
    assert failed.user_name == "director" and json.loads(failed.details)["reason"] == "wrong password"


def test_an_unknown_name_gets_the_same_message(fresh: Path):
    at = app().run()
    sign_in(at, "nobody-here", PASSWORD)
    assert any("wrong user name or password" in e for e in errors(at))
    assert "user" not in at.session_state


def test_failed_sign_ins_are_throttled_alike_for_known_and_unknown_names(fresh: Path, monkeypatch):
    """No lock any stranger can trigger: past the allowed failures each attempt waits a growing
    delay, for a real name and an unknown one alike, and other accounts are not affected."""
    monkeypatch.setenv("OUTCOMES_MAX_FAILED_SIGN_INS", "3")
    monkeypatch.setenv("OUTCOMES_LOCKOUT_MINUTES", "10")
    monkeypatch.setattr(users, "delay_seconds", lambda failures, free, policy: 60.0 * (failures >= free))  # no race
    answers = {}
    for name in ("clinician", "nobody-here"):
        at = app().run()
        seen = []
        for _ in range(3):
            sign_in(at, name, "wrong password, again")
            seen += errors(at)
        sign_in(at, name, PASSWORD if name == "clinician" else "wrong password, again")
        seen += errors(at)
        assert "user" not in at.session_state and titles(at) == ["Sign in"]
        answers[name] = [re.sub(r"\d+", "N", e) for e in seen]
    assert answers["clinician"] == answers["nobody-here"]
    assert answers["clinician"] == ["Sign-in failed: wrong user name or password."] * 3 + [
        "Too many failed sign-ins: wait N seconds, then try again."]
    entries = log(fresh)
    throttled = entries[entries.action == "throttle"]
    assert set(throttled.what) == {"clinician", "nobody-here"}
    assert json.loads(throttled.details.iloc[0])["delay_seconds"] == 60.0
    assert json.loads(entries[entries.action == "sign_in_failed"].details.iloc[0])["reason"] == "throttled"
    assert "lock_out" not in set(entries.action)
    at = app().run()
    sign_in(at, "director", PASSWORD)  # another account is not affected
    assert at.session_state["user"] == User("director", "director")


def _age_sessions(path: Path, column: str, hours: float) -> None:
    with cli():
        open_store(path).read().execute(f"UPDATE dashboard_sessions SET {column} = {column} - INTERVAL ({hours}) HOUR")


def test_an_idle_session_is_signed_out(fresh: Path):
    at = app().run()
    sign_in(at, "director", PASSWORD)
    assert titles(at) == ["Recovery outcomes"]
    _age_sessions(fresh, "last_seen", 2)
    at.run()
    assert not at.exception
    assert titles(at) == ["Sign in"]
    assert "user" not in at.session_state
    assert any("signed out after 30 minutes" in i.value for i in at.info)
    assert not at.dataframe and not at.metric
    out = log(fresh, "sign_out")
    assert out.user_name.iloc[0] == "director" and json.loads(out.details.iloc[0])["reason"] == "idle"


def test_a_session_ends_after_its_hours(fresh: Path):
    at = app().run()
    sign_in(at, "director", PASSWORD)
    _age_sessions(fresh, "created_at", 13)
    at.run()
    assert titles(at) == ["Sign in"] and "user" not in at.session_state
    assert any("ended after 12 hours" in i.value for i in at.info)
    assert json.loads(log(fresh, "sign_out").details.iloc[0])["reason"] == "expired"


def test_the_signing_key_is_read_once_per_store(monkeypatch):
    """Every page run checks the token: the key comes from memory after the first read, and
    each store keeps its own (a token of one store is refused by another)."""
    reads, real = [], sessions.queries.session_key
    monkeypatch.setattr(sessions.queries, "session_key", lambda store: reads.append(store) or real(store))
    with Store.open(memory=True) as one, Store.open(memory=True) as other:
        with cli():
            users.add_user(one, "bo", "director", PASSWORD)
            users.add_user(other, "bo", "director", PASSWORD)
            token = sessions.start(one, users.load_user(one, "bo"))
            assert [sessions.resume(one, token).user.name for _ in range(3)] == ["bo"] * 3
            assert reads == [one]
            assert sessions.resume(other, token).user is None and reads == [one, other]


def test_sign_out_clears_the_user(fresh: Path):
    at = app().run()
    sign_in(at, "admin", PASSWORD)
    assert titles(at) == ["Recovery outcomes"]
    at.sidebar.button(key="sign_out").click().run()
    assert not at.exception
    assert "user" not in at.session_state
    assert titles(at) == ["Sign in"]
    assert not at.dataframe and not at.metric
    for stem in PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"views/{stem}.py")
    out = log(fresh, "sign_out")
    assert out.user_name.iloc[0] == "admin" and json.loads(out.details.iloc[0])["reason"] == "signed out"


# --- 5. the demo on the bundled sample --------------------------------------------------

def test_the_sample_demo_is_open_and_says_so(tmp_path: Path, monkeypatch):
    db = ensure_store(tmp_path / "sample.duckdb")
    monkeypatch.setenv("OUTCOMES_DB", str(db))
    at = app().run()
    assert not at.exception
    assert titles(at) == ["Recovery outcomes"]
    assert any("synthetic sample" in i.value for i in at.sidebar.info)
    assert not at.sidebar.button  # nobody to sign out
    for stem, (title, _) in PAGES.items():
        at.switch_page(f"views/{stem}.py").run()
        assert not at.exception, stem
        assert titles(at) == [title], stem
        assert any("synthetic sample" in i.value for i in at.sidebar.info), stem
    with cli():
        assert not users.sign_in_required(open_store(db))


# --- 6. hostile inputs --------------------------------------------------------------------

def test_injection_in_the_url_filters_changes_nothing(shared: Path):
    before = table_counts(shared)
    hostile = {"program": list(INJECTIONS), "site": list(INJECTIONS), "enrolled_from": INJECTIONS[0],
               "enrolled_to": INJECTIONS[1], "period": INJECTIONS[0], "report_period": INJECTIONS[1],
               "split": INJECTIONS[0], "freq": INJECTIONS[1]}
    at = as_user(app(), "admin").run()
    for stem, (title, _) in PAGES.items():
        at.switch_page(f"views/{stem}.py")
        for key, value in hostile.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, stem
        assert titles(at) == [title], stem
        if stem != "admin":  # the admin page has no filters
            assert at.sidebar.multiselect(key="program").value == []
    after = table_counts(shared)
    logs = ("audit_log", "dashboard_sessions")  # written by signing in and using the pages
    assert {k: v for k, v in after.items() if k not in logs} == {k: v for k, v in before.items() if k not in logs}


def test_injection_in_analytics_filters_is_only_a_value(shared: Path):
    before = table_counts(shared)
    with cli():
        store = open_store(shared)
    hostile = Filters(programs=INJECTIONS, sites=INJECTIONS)
    period = default_period(store)
    with access.acting_as(access.SYSTEM):
        assert outreach.outreach(store, hostile).participants.empty
        assert quality.last_activity_by_program(store, hostile).empty
        assert kpis.by_program(store, hostile, period).empty
        assert cohorts.cohort_retention(store, hostile).empty
    assert table_counts(shared) == before


def test_injection_in_the_sign_in_name(fresh: Path):
    before = table_counts(fresh)
    at = app().run()
    for name in (*INJECTIONS, "admin' --", "admin'/*"):
        sign_in(at, name, PASSWORD)
        assert not at.exception
        assert any("wrong user name or password" in e for e in errors(at))
        assert "user" not in at.session_state
    after = table_counts(fresh)
    assert after["audit_log"] == before["audit_log"] + 4
    assert after["sign_in_throttle"] == before["sign_in_throttle"] + 2 * 4  # per name: this client, all clients
    logs = ("audit_log", "dashboard_sessions", "sign_in_throttle")
    assert {k: v for k, v in after.items() if k not in logs} == {k: v for k, v in before.items() if k not in logs}
    assert set(INJECTIONS) <= set(log(fresh, "sign_in_failed").user_name)  # logged as the text typed


def test_html_and_sql_in_the_data_are_shown_as_text(fresh: Path):
    """An admin imports participants whose program and site are HTML/script or SQL; every
    page selecting them runs, shows them as text (no st.html, no unsafe markdown), and the
    store's tables stay whole."""
    hostile_programs = [SCRIPT, *INJECTIONS]
    rows = [("P-HTML01", SCRIPT, IMG), ("P-HTML02", INJECTIONS[0], SCRIPT), ("P-HTML03", INJECTIONS[1], IMG)]
    csv = "participant_id,program,site,enrolled_on\n" + "".join(
        '{},"{}","{}",2026-09-0{}\n'.format(pid, prog.replace('"', '""'), site.replace('"', '""'), i + 1)
        for i, (pid, prog, site) in enumerate(rows))
    attendance = "participant_id,attended_on,meeting_type,modality,minutes\n" + "".join(
        f"{pid},2026-09-{d},aa,in_person,60\n" for pid, _, _ in rows for d in (10, 20))
    before = table_counts(fresh)

    at = as_user(app(), "admin").run()
    at.switch_page("views/data.py").run()
    at.file_uploader[0].set_value([("participants.csv", csv.encode(), "text/csv"),
                                   ("attendance.csv", attendance.encode(), "text/csv")]).run()
    at.button(key="import").click().run()
    assert not at.exception
    assert any("Imported batch" in s.value for s in at.success)
    after = table_counts(fresh)
    assert after["participants"] == before["participants"] + 3
    assert after["attendance"] == before["attendance"] + 6
    assert set(hostile_programs) <= set(at.sidebar.multiselect(key="program").options)

    at.switch_page("views/home.py").run()
    programs = next(d.value for d in at.dataframe if "Program" in d.value.columns)
    assert set(hostile_programs) <= set(programs.Program)  # the values, as text, in a table

    for stem, (title, _) in PAGES.items():
        at.switch_page(f"views/{stem}.py").run()
        if stem != "admin":
            at.sidebar.multiselect(key="program").set_value(hostile_programs).run()
            assert set(at.sidebar.multiselect(key="program").value) == set(hostile_programs), stem
        assert not at.exception, stem
        assert titles(at) == [title], stem
        for el in elements(at._tree):
            if isinstance(el, Html):  # only the session cookie's script, which holds no input of anyone's
                assert el.proto.body.startswith("<script>document.cookie = \"outcomes_session="), (stem, el.proto.body)
                assert not any(h in el.proto.body for h in hostile_programs), stem
            if isinstance(el, Markdown):
                assert not el.proto.allow_html, (stem, "markdown with unsafe_allow_html", el.value[:200])
    assert not {k for k in table_counts(fresh) if k not in after}  # no table dropped
    assert table_counts(fresh)["participants"] == after["participants"]


def test_metric_and_dataframe_helpers_see_the_page(shared: Path):
    """The collectors above find what they look for (so an empty result means something)."""
    at = as_user(app(), "director").run()
    at.switch_page("views/engagement.py").run()
    ids = participant_ids(shared)
    assert leaked_ids(at, ids), "the outreach list shows participant IDs to a director"
    assert isinstance(at.metric[0], Metric)


def test_viewing_participant_level_data_is_audited_once_per_selection(fresh: Path):
    at = as_user(app(), "director", "amira").run()
    at.switch_page("views/engagement.py").run()
    assert not at.exception
    at.run()  # a rerun with the same selection is not a new view
    views = log(fresh, "view")
    assert views.what.tolist() == ["outreach list"] and views.user_name.tolist() == ["amira"]
    at.number_input(key="outreach_top").set_value(30).run()
    assert log(fresh, "view").what.tolist() == ["outreach list", "outreach list"]
    assert json.loads(log(fresh, "view").details.iloc[0])["top"] == 30


def test_single_sign_on_takes_the_role_from_our_user_table(fresh: Path):
    with cli():
        users.add_user(open_store(fresh), "amira@clinic.example", "clinician", PASSWORD)
    at = app()
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test"}
    at.user = {"is_logged_in": True, "email": "amira@clinic.example"}
    at.run()
    assert not at.exception
    assert at.session_state["user"] == User("amira@clinic.example", "clinician")
    assert titles(at) == ["Recovery outcomes"]  # the role's first page, not the sign-in page
    entry = log(fresh, "sign_in").iloc[0]
    assert entry.user_name == "amira@clinic.example" and json.loads(entry.details)["method"] == "single sign-on"


def test_single_sign_on_without_an_account_is_refused(fresh: Path):
    at = app()
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test"}
    at.user = {"is_logged_in": True, "email": "stranger@elsewhere.example"}
    at.run()
    assert "user" not in at.session_state
    assert any("No dashboard account for stranger@elsewhere.example" in e.value for e in at.error)
    assert log(fresh, "sign_in_failed").user_name.iloc[0] == "stranger@elsewhere.example"

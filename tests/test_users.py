"""Accounts, sign-in, lock-out, timeouts, roles and the data-access checks in analytics/."""

from __future__ import annotations

import datetime as dt
import re
import time
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.access import roles as access
from analytics.analyses.outreach import outreach
from analytics.access import audit
from analytics.publish import report
from analytics.access import users
from analytics.access.roles import AccessDenied, User
from analytics.outcomes.definitions import durations
from analytics.outcomes.filters import Filters
from analytics.ingest.importer import import_files
from analytics.analyses.kpis import overview
from analytics.outcomes.period import Period
from analytics.store.connection import Store
from tests.conftest import TODAY

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
POLICY = users.SignInPolicy(max_failures=3, lockout_minutes=15, idle_minutes=30, session_hours=12)
NOW = dt.datetime(2026, 11, 27, 9, 0)


@pytest.fixture
def accounts(store: Store) -> Store:
    users.add_user(store, "amira", "director", PASSWORD)
    users.add_user(store, "gw", "grant_writer", PASSWORD)
    return store


def test_password_is_hashed_with_argon2(accounts: Store):
    stored = accounts.scalar("SELECT password_hash FROM users WHERE user_name = 'amira'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_an_unknown_name_costs_a_full_hash_check():
    """The unknown-name path verifies against a constant hash: it must carry the hasher's current
    cost (else it would be quicker than a wrong password) and match no password we know."""
    assert not users._hasher.check_needs_rehash(users._DUMMY)
    assert users._DUMMY.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not users._verify(users._DUMMY, "not a real password, for equal timing")


def test_sign_in(accounts: Store):
    assert users.authenticate(accounts, "amira", PASSWORD, policy=POLICY, now=NOW) == User("amira", "director")
    entry = audit.entries(accounts).iloc[0]
    assert (entry.action, entry.user_name) == ("sign_in", "amira")


@pytest.mark.parametrize(("name", "password"), [("amira", "wrong password!"), ("nobody", PASSWORD), ("", ""),
                                                 ("amira' OR '1'='1", "x' OR '1'='1")])
def test_wrong_name_or_password_is_refused_the_same_way(accounts: Store, name: str, password: str):
    with pytest.raises(users.SignInError, match="wrong user name or password"):
        users.authenticate(accounts, name, password, policy=POLICY, now=NOW)
    assert audit.entries(accounts).iloc[0].action == "sign_in_failed"


def _attempt(store: Store, name: str, password: str, now: dt.datetime, client: str = "10.0.0.1") -> str:
    try:
        users.authenticate(store, name, password, client=client, policy=POLICY, now=now)
    except users.SignInError as exc:
        return str(exc)
    return "signed in"


def test_growing_delays_per_name_and_client_instead_of_a_lock(accounts: Store):
    """POLICY allows 3 failures; then 1 s, 2 s, 4 s ... (at most 15 minutes) before the next
    attempt, alike for a real name and an unknown one; another client is not held up."""
    assert [users.delay_seconds(f, 3, POLICY) for f in range(2, 8)] == [0, 1, 2, 4, 8, 16]
    assert users.delay_seconds(40, 3, POLICY) == 15 * 60
    for name in ("amira", "no-such-name"):
        for k in range(3):
            assert _attempt(accounts, name, "wrong password!", NOW) == users.FAILED
        assert _attempt(accounts, name, PASSWORD, NOW + dt.timedelta(seconds=0.5)).startswith(
            "Too many failed sign-ins: wait 1 seconds")
    assert _attempt(accounts, "amira", PASSWORD, NOW, client="10.0.0.2") == "signed in"  # another client
    assert _attempt(accounts, "amira", "wrong password!", NOW + dt.timedelta(seconds=1)) == users.FAILED
    assert _attempt(accounts, "amira", PASSWORD, NOW + dt.timedelta(seconds=2.5)).endswith(
        "wait 1 seconds, then try again.")  # 4 failures: 2 s after the last
    assert _attempt(accounts, "amira", PASSWORD, NOW + dt.timedelta(seconds=3.5)) == "signed in"
    throttles = audit.entries(accounts, action="throttle")
    assert sorted(set(throttles.what)) == ["amira", "no-such-name"]
    assert audit.entries(accounts, action="lock_out").empty


def test_known_and_unknown_names_take_the_same_time(accounts: Store):
    """One argon2 verification on every path: the medians differ by less than half."""
    def median(name: str, password: str, client: str) -> float:
        times = []
        for k in range(5):
            start = time.perf_counter()
            _attempt(accounts, name, password, NOW - dt.timedelta(days=k + 1), client=f"{client}{k}")
            times.append(time.perf_counter() - start)
        return sorted(times)[2]

    known, unknown = median("amira", "wrong password!", "a"), median("nobody", "wrong password!", "b")
    assert 0.5 < known / unknown < 2, (known, unknown)


def test_site_scoped_accounts_see_only_their_sites(accounts: Store):
    users.set_sites(accounts, "amira", ["Harbor", "Eastside", " "])
    amira = users.load_user(accounts, "amira")
    assert amira.sites == ("Eastside", "Harbor")
    assert access.scoped_sites((), amira) == ("Eastside", "Harbor")
    assert access.scoped_sites(("Harbor", "Westside"), amira) == ("Harbor",)
    assert access.scoped_sites(("Westside",), amira) == (access.NO_SITE,)  # nobody, never everybody
    assert access.scoped_sites(("Westside",), User("x", "admin")) == ("Westside",)
    users.set_sites(accounts, "amira", [])
    assert users.load_user(accounts, "amira").sites == ()


def test_a_success_resets_the_failure_count(accounts: Store):
    for _ in range(POLICY.max_failures - 1):
        with pytest.raises(users.SignInError):
            users.authenticate(accounts, "amira", "wrong password!", policy=POLICY, now=NOW)
    users.authenticate(accounts, "amira", PASSWORD, policy=POLICY, now=NOW)
    with pytest.raises(users.SignInError, match="wrong user name"):  # one more failure does not lock
        users.authenticate(accounts, "amira", "wrong password!", policy=POLICY, now=NOW)


def test_disable_and_set_role(accounts: Store):
    users.set_role(accounts, "amira", "clinician", by="admin1")
    assert users.authenticate(accounts, "amira", PASSWORD, policy=POLICY, now=NOW).role == "clinician"
    users.disable_user(accounts, "amira", by="admin1")
    with pytest.raises(users.SignInError):
        users.authenticate(accounts, "amira", PASSWORD, policy=POLICY, now=NOW)
    changes = audit.entries(accounts, action="user_change")
    assert changes.user_name.tolist()[:2] == ["admin1", "admin1"]
    with pytest.raises(ValueError, match="no user"):
        users.disable_user(accounts, "ghost")
    with pytest.raises(ValueError, match="unknown role"):
        users.set_role(accounts, "gw", "boss")


@pytest.mark.parametrize(("name", "role", "password", "message"), [
    ("amira", "director", PASSWORD, "already exists"), ("AMIRA", "director", PASSWORD, "already exists"),
    ("x", "director", PASSWORD, "user name"), ("bo b", "director", PASSWORD, "user name"),
    ("bob", "boss", PASSWORD, "unknown role"), ("bob", "director", "short", "at least 12")])
def test_bad_accounts_are_refused(accounts: Store, name, role, password, message):
    with pytest.raises(ValueError, match=message):
        users.add_user(accounts, name, role, password)


def test_session_timeouts():
    start = NOW
    assert users.session_ended(start, start + dt.timedelta(minutes=29), start + dt.timedelta(minutes=30),
                               POLICY) is None
    assert users.session_ended(start, start, start + dt.timedelta(minutes=31), POLICY) == "idle"
    assert users.session_ended(start, start + dt.timedelta(hours=12, minutes=1), start + dt.timedelta(
        hours=12, minutes=1), POLICY) == "expired"


def test_sign_in_is_required_once_real_data_lands(store: Store, valid_dir: Path):
    assert not users.sign_in_required(store)  # empty
    import_files(store, [valid_dir], today=TODAY, source="sample")
    assert not users.sign_in_required(store)  # the bundled sample only
    (valid_dir / "participants.csv").write_text((valid_dir / "participants.csv").read_text())
    import_files(store, [valid_dir], today=TODAY)  # the user's own files (nothing changed, still a batch)
    assert users.sign_in_required(store) == bool(store.scalar(
        "SELECT count(*) FROM import_batches WHERE source = 'user'"))


# --- roles and data access -------------------------------------------------------------------

def test_role_permissions():
    may = {role: access.PERMISSIONS[role] for role in access.ROLES}
    assert access.PARTICIPANT_LEVEL in may["director"] and access.PARTICIPANT_LEVEL in may["clinician"]
    assert may["grant_writer"] == {access.PUBLISHED}
    assert access.USERS in may["admin"] and access.IMPORT in may["admin"]
    assert not {access.USERS, access.IMPORT} & (may["director"] | may["clinician"])


def test_data_functions_check_the_acting_user(sample):  # noqa: F811
    period = Period(dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    with access.acting_as(User("gw", "grant_writer")):
        with pytest.raises(AccessDenied, match="participant-level"):
            outreach(sample, Filters())
        with pytest.raises(AccessDenied, match="analytics"):
            overview(sample, Filters(), period)
        assert report.build(sample, period).sections  # the published, suppressed numbers are allowed
    with access.acting_as(User("cli", "clinician")):
        assert not outreach(sample, Filters()).participants.empty
    assert not outreach(sample, Filters()).participants.empty  # command line: nobody acting
    access.enforce()
    with pytest.raises(AccessDenied, match="nobody signed in"):
        outreach(sample, Filters())


def test_a_site_scoped_user_gets_only_its_sites_from_every_data_function(sample):  # noqa: F811
    """Direct calls, with filters that ask for everything or for another site: the outreach
    list, the survival durations and the report hold Riverside's participants only."""
    site_of = dict(sample.rows("SELECT participant_id, site FROM participants"))
    riverside = sum(1 for v in site_of.values() if v == "Riverside")
    period = Period(dt.date(2026, 1, 1), dt.date(2026, 9, 30))
    lead = User("lead", "director", ("Riverside",))
    with access.acting_as(lead):
        listed = outreach(sample, Filters()).participants
        assert not listed.empty and {site_of[p] for p in listed.participant_id} == {"Riverside"}
        assert outreach(sample, Filters(sites=("Downtown",))).participants.empty  # nobody, not everybody
        d = durations(sample, "retention")
        assert d.n == riverside and {site_of[p] for p in d.frame.participant_id} == {"Riverside"}
        assert durations(sample, "retention", filters=Filters(sites=("Downtown", "Riverside"))).n == riverside
        built = report.build(sample, period)
        assert built.filters.sites == ("Riverside",)  # the report names the scope it covers
    assert durations(sample, "retention").n == len(site_of)  # command line: every site


def test_imports_need_the_admin_role(store: Store, valid_dir: Path):
    with access.acting_as(User("amira", "director")), pytest.raises(AccessDenied):
        import_files(store, [valid_dir], today=TODAY)
    with access.acting_as(User("root", "admin")):
        assert import_files(store, [valid_dir], today=TODAY).ok


# --- command line ----------------------------------------------------------------------------

def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analytics", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT)


def test_cli_users(tmp_path: Path):
    db = str(tmp_path / "u.duckdb")
    added = cli("users", "add", "amira", "--role", "director", "--password-stdin", "--db", db, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert cli("users", "add", "bo", "--role", "clinician", "--password-stdin", "--db", db,
               stdin="short\n").returncode == 2
    assert cli("users", "set-role", "amira", "admin", "--db", db).returncode == 0
    assert cli("users", "disable", "ghost", "--db", db).returncode == 2
    listed = cli("users", "list", "--db", db)
    assert "amira" in listed.stdout and "admin" in listed.stdout and PASSWORD not in listed.stdout
    assert cli("users", "add", "x1", "--role", "boss", "--db", db).returncode == 2
    with Store.open(db, read_only=True) as s:
        assert users.authenticate.__module__ and s.scalar("SELECT role FROM users WHERE user_name = 'amira'") == "admin"


def test_cli_users_add_without_a_terminal_says_to_use_password_stdin(tmp_path: Path):
    run = subprocess.run([sys.executable, "-m", "analytics", "users", "add", "amira", "--role", "admin",
                          "--db", str(tmp_path / "u.duckdb")], stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, cwd=ROOT, start_new_session=True)  # a new session: no controlling terminal
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "--password-stdin" in run.stderr and "no terminal" in run.stderr


def test_cli_users_list_shows_times_to_the_minute_and_blanks_for_never(tmp_path: Path):
    db = str(tmp_path / "u.duckdb")
    for name in ("amira", "bo"):
        assert cli("users", "add", name, "--role", "director", "--password-stdin", "--db", db,
                   stdin=PASSWORD + "\n").returncode == 0
    with Store.open(db) as s:
        users.authenticate(s, "amira", PASSWORD, now=dt.datetime(2026, 11, 27, 9, 5, 42, 123456))
    listed = cli("users", "list", "--db", db)
    assert listed.returncode == 0, listed.stderr
    amira, bo = listed.stdout.splitlines()[1:]
    assert "2026-11-27 09:05" in amira and "09:05:42" not in amira and ".123456" not in amira
    assert "NaT" not in listed.stdout and "2026-11-27 09:05" not in bo
    assert re.fullmatch(r"\s*bo\s+director\s+all\s+False\s+\d{4}-\d\d-\d\d \d\d:\d\d\s*", bo), bo


from director_data import sample  # noqa: E402, F401

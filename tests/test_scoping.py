"""Site-scoped accounts and the store-wide figures (embedded store): the home page's counts and
dates, the default cutoff, the sidebar's programs, sites and dates, and the import history are
of the account's sites only; a site-scoped admin holds no store-wide right (imports, accounts).

The store is test_auth's: the sample (six sites, data to 2026-09-30) plus Harbor (4 participants
of Recovery Mentoring, enrolled 2026-07-01..04, meetings to 2026-09-24) and Bayview (3)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from analytics.access import roles as access
from analytics.access import users
from analytics.access.roles import User
from analytics.analyses.summary import ROW_COUNTS, import_history, store_summary
from analytics.outcomes.definitions import latest_date
from analytics.store.connection import Store
from analytics.store.queries.filters import filter_choices, in_sites
from tests.test_auth import PASSWORD, app, as_user, cli, pristine, titles  # noqa: F401  (fixture)

HARBOR = User("harbor-lead", "director", ("Harbor",))


@pytest.fixture(scope="module")
def scoped_path(pristine: Path, tmp_path_factory) -> Path:  # noqa: F811
    path = tmp_path_factory.mktemp("scoping") / "scoped.duckdb"
    shutil.copyfile(pristine, path)
    with cli(), Store.open(path) as store:
        users.add_user(store, HARBOR.name, HARBOR.role, PASSWORD, sites=list(HARBOR.sites))
        users.add_user(store, "harbor-admin", "admin", PASSWORD, sites=["Harbor"])
    return path


@pytest.fixture
def scoped(scoped_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("OUTCOMES_DB", str(scoped_path))
    return scoped_path


def test_store_wide_figures_are_of_the_accounts_sites(scoped: Path):
    with cli(), Store.open(scoped) as store:
        assert latest_date(store) == dt.date(2026, 9, 30)
        everything = store_summary(store)
        assert everything.counts["participants"] == 807 and len(everything.programs) == 3
        files = import_history(store)
        assert set(files.columns) >= set(ROW_COUNTS)
        with access.acting_as(HARBOR):
            assert latest_date(store) == dt.date(2026, 9, 24)  # Harbor's last meeting, not the sample's
            mine = store_summary(store)
            assert mine.counts == {"participants": 4, "attendance": 16, "checkins": 8, "mentoring": 0,
                                   "assessments": 0}
            assert (mine.first_date, mine.last_date) == (dt.date(2026, 7, 1), dt.date(2026, 9, 24))
            assert mine.programs.to_dict("records") == [
                {"program": "Recovery Mentoring", "sites": 1, "participants": 4, "without_exit": 4}]
            history = import_history(store)
            assert history.file_name.tolist() == files.file_name.tolist()
            assert not set(history.columns) & set(ROW_COUNTS)  # a file's counts cover every site
        assert filter_choices(store, ("Harbor", "Bayview")) == (["Recovery Mentoring"], ["Bayview", "Harbor"],
                                                                dt.date(2026, 7, 1))
        assert filter_choices(store, ("Nowhere",)) == ([], [], None)


def test_in_sites_takes_import_tables_only():
    assert in_sites("attendance", ()) == ("attendance", {})
    with pytest.raises(ValueError, match="not an import table"):
        in_sites("users", ("Harbor",))


def test_a_site_scoped_admin_holds_no_store_wide_right():
    admin = User("a", "admin", ("Harbor",))
    assert admin.may(access.ANALYTICS) and admin.may(access.PARTICIPANT_LEVEL)
    assert not admin.may(access.IMPORT) and not admin.may(access.USERS)
    assert User("a", "admin").may(access.IMPORT) and User("a", "admin").may(access.USERS)


def test_a_scoped_account_sees_its_own_figures_in_the_sidebar_and_home_page(scoped: Path):
    at = as_user(app(), HARBOR.role, name=HARBOR.name).run()
    assert not at.exception and titles(at) == ["Recovery outcomes"]
    assert any("sees **Harbor**" in c.value for c in at.sidebar.caption)
    assert at.sidebar.multiselect(key="site").options == ["Harbor"]
    assert at.sidebar.multiselect(key="program").options == ["Recovery Mentoring"]
    assert at.sidebar.date_input(key="enrolled_to").max == dt.date(2026, 9, 24)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Participants": "4", "Meetings attended": "16", "Check-ins": "8", "Mentoring sessions": "0"}
    programs = at.dataframe[0].value
    assert programs["Program"].tolist() == ["Recovery Mentoring"] and programs["Participants"].tolist() == [4]
    assert "From **01 Jul 2026** to **24 Sep 2026**" in " ".join(m.value for m in at.markdown)
    at.switch_page("views/data.py").run()
    assert not at.exception and titles(at) == ["Data"]
    history = next(d.value for d in at.dataframe if "file_name" in d.value.columns)
    assert not set(history.columns) & set(ROW_COUNTS)


def test_a_scoped_admin_has_no_import_and_no_accounts_page(scoped: Path):
    at = as_user(app(), "admin", name="harbor-admin").run()
    assert not at.exception and titles(at) == ["Recovery outcomes"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/admin.py")
    at.switch_page("views/data.py").run()
    assert not at.exception
    assert "Only an admin can import files." in [i.value for i in at.info]
    assert not [b for b in at.button if b.label in ("Import", "Check")]

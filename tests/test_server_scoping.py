"""Site scoping on the server store, enforced by PostgreSQL itself (row-level security):
a connection that set app.sites reads only those sites' rows, even by raw SQL; a site-scoped
account's mirror holds only its sites; its numbers equal the embedded store's scoped numbers."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from analytics.access import roles as access
from analytics.access import sessions, users
from analytics.access.roles import User
from analytics.ingest.importer import import_files
from analytics.outcomes.filters import Filters
from analytics.settings import PG_APP_ROLE
from analytics.store.connection import Store, StoreError
from analytics.store.queries.disclosure import cell_key_secret
from analytics.store.server import SCOPED_TABLES, limit_to_sites
from tests.conftest import TODAY
from tests.pg import APP, OWNER, pg_db, pg_server  # noqa: F401  (fixtures)
from tests.test_auth import OWN, PASSWORD, app
from tests.test_server_store import numbers

pytestmark = pytest.mark.postgres
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
LEAD = User("lead", "director", ("Riverside",))


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    """test_auth's small import: Harbor (4 participants, data to 2026-09-24) and Bayview (3)."""
    folder = tmp_path_factory.mktemp("own")
    for name, text in OWN.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def sample_db(pg_server, own) -> str:  # noqa: F811
    """The sample and Harbor/Bayview on a server store (made by the owner, read as the app role)."""

    name = pg_server.new_database()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PG_APP_ROLE.env, APP)
        Store.open(pg_server.url(name, OWNER)).close()
    url = pg_server.url(name, APP)
    with Store.open(url) as server:
        assert import_files(server, [SAMPLE, own], today=TODAY).ok
    return url


@pytest.fixture(scope="module")
def embedded_path(own, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scoping") / "e.duckdb"
    with Store.open(path) as store:
        assert import_files(store, [SAMPLE, own], today=TODAY).ok
    return path


@pytest.fixture(scope="module")
def embedded(embedded_path) -> Store:
    store = Store.open(embedded_path)
    yield store
    store.close()


def sites_of(conn: psycopg.Connection) -> dict[str, int]:
    """Rows per site, participants and every table keyed by participant, as this connection reads them."""
    out = dict(conn.execute("SELECT coalesce(site, '-'), count(*) FROM participants GROUP BY 1").fetchall())
    for table in SCOPED_TABLES[1:]:
        out[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return out


def expected(conn: psycopg.Connection, site: str) -> dict[str, int]:
    """What one site's rows are, counted on an unscoped connection."""
    out = {site: conn.execute("SELECT count(*) FROM participants WHERE site = %s", [site]).fetchone()[0]}
    for table in SCOPED_TABLES[1:]:
        out[table] = conn.execute(f"SELECT count(*) FROM {table} JOIN participants p USING (participant_id) "
                                  "WHERE p.site = %s", [site]).fetchone()[0]
    return out


def test_a_scoped_connection_reads_only_its_sites_by_raw_sql(sample_db, pg_server):  # noqa: F811
    with psycopg.connect(sample_db, autocommit=True) as app:  # the application's role, nothing set: every row
        everything = sites_of(app)
        riverside = expected(app, "Riverside")
        assert len([k for k in everything if k not in SCOPED_TABLES]) == 8 and riverside["Riverside"] > 0
        limit_to_sites(app, ["Riverside"])
        assert sites_of(app) == riverside
        assert app.execute("SELECT count(*) FROM participants WHERE site <> 'Riverside'").fetchone() == (0,)
        assert app.execute("SELECT count(*) FROM attendance a JOIN participants p USING (participant_id) "
                           "WHERE p.site = 'Downtown'").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute("INSERT INTO participants (participant_id, program, site, enrolled_on) "
                        "VALUES ('X-1', 'P', 'Riverside', '2026-01-01')")  # a scoped connection writes nothing
        assert app.execute("UPDATE participants SET gender = 'x' WHERE site = 'Downtown'").rowcount == 0
        app.execute("SELECT set_config('app.sites', '{}', false)")  # an empty list: nobody
        assert sites_of(app) == {table: 0 for table in SCOPED_TABLES[1:]}
    owner = sample_db.replace("outcomes_app@", f"{OWNER}@")
    with psycopg.connect(owner, autocommit=True) as conn:  # FORCE: the tables' owner is subject too
        limit_to_sites(conn, ["Riverside"])
        assert sites_of(conn) == riverside
    db = sample_db.split("@/")[1].split("?")[0]
    with pg_server.connect(db) as su:  # a superuser (backups: pg_dump) reads every row
        limit_to_sites(su, ["Riverside"])
        assert sites_of(su) == everything


def test_a_scoped_accounts_mirror_holds_only_its_sites(sample_db):
    with Store.open(sample_db) as server, psycopg.connect(sample_db) as conn:
        riverside = expected(conn, "Riverside")
        with access.acting_as(LEAD):
            assert server.rows("SELECT DISTINCT site FROM participants") == [("Riverside",)]
            assert {t: server.scalar(f"SELECT count(*) FROM {t}") for t in SCOPED_TABLES[1:]} == \
                {t: riverside[t] for t in SCOPED_TABLES[1:]}
            mirror = server.mirror(LEAD.sites)
            assert mirror.sites == ("Riverside",) and server.mirror(["Riverside"]) is mirror  # kept
        assert server.scalar("SELECT count(DISTINCT site) FROM participants") == 8  # unscoped: the full mirror
        assert server.mirror() is not mirror


def test_a_crafted_filter_naming_another_site_returns_nothing_of_it(sample_db, embedded):
    with Store.open(sample_db) as server, access.acting_as(LEAD):
        for store in (server, embedded):
            asked = Filters(sites=("Downtown",))
            where, params = asked.where()
            assert store.scalar(f"SELECT count(*) FROM participants p WHERE {where}", params) == 0
        # a query that forgets the filter altogether still reads only Riverside on the server
        assert server.rows("SELECT DISTINCT site FROM participants") == [("Riverside",)]
        assert server.scalar("SELECT count(*) FROM participants WHERE site = 'Downtown'") == 0


def test_a_scoped_account_cannot_write_the_import_tables(sample_db, tmp_path):
    with Store.open(sample_db) as server, access.acting_as(User("lead", "admin", ("Riverside",))):
        db = server.session()
        db.rows("SELECT 1 FROM participants LIMIT 1")  # attached to the scoped mirror
        with pytest.raises(StoreError, match="site-scoped"), db.transaction():
            db.insert_rows("import_batches", ["batch_id", "imported_at", "file_count"], [[99, "2026-01-01", 0]])


def test_a_scoped_mirror_that_holds_another_site_is_refused(sample_db, monkeypatch):
    """Row-level security missing (a store set up by an older release): the check refuses."""
    from analytics.store import server as srv

    monkeypatch.setattr(srv, "limit_to_sites", lambda conn, sites: None)
    with Store.open(sample_db) as server, pytest.raises(StoreError, match="row-level security is not in force"):
        server.mirror(("Riverside",))


def test_the_owner_adds_row_security_to_a_store_set_up_without_it(pg_server):  # noqa: F811
    name = pg_server.new_database()
    Store.open(pg_server.url(name, OWNER)).close()
    with pg_server.connect(name) as su:  # as an older release left it
        for table in SCOPED_TABLES:
            su.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        su.execute("DROP TABLE disclosure_meta")
        su.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP}")
    with pytest.raises(StoreError, match=r"needs its server setup \(row-level security, cell-key secret\): "
                                         "run any command once as the database's owner"):
        Store.open(pg_server.url(name, APP))
    with pytest.MonkeyPatch.context() as mp:  # the owner's command, as the README says it
        mp.setenv(PG_APP_ROLE.env, APP)
        Store.open(pg_server.url(name, OWNER)).close()
    with Store.open(pg_server.url(name, APP)) as server:
        assert len(cell_key_secret(server)) == 32


def test_one_cell_key_secret_for_every_process_scope_and_data_version(sample_db, own):
    """The secret is on PostgreSQL, not in a mirror: two processes, a scoped account and a new
    data version all get the same one, and the application's role cannot change it."""
    with Store.open(sample_db) as one, Store.open(sample_db) as two:
        secret = cell_key_secret(one)
        with access.acting_as(LEAD):
            assert cell_key_secret(two) == secret
        assert import_files(one, [own], today=TODAY).ok  # nothing new, but the same secret after it
        assert cell_key_secret(two) == secret
    with psycopg.connect(sample_db) as conn:
        assert conn.execute("SELECT value FROM disclosure_meta").fetchall() == [(secret.hex(),)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE disclosure_meta SET value = 'x'")


@pytest.mark.parametrize("sites", [("Riverside",), ("Harbor", "Riverside")])
def test_a_scoped_accounts_numbers_are_the_embedded_stores_scoped_numbers(sample_db, embedded, sites):
    """With Harbor the cutoff is the scope's own (Harbor's data ends a week before the sample's)."""
    with Store.open(sample_db) as server, access.acting_as(User("lead", "director", sites)):
        scoped = numbers(embedded)
        assert numbers(server) == scoped
    assert numbers(embedded) != scoped  # every site: other numbers


def page_numbers(url: str, stem: str) -> dict[str, str]:
    """The metrics and tables a Harbor-scoped director's page shows (AppTest, signed in by token)."""
    with Store.open(url) as store:
        if users.load_user(store, "harbor-lead") is None:
            users.add_user(store, "harbor-lead", "director", PASSWORD, sites=["Harbor", "Riverside"])
        token = sessions.start(store, users.load_user(store, "harbor-lead"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTCOMES_DB", url)
        at = app()
        at.session_state["session_token"] = token
        at.run()
        at.switch_page(f"views/{stem}.py").run()
        access.enforce(False)
        access.set_user(None)
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    shown.update({f"table {i}": d.value.to_csv() for i, d in enumerate(at.dataframe)})
    shown["sites"] = at.sidebar.multiselect(key="site").options
    return shown


@pytest.mark.parametrize("stem", ["home", "overview"])
def test_a_scoped_accounts_pages_show_the_same_numbers_in_both_stores(sample_db, embedded_path, stem):
    server = page_numbers(sample_db, stem)
    assert server["sites"] == ["Harbor", "Riverside"] and len(server) > 3
    assert server == page_numbers(str(embedded_path), stem)


def test_statements_that_run_on_postgresql_keep_the_scope(sample_db):
    """A statement naming a live table runs on PostgreSQL, not on the mirror: on the process's
    shared connection it reads no import row at all, in a scoped account's transaction its sites'."""
    query = ("SELECT count(*), count(DISTINCT p.site) FROM participants p "
             "LEFT JOIN users u ON u.user_name = p.participant_id")
    with Store.open(sample_db) as server, psycopg.connect(sample_db) as conn:
        riverside = expected(conn, "Riverside")["Riverside"]
        assert server.rows(query) == [(0, 0)]
        with access.acting_as(LEAD), server.transaction() as db:
            assert db.rows(query) == [(riverside, 1)]
        with server.transaction() as db:  # unscoped (an import, the command line): every row
            assert db.rows(query) == [(807, 8)]


def test_scoped_mirrors_are_kept_per_scope_up_to_a_limit(sample_db, monkeypatch):
    from analytics.store import server as srv

    monkeypatch.setattr(srv, "MAX_SCOPED_MIRRORS", 2)
    with Store.open(sample_db) as server:
        full = server.mirror()
        first, second = server.mirror(["Harbor"]), server.mirror(["Riverside", "Downtown"])
        assert server.mirror(["Downtown", "Riverside"]) is second  # one scope, whatever the order
        third = server.mirror(["Online"])
        assert server.mirror() is full and server.mirror(["Online"]) is third
        assert server.mirror(["Riverside", "Downtown"]) is second
        assert server.mirror(["Harbor"]) is not first  # the oldest scope went and is loaded again
        assert first.con.execute("SELECT count(*) FROM participants").fetchone() == (4,)

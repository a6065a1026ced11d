"""Data: import files into the running dashboard's store, the import history, and what is
missing or stale in the data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import streamlit as st

from analytics.access import roles as access
from analytics.analyses import quality
from analytics.ingest.importer import ImportResult, Problem, import_files, problems_csv
from analytics.ingest.limits import MAX_FILE_NAME_BYTES
from analytics.store.connection import Store
from analytics.analyses.summary import import_history
from dashboard.auth import DEMO, guard, log_view
from dashboard.common import cached, get_store, sidebar_filters

PROBLEM_COLUMNS = ["file", "row", "column", "value", "problem"]


def import_uploads(store: Store, files: Iterable[tuple[str, bytes]], *, dry_run: bool = False,
                   user: str | None = None) -> ImportResult:
    """Save uploaded (name, content) pairs in a temporary folder under their own file names
    (the importer tells the tables apart by name or header) and import them into `store`.
    All or nothing: on any problem nothing is written (see analytics.ingest.importer); a file
    that cannot be saved under its name (too long for the file system) is such a problem."""
    with tempfile.TemporaryDirectory(prefix="outcomes-upload-") as tmp:
        paths, refused = [], []
        for name, content in files:
            base = Path(name).name  # the base name only: never a path from the browser
            try:
                if len(base.encode("utf-8")) > MAX_FILE_NAME_BYTES:
                    raise OSError(f"the name is longer than {MAX_FILE_NAME_BYTES} bytes")
                (Path(tmp) / base).write_bytes(content)
            except OSError as exc:
                refused.append(Problem(base[:60] + ("..." if len(base) > 60 else ""), None, None, None,
                                       f"the file cannot be saved under this name ({exc.strerror or exc}): "
                                       f"rename it to at most {MAX_FILE_NAME_BYTES} characters"))
                continue
            paths.append(Path(tmp) / base)
        if refused:
            return ImportResult(files=[], problems=refused, dry_run=dry_run)
        return import_files(store, paths, dry_run=dry_run, source="user", user=user)


def duplicate_names(names: Iterable[str]) -> list[str]:
    seen, dupes = set(), []
    for name in (Path(n).name for n in names):
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    return dupes


def outcome(result: ImportResult) -> dict:
    """What the page shows of an import, kept in the session so it survives reruns."""
    return {
        "ok": result.ok, "dry_run": result.dry_run, "batch_id": result.batch_id, "changed": result.changed,
        "files": [f.name for f in result.files], "skipped": [p.name for p in result.skipped],
        "problems": [dataclasses.asdict(p) for p in result.problems],
        "problems_csv": problems_csv(result.problems) if result.problems else "",
        "counts": [{"table": name, **dataclasses.asdict(c)} for name, c in result.counts.items()],
        "updated": [{"participant": pid, "changed columns": ", ".join(cols)}
                    for pid, cols in result.updated_participants],
    }


def show_outcome(done: dict) -> None:
    files = ", ".join(done["files"]) or "no file"
    if done["problems"]:
        st.error(f"**Nothing was imported.** {len(done['problems']):,} problem(s) found in {files}. "
                 "Fix them and import all the files again: an import lands completely or not at all.",
                 icon=":material/error:")
        problems = pd.DataFrame(done["problems"], columns=PROBLEM_COLUMNS).astype({"row": "Int64"})
        st.dataframe(problems, hide_index=True, width="stretch", key="import_problems", placeholder="",
                     column_config={
                         "file": st.column_config.TextColumn("file", width="small"),
                         "row": st.column_config.NumberColumn(
                             "row", width="small",
                             help="Spreadsheet row: the header is row 1, the first record row 2"),
                         "column": st.column_config.TextColumn("column", width="small"),
                         "value": st.column_config.TextColumn("value", width="small"),
                         "problem": st.column_config.TextColumn("problem", width="large")})
        st.caption("Hover a cell to read a long problem in full; the CSV report has every problem in full.")
        st.download_button("Download the problem report (CSV)", data=done["problems_csv"],
                           file_name=f"import-problems-{dt.date.today()}.csv", mime="text/csv",
                           key="problems_download", on_click="ignore", icon=":material/download:")
    else:
        if done["dry_run"]:
            st.info(f"**Check passed; nothing was written.** Importing {files} would change:",
                    icon=":material/fact_check:")
        elif done["changed"]:
            st.success(f"**Imported batch {done['batch_id']}** ({files}). Every page now shows the new data.",
                       icon=":material/check_circle:")
        else:
            st.info(f"**Nothing changed:** every row of {files} is already in the store as it is.")
        st.dataframe(pd.DataFrame(done["counts"], columns=["table", "rows", "new", "updated", "unchanged"]),
                     hide_index=True, key="import_counts",
                     column_config={"table": "Table", **{c: st.column_config.NumberColumn(label, format="localized")
                                                         for c, label in (("rows", "Rows read"), ("new", "New"),
                                                                          ("updated", "Updated"),
                                                                          ("unchanged", "Unchanged"))}})
        if done["updated"]:
            with st.expander(f"Updated participants ({len(done['updated']):,})"):
                st.dataframe(done["updated"], hide_index=True, width="stretch")
    if done["skipped"]:
        st.warning("Skipped (not .csv or .xlsx): " + ", ".join(done["skipped"]))


user = guard(access.DATA_QUALITY)
filters = sidebar_filters()
store = get_store()
st.title("Data")

# --- import ---------------------------------------------------------------------------
def import_section(user_name: str) -> None:
    """Upload, check and import (admins only: analytics.ingest.importer refuses others too)."""
    st.subheader("Import files")
    st.markdown(
        "CSV (UTF-8, ISO dates YYYY-MM-DD) or Excel files in the import format: `participants`, `attendance`, "
        "`checkins`, `mentoring` (named so, or recognised by their columns). Every row is checked first; if "
        "anything is wrong, **nothing** is imported and you get the full list of problems. Rows already in the "
        "store are matched by their keys: importing a file again changes nothing, a changed row is updated. "
        "Only pseudonymous records: columns such as name, email or date of birth are refused.")
    if "uploader" not in st.session_state:
        st.session_state.uploader = 0
    uploads = st.file_uploader("Files to import", type=["csv", "xlsx"], accept_multiple_files=True,
                               key=f"uploads_{st.session_state.uploader}")
    check_only = st.checkbox("Only check the files (dry run: nothing is written)", key="dry_run")
    dupes = duplicate_names(u.name for u in uploads)
    if dupes:
        st.warning(f"Two files share the name {', '.join(dupes)}: rename one, or import them one at a time.")
    if store.read_only:
        st.warning("The store is open read-only in this dashboard: files can only be checked, not imported.")
    clicked = st.button("Check" if check_only else "Import", type="primary", key="import",
                        disabled=not uploads or bool(dupes), icon=":material/upload:")
    if clicked:
        with st.spinner(f"{'Checking' if check_only else 'Checking and importing'} {len(uploads)} file(s)..."):
            result = import_uploads(store, [(u.name, u.getvalue()) for u in uploads],
                                    dry_run=check_only or store.read_only, user=user_name)
        st.session_state.import_outcome = outcome(result)
        if result.ok and not result.dry_run:
            st.session_state.uploader += 1  # empty the uploader: these files are in
            st.rerun()  # redraw everything, the sidebar's programs and sites included, from the new data
    if "import_outcome" in st.session_state:
        show_outcome(st.session_state.import_outcome)


if user.may(access.IMPORT):
    if user is DEMO:
        st.warning("This is the open demo on the synthetic sample. Importing your own data ends it: from then "
                   "on everyone signs in. Create an admin account on the server first: "
                   "`python -m analytics users add NAME --role admin`.", icon=":material/lock:")
    import_section(user.name)
else:
    st.subheader("Import files")
    st.info("Only an admin can import files.")

# --- import history -------------------------------------------------------------------
st.subheader("Import history")
history = cached(import_history)
if history.empty:
    st.info("Nothing has been imported yet.")
else:
    st.dataframe(history, hide_index=True, width="stretch", key="import_history", column_config={
        "batch_id": "Batch", "imported_at": st.column_config.DatetimeColumn("Imported at",
                                                                            format="YYYY-MM-DD HH:mm"),
        "source": "Source", "file_name": "File", "table_name": "Table",
        **{c: st.column_config.NumberColumn(label, format="localized") for c, label in (
            ("rows_read", "Rows read"), ("rows_new", "New"), ("rows_updated", "Updated"),
            ("rows_unchanged", "Unchanged"))},
        "sha256": st.column_config.TextColumn("SHA-256", help="Fingerprint of the file as imported")})
    st.caption("One row per imported file, newest first. Source: `sample` = the bundled synthetic sample, "
               "`user` = your data.")

# --- data quality ---------------------------------------------------------------------
st.subheader("Data quality")
st.caption(f"For {filters.describe()} (the sidebar filters).")
with st.spinner("Checking the data..."):
    last = cached(quality.last_activity_by_program, filters)
    coverage = cached(quality.checkin_coverage, filters)
    without = cached(quality.participants_without_checkins, filters)
    missing = cached(quality.missing_values, filters)
if last.empty:
    st.warning("Nothing to show: no participant matches the filters. Widen the filters in the sidebar.")
    st.stop()

st.markdown("**Latest data per program**: a program whose data stop early may have missed an import.")
st.dataframe(last, hide_index=True, width="stretch", key="last_activity", column_config={
    "program": "Program", "participants": "Participants", "last_enrollment": "Last enrollment",
    "last_attendance": "Last meeting", "last_checkin": "Last check-in", "last_mentoring": "Last mentoring",
    "last_activity": "Last activity",
    "days_behind": st.column_config.NumberColumn(
        "Days behind", help="Days from the program's last activity to the latest date in the whole store")})

st.markdown(f"**Participants without any check-in**: {len(without):,}. They have no sobriety follow-up: the "
            "Sobriety and retention page leaves them out of the sobriety analysis and counts them.")
st.dataframe(coverage, hide_index=True, key="checkin_coverage", column_config={
    "program": "Program", "participants": "Participants", "without_checkins": "Without check-ins",
    "share_without": st.column_config.NumberColumn("Share without", format="percent")})
if not without.empty:
    log_view(user, "participants without a check-in", filters=filters)
    with st.expander(f"The {len(without):,} participants without a check-in"):
        st.dataframe(without, hide_index=True, width="stretch", key="without_checkins")

st.markdown("**Blank values per column**. A blank `sobriety_start` means the same day as enrollment, and a "
            "blank `exited_on` / `exit_reason` means no exit recorded: blank is not always an error there.")
st.dataframe(missing, hide_index=True, width="stretch", height="content", key="missing_values", column_config={
    "table": "Table", "column": "Column", "required": "Required",
    "rows": st.column_config.NumberColumn("Rows", format="localized"),
    "missing": st.column_config.NumberColumn("Blank", format="localized"),
    "share_missing": st.column_config.NumberColumn("Share blank", format="percent")})

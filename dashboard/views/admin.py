"""Users and audit log (admins): who may sign in, and who did what."""

import streamlit as st

from analytics.access import roles as access
from analytics.access import audit
from analytics.publish import spreadsheets
from analytics.access import users
from dashboard.auth import guard
from dashboard.common import get_store

user = guard(access.USERS)
store = get_store()
st.title("Users and audit log")

st.subheader("Accounts")
st.markdown("Add accounts on the server with `python -m analytics users add NAME --role ROLE` (the password "
           "is asked twice, never typed on the command line); `users disable NAME`, `users set-role NAME ROLE`.")
st.dataframe(users.list_users(store), hide_index=True, width="stretch", key="users_table")

st.subheader("Audit log")
action = st.selectbox("Action", [None, *audit.ACTIONS], key="audit_action",
                      format_func=lambda a: "All actions" if a is None else a.replace("_", " "))
log = audit.entries(store, action=action, limit=5000)
st.dataframe(log, hide_index=True, width="stretch", key="audit_table")
st.caption(f"{len(log):,} entries shown, newest first (at most 5,000). The log is append-only.")


def _export() -> bytes:
    data = spreadsheets.csv_bytes(log, notes=[f"Audit log export by {user.name}; action filter: {action or 'all'}"])
    audit.record(store, "export", "audit-log.csv", user=user.name, action_filter=action)
    return data


st.download_button("Download the audit log (CSV)", data=_export, file_name="audit-log.csv", mime="text/csv",
                   key="audit_download", on_click="ignore", icon=":material/download:")

"""Home: what is in the store."""

import streamlit as st

from analytics.access import roles as access
from analytics.analyses.summary import store_summary
from dashboard.auth import guard
from dashboard.common import get_store, sidebar_filters

guard(access.ANALYTICS)
sidebar_filters()  # not used here; shown so the choices carry over to the other pages
store = get_store()
summary = store_summary(store)

st.title("Recovery outcomes")
st.markdown(f"Store: `{summary.path}`")
if summary.sample_only:
    st.info("This is the bundled **synthetic sample**: invented participants, for trying the "
            "dashboard. Load your own data with `python -m analytics import FOLDER`.",
            icon=":material/science:")
if summary.empty:
    st.warning("The store is empty. Import files with `python -m analytics import FOLDER`.")
    st.stop()

st.subheader("Where to look")
QUESTIONS = [
    ("views/engagement.py", "Who has gone quiet? The outreach list on **Engagement**", ":material/groups:"),
    ("views/overview.py", "How did this month go? The KPIs on **Overview**", ":material/dashboard:"),
    ("views/cohorts.py", "Which cohort kept people longest? The retention table on **Cohorts**", ":material/grid_on:"),
    ("views/survival.py", "How long do people stay sober, and in the program? **Sobriety and retention**",
     ":material/timeline:"),
    ("views/engagement_retention.py", "Does engagement go with staying? **Engagement and retention**",
     ":material/insights:"),
    ("views/reports.py", "A report for a funder? **Reports** (small numbers hidden)", ":material/description:"),
]
for page, label, icon in QUESTIONS:
    st.page_link(page, label=label, icon=icon)

st.subheader("What the store holds")
cols = st.columns(4)
labels = {"participants": "Participants", "attendance": "Meetings attended",
          "checkins": "Check-ins", "mentoring": "Mentoring sessions"}
for col, (table, label) in zip(cols, labels.items()):
    col.metric(label, f"{summary.counts[table]:,}")

st.subheader("Dates")
st.write(f"From **{summary.first_date:%d %b %Y}** to **{summary.last_date:%d %b %Y}** "
         "(enrollments, exits and activity).")

st.subheader("Programs")
st.dataframe(
    summary.programs.rename(columns={"program": "Program", "sites": "Sites",
                                     "participants": "Participants",
                                     "without_exit": "No recorded exit"}),
    hide_index=True, width="stretch")

st.subheader("Last import")
if summary.last_import:
    li = summary.last_import
    st.write(f"Batch {li['batch_id']} on {li['imported_at']:%d %b %Y %H:%M} "
             f"({'bundled sample' if li['source'] == 'sample' else 'your data'}): {li['files']}")

"""Streamlit entry point: `streamlit run dashboard/app.py`.

Pages only gather filters, call analytics/, and lay out the result.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `analytics` imports

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Recovery outcomes", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:"),
    st.Page("views/engagement.py", title="Engagement", icon=":material/groups:"),
    st.Page("views/cohorts.py", title="Cohorts", icon=":material/grid_on:"),
    st.Page("views/survival.py", title="Sobriety and retention", icon=":material/timeline:"),
    st.Page("views/engagement_retention.py", title="Engagement and retention", icon=":material/insights:"),
    st.Page("views/reports.py", title="Reports", icon=":material/description:"),
    st.Page("views/data.py", title="Data", icon=":material/database:"),
]

st.navigation(PAGES).run()

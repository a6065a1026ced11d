"""Streamlit entry point: `streamlit run dashboard/app.py`.

Pages only gather filters, call analytics/, and lay out the result.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `analytics` imports

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Recovery outcomes", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/survival.py", title="Sobriety and retention", icon=":material/timeline:"),
]

st.navigation(PAGES).run()

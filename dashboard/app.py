"""Streamlit entry point: `streamlit run dashboard/app.py`.

Pages only gather filters, call analytics/, and lay out the result. Each role sees only
the pages it may open (analytics.access.roles); a page left out of the navigation cannot be
opened by its URL, and every page checks again (dashboard.auth.guard).
"""

from pathlib import Path

import streamlit as st

from analytics.access import roles as access
from dashboard import auth

st.set_page_config(page_title="Recovery outcomes", page_icon=":material/monitoring:", layout="wide")

# page file, title, icon, the permission it needs
PAGES = [
    ("views/home.py", "Home", ":material/home:", access.ANALYTICS),
    ("views/overview.py", "Overview", ":material/dashboard:", access.ANALYTICS),
    ("views/engagement.py", "Engagement", ":material/groups:", access.PARTICIPANT_LEVEL),
    ("views/cohorts.py", "Cohorts", ":material/grid_on:", access.ANALYTICS),
    ("views/survival.py", "Sobriety and retention", ":material/timeline:", access.ANALYTICS),
    ("views/engagement_retention.py", "Engagement and retention", ":material/insights:", access.ANALYTICS),
    ("views/recovery_capital.py", "Recovery capital", ":material/trending_up:", access.PARTICIPANT_LEVEL),
    ("views/published.py", "Published charts", ":material/verified_user:", access.PUBLISHED),
    ("views/reports.py", "Reports", ":material/description:", access.PUBLISHED),
    ("views/data.py", "Data", ":material/database:", access.DATA_QUALITY),
    ("views/admin.py", "Users and audit log", ":material/admin_panel_settings:", access.USERS),
]

access.enforce()
user = auth.current()
auth.cookie()
if user is None:
    # Every page's address leads to the sign-in form, so a deep link shows no "Page not found"
    # and, once signed in, the rerun lands on the page it asked for.
    st.navigation([st.Page(auth.sign_in_form, title="Sign in", icon=":material/login:", default=True)]
                  + [st.Page(auth.sign_in_form, title=title, url_path=Path(path).stem)
                     for path, title, _, _ in PAGES], position="hidden").run()
    st.stop()
allowed = [(path, title, icon) for path, title, icon, permission in PAGES if user.may(permission)]
auth.sign_out_button(user)
if user is not auth.DEMO:
    auth.watch()
st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
               for i, (path, title, icon) in enumerate(allowed)]).run()

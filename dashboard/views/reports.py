"""Reports (grant writers): the outcome report for funders as a PDF, small numbers suppressed."""

import datetime as dt

import streamlit as st

from analytics.access import roles as access
from analytics.publish import privacy
from analytics.publish.exports import TooFew
from analytics.outcomes.period import Period, default_period
from analytics.publish.report import write_report
from analytics.settings import THRESHOLD
from dashboard.auth import guard
from dashboard.common import cached, get_store, sidebar_filters

user = guard(access.PUBLISHED)
filters = sidebar_filters()
st.title("Reports")
st.write("An outcome report for funders: people served, engagement dose, retention at 30/90/180 days, "
         "sobriety, cohorts and outcomes by program, each with a chart and a table, and a methods "
         "appendix. It uses the program and site filters in the sidebar.")

last = cached(default_period).end
year = Period.last_days(last, 365)
picked = st.date_input("Reporting period", value=(year.start, year.end), max_value=last, key="report_period",
                       bind="query-params", format="YYYY-MM-DD", width=320,
                       help="Both days included. Default: the 365 days up to the last date in the data.")
threshold = st.number_input("Hide counts below", min_value=int(THRESHOLD.minimum), value=THRESHOLD.default,
                            step=1, key="threshold",
                            help=f"Counts from 1 to this number minus one are shown as '<N' "
                                 f"(never below {THRESHOLD.minimum:g}).")
st.caption(privacy.method_statement(int(threshold), perturbed=True).replace("*", r"\*"))  # "*" is the marker, not markdown
organisation = st.text_input("Organisation (on the cover)", key="organisation", max_chars=200)
if len(picked) != 2:
    st.info("Pick the last day of the reporting period too.")
    st.stop()
period = Period(*picked)

if st.button("Build the report", type="primary", key="build_report"):
    with st.status("Building the report...", expanded=True) as status:
        try:
            pdf = write_report(get_store(), period, None, filters, threshold=int(threshold), user=user.name,
                               progress=lambda msg: st.write(msg.capitalize() + "..."),
                               organisation=organisation)
        except TooFew as exc:
            status.update(label="Nothing to report", state="error")
            st.warning(f"Nothing to report: {exc}. Widen the filters or pick another period.")
            st.stop()
        status.update(label="The report is ready", state="complete", expanded=False)
    st.session_state["report_pdf"] = (pdf, period, filters, int(threshold), dt.datetime.now())

ready = st.session_state.get("report_pdf")
if ready and ready[1:4] == (period, filters, int(threshold)):
    pdf, built = ready[0], ready[4]
    st.download_button("Download the report (PDF)", data=pdf, mime="application/pdf", key="report_download",
                       file_name=f"outcome-report-{period.start}-to-{period.end}.pdf", on_click="ignore",
                       icon=":material/download:")
    st.caption(f"{len(pdf) / 1024:,.0f} KB, built {built:%Y-%m-%d %H:%M}; recorded in the audit log.")

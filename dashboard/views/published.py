"""Published charts (grant writers): the report's charts and tables, every small number hidden."""

import streamlit as st

from analytics.access import roles as access
from analytics.publish import privacy
from analytics.publish.exports import TooFew
from analytics.publish.formatting import caption, formatted
from analytics.outcomes.period import Period, default_period
from analytics.publish.report import build
from analytics.settings import THRESHOLD
from dashboard.auth import guard
from dashboard.common import cached, downloads, sidebar_filters

guard(access.PUBLISHED)
filters = sidebar_filters()
st.title("Published charts")
st.write("The charts and tables of the outcome report, ready for a funder: every count below "
         f"{THRESHOLD.default} is hidden, in the page and in every download.")
st.caption(privacy.method_statement(perturbed=True).replace("*", r"\*"))  # "*" is the marker, not markdown

last = cached(default_period).end
year = Period.last_days(last, 365)
picked = st.date_input("Reporting period", value=(year.start, year.end), max_value=last, key="report_period",
                       bind="query-params", format="YYYY-MM-DD", width=320,
                       help="Both days included. Default: the 365 days up to the last date in the data.")
if len(picked) != 2:
    st.info("Pick the last day of the reporting period too.")
    st.stop()
period = Period(*picked)

try:
    with st.spinner("Counting and protecting the numbers..."):
        report = cached(build, period, filters)
except TooFew as exc:
    st.warning(f"Nothing to show: {exc}. Widen the filters or pick another period.")
    st.stop()

for s, section in enumerate(report.sections):
    st.header(section.title)
    st.write(section.text)
    for e, export in enumerate(section.exports):
        key = f"published_{s}_{e}"
        if export.figure is not None:
            st.plotly_chart(export.figure, theme=None, key=key)
        st.dataframe(formatted(export.table.display()), width="stretch", key=f"{key}_table")  # as in the PDF
        st.caption(caption(export).replace("*", r"\*"))  # "*" is the marker, not markdown
        downloads(export.meta.title, lambda export=export: export, key=key, filters=filters)

st.header("Methods")  # the captions above say "see Methods": the report's appendix, as in the PDF
for title, text in report.methods:
    st.subheader(title)
    st.write(text.replace("*", r"\*"))

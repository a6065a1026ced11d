"""What every page shares: one store per process, the sidebar filters, cached calls.

Pages gather filters, call analytics/ through `cached`, and lay out the result: no
statistics here or in views/.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from analytics.access import roles as access
from analytics.ingest.bootstrap import dashboard_store
from analytics.outcomes.filters import Filters
from analytics.outcomes.definitions import latest_date
from analytics.publish import privacy
from analytics.settings import THRESHOLD
from analytics.store.connection import Store, StoreError, resolve_path
from analytics.store.queries.filters import filter_choices


@st.cache_resource(show_spinner="Opening the store (built from the bundled sample on first start)...")
def _open(path: str) -> Store:
    return Store.open(dashboard_store(path))


def get_store() -> Store:
    """One DuckDB connection per store file for the whole process; each query takes its own cursor.
    A missing store other than the default stops the page with "no store at PATH"."""
    try:
        return _open(str(resolve_path()))
    except StoreError as exc:
        st.error(str(exc))
        st.stop()


@st.cache_data(show_spinner=False, max_entries=256)
def _call(name: str, version: tuple, path: str, args: tuple, kwargs: dict, sites: tuple) -> Any:
    module, func = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), func)(get_store(), *args, **kwargs)


def cached(func, *args, **kwargs) -> Any:
    """func(store, *args, **kwargs), cached per store file, per arguments (the filters) and
    per the store's last import, so a new import shows at once."""
    access.check(access.permission_of(func))  # before the lookup: a cache hit never runs func's own check
    store = get_store()
    sites = access.scoped_sites(())  # the user's sites: a site-scoped result is cached for that scope only
    return _call(f"{func.__module__}.{func.__qualname__}", store.data_version(), str(store.path), args, kwargs,
                 sites)


@st.cache_data(show_spinner=False)
def _choices(version: tuple, path: str, sites: tuple) -> tuple[list[str], list[str], dt.date | None, dt.date | None]:
    """The sidebar's programs, sites and date bounds, of the user's sites (`sites`, the cache key)."""
    store = get_store()
    programs, found, first = filter_choices(store, sites)
    return programs, found, first, latest_date(store)


def sidebar_filters() -> Filters:
    """Program, site and enrollment window in the sidebar, kept in the URL so a link
    reproduces the view. Every page calls it first, with the same keys, so the choices
    follow the user from page to page."""
    store = get_store()
    programs, sites, first, last = _choices(store.data_version(), str(store.path), access.scoped_sites(()))
    with st.sidebar:
        st.header("Filters")
        chosen_programs = st.multiselect("Program", programs, key="program", bind="query-params",
                                         placeholder="All programs")
        chosen_sites = st.multiselect("Site", sites, key="site", bind="query-params", placeholder="All sites")
        enrolled_from = st.date_input("Enrolled from", value=None, min_value=first, max_value=last,
                                      key="enrolled_from", bind="query-params")
        enrolled_to = st.date_input("Enrolled to", value=None, min_value=first, max_value=last,
                                    key="enrolled_to", bind="query-params")
    filters = Filters(tuple(chosen_programs), tuple(chosen_sites), enrolled_from, enrolled_to)
    return filters


if TYPE_CHECKING:
    from analytics.publish.exports import ChartExport

DOWNLOAD_LABELS = {"png": "PNG image", "svg": "SVG (vector)", "pdf": "PDF", "csv": "Table (CSV)",
                   "xlsx": "Table (Excel)"}


def downloads(title: str, build: Callable[[], "ChartExport"], *, key: str, filters: Filters | None = None,
              formats: tuple[str, ...] = ("png", "svg", "pdf", "csv", "xlsx")) -> None:
    """A "Download" menu under a chart: the chart as PNG/SVG/PDF and its table as CSV/XLSX.

    Files are built only on click, from protected numbers (analytics.publish.exports: small counts
    hidden), and each download is recorded in the audit log. `build` must not call
    Streamlit: it runs outside the script run.
    """
    from analytics.charts import render as chart_export  # imported on the first page with a chart, not on Home
    from analytics.publish.exports import MIME, TooFew, refusal

    store = get_store()
    stem = chart_export.filename(title, "png").removesuffix(".png")
    user = access.current_user()
    name = user.name if user else None

    def make(fmt: str) -> Callable[[], bytes]:
        def data() -> bytes:
            try:
                return build().save(store, fmt, user=name, filters=filters)
            except TooFew as exc:
                return refusal(fmt, title, f"Nothing to export: {exc}.")
        return data

    with st.popover("Download", icon=":material/download:", key=f"{key}_downloads"):
        st.caption(f"Small counts are hidden in every file (counts of 1-{THRESHOLD.default - 1} shown as "
                   f"{privacy.small_marker(THRESHOLD.default)}).")
        for fmt in formats:
            st.download_button(DOWNLOAD_LABELS[fmt], data=make(fmt), file_name=f"{stem}.{fmt}", mime=MIME[fmt],
                               key=f"{key}_{fmt}", on_click="ignore", width="stretch")

"""What every page shares: one store per process."""

from __future__ import annotations

import streamlit as st

from analytics.bootstrap import ensure_store
from analytics.store import Store


@st.cache_resource(show_spinner="Opening the store (built from the bundled sample on first start)...")
def get_store() -> Store:
    """One DuckDB connection for the whole process; each query takes its own cursor."""
    return Store.open(ensure_store())

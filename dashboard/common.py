"""What every page shares: one store per process."""

from __future__ import annotations

import streamlit as st

from analytics.bootstrap import ensure_store
from analytics.store import Store, resolve_path


@st.cache_resource(show_spinner="Opening the store (built from the bundled sample on first start)...")
def _open(path: str) -> Store:
    return Store.open(ensure_store(path))


def get_store() -> Store:
    """One DuckDB connection per store file for the whole process; each query takes its own cursor."""
    return _open(str(resolve_path()))

"""First start: build the default store from the bundled sample when it is missing (only the
default: see dashboard_store).

The store is built under a temporary name and renamed into place only when the
import has landed, so a first start that is interrupted leaves no half store.
"""

from __future__ import annotations

import os
from pathlib import Path

from analytics.access import roles as access
from analytics.ingest import importer
from analytics.settings import DEMO
from analytics.store.connection import DEFAULT_DB, REPO_ROOT, Store, StoreError, is_server_url, resolve_path

SAMPLE_DIR = REPO_ROOT / "data" / "sample"


class BootstrapError(Exception):
    """The bundled sample could not be loaded (a broken checkout)."""


def ensure_store(path: str | os.PathLike | None = None, sample_dir: Path = SAMPLE_DIR) -> Path | str:
    """Return the store's path, creating it from `sample_dir` if it does not exist yet.
    A server store is never filled with the sample: it holds a team's real data."""
    target = resolve_path(path)
    if is_server_url(target) or target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(target.name + f".building-{os.getpid()}")
    building.unlink(missing_ok=True)
    with Store.open(building) as store, access.acting_as(access.SYSTEM):
        result = importer.import_files(store, [sample_dir], source="sample")
    if not result.ok:
        building.unlink(missing_ok=True)
        raise BootstrapError(f"the sample in {sample_dir} did not import: {result.problems[:3]}")
    os.replace(building, target)
    return target


def dashboard_store(path: str | os.PathLike | None = None) -> Path | str:
    """The store the dashboard serves. Only the default store is built from the sample when
    missing, or any path when asked (OUTCOMES_DEMO=1): a mistyped OUTCOMES_DB must not become an
    open demo in a new file (served without sign-in), so any other missing path is refused with
    "no store at PATH"."""
    target = resolve_path(path)
    if is_server_url(target):
        return target
    if target.resolve() == DEFAULT_DB.resolve() or DEMO.value():
        return ensure_store(target)
    if not target.exists():
        raise StoreError(f"no store at {target}: check OUTCOMES_DB (import your data there first, "
                         "or unset it for the demo on the bundled sample)")
    return target

"""Reading our plotly figures in tests: traces by the role our builders tag them with, a curve
as drawn (solid part, then the faded part where fewer than the threshold are at risk), the note."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def traces(fig: go.Figure, role: str, **meta: str) -> list:
    """Traces that our builders tagged with meta role (and group, column, ... when given)."""
    return [t for t in fig.data if isinstance(t.meta, dict) and t.meta.get("role") == role
            and all(t.meta.get(k) == v for k, v in meta.items())]


def one(fig: go.Figure, role: str, **meta: str):
    found = traces(fig, role, **meta)
    assert len(found) == 1, (role, meta, len(found))
    return found[0]


def whole_curve(fig: go.Figure, group: str) -> tuple[list[float], list[float]]:
    """A group's curve as drawn: its solid part, then the faded part (fewer than 11 at risk),
    which starts at the solid part's last point."""
    solid = one(fig, "curve", group=group)
    faded = traces(fig, "thin", group=group)
    x, y = list(solid.x), list(solid.y)
    if faded:
        assert (faded[0].x[0], faded[0].y[0]) == (x[-1], y[-1])
        x, y = x + list(faded[0].x[1:]), y + list(faded[0].y[1:])
    return x, y


def banded_rows(table, threshold: int = 11):
    """The KM table rows the CI band covers: up to the step before fewer than 11 are at risk."""
    thin = np.flatnonzero(table.n_risk.to_numpy() < threshold)
    return table if not len(thin) else table.iloc[:thin[0]]


def note_text(fig: go.Figure) -> str:
    """The note as one line (add_note wraps it with <br>, breaking after hyphens too)."""
    text = " ".join(a.text for a in fig.layout.annotations if a.name == "note")
    return text.replace("-<br>", "-").replace("<br>", " ")

"""Chart file export speed: the kept Chromium of analytics.charts.render.

    python benchmarks/bench_export.py [--repeat 10] [--out DIR]

Prints: the first export (starts the browser), then `--repeat` exports each of PNG, SVG and
PDF of a Kaplan-Meier-like figure (4 groups, step curves with CI bands, about 2,000 curve
points, caption), median and max per format, and whether the browser was reused.
Target: under 1 s per image after the first. Writes one file per format to --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go


from bench_survival import timed  # noqa: E402

from analytics.charts import render as chart_export  # noqa: E402
from analytics.charts.base import add_note, color, new_figure, rgba  # noqa: E402

META = chart_export.ChartMeta(
    title="Staying in the program, by program",
    definition="Days from enrollment to dropping out (recorded, or no engagement for 30+ days); Kaplan-Meier "
               "with 95% CI (log-log).",
    n="n = 4,000 participants, 1,610 dropped out", period="Enrolled 2024-01-01 to 2025-06-30",
    cutoff=dt.date(2025, 6, 30))


def km_like_figure(groups: int = 4, steps: int = 500, seed: int = 1) -> go.Figure:
    """Step curves falling from 1 with CI bands, `steps` points per group, as km_figure draws them."""
    rng = np.random.default_rng(seed)
    fig = new_figure("Staying in the program: time to dropping out, by program")
    for g in range(groups):
        t = np.sort(rng.uniform(0, 720, steps)).round()
        s = np.cumprod(1 - rng.uniform(0, 2.2 / steps * (1 + g / 3), steps))
        half = 1.96 * np.sqrt(s * (1 - s) / (1000 - np.arange(steps)).clip(50))
        hue, name = color(g), f"Program {chr(65 + g)}"
        band = dict(mode="lines", line=dict(width=0, shape="hv"), legendgroup=name, showlegend=False,
                    hoverinfo="skip")
        fig.add_trace(go.Scatter(x=t, y=np.minimum(s + half, 1), **band))
        fig.add_trace(go.Scatter(x=t, y=np.maximum(s - half, 0), fill="tonexty", fillcolor=rgba(hue, 0.15), **band))
        fig.add_trace(go.Scatter(x=t, y=s, name=f"{name} (n=1,000)", legendgroup=name, mode="lines",
                                 line=dict(color=hue, width=2.5, shape="hv")))
    fig.update_layout(xaxis_title="Days since enrollment", yaxis=dict(title="Still in the program",
                                                                      tickformat=".0%", range=[0, 1.03]),
                      legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"))
    add_note(fig, "Kaplan-Meier with 95% CI, log-log bands; dashed: median. Log-rank: chi2 = 41.2 on 3 df, "
             "p < 0.001. Synthetic data for the benchmark.")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-export")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fig = km_like_figure()
    points = sum(len(t.x) for t in fig.data if t.showlegend is not False)
    try:
        t_first, _ = timed(lambda: chart_export.export(fig, "png", META), repeat=1)
        browser = chart_export._browser
        print(f"figure: {len(fig.data)} traces, {points:,} curve points (+ bands), "
              f"browser {browser.path or 'found by kaleido'}")
        print(f"first export (starts the browser), PNG:  {t_first:.2f} s")
        for fmt in chart_export.FORMATS:
            runs, data = [], b""
            for _ in range(args.repeat):
                t, data = timed(lambda f=fmt: chart_export.export(fig, f, META), repeat=1)
                runs.append(t)
            (args.out / chart_export.filename(META, fmt)).write_bytes(data)
            print(f"{fmt.upper():3} x {args.repeat}: median {statistics.median(runs):.3f} s, max {max(runs):.3f} s, "
                  f"{len(data) / 1024:,.0f} KiB (target < 1 s)")
        print(f"same browser throughout: {chart_export._browser is browser}; files in {args.out}")
    finally:
        t_stop, _ = timed(chart_export.shutdown, repeat=1)
        print(f"shutdown: {t_stop:.2f} s")


if __name__ == "__main__":
    main()

"""Run R's survival package live on the same data (R comes from Debian in .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd


def run_r(script: str, data: pd.DataFrame, workdir: Path) -> dict[str, pd.DataFrame]:
    """Run `script` with `d` read from data.csv; every `out(name, frame)` call in the script
    writes a CSV that comes back as a DataFrame under `name`."""
    assert shutil.which("Rscript"), "Rscript is required (apt-get install r-base-core r-cran-survival)"
    workdir.mkdir(parents=True, exist_ok=True)
    data.to_csv(workdir / "data.csv", index=False)
    prelude = f"""
suppressMessages(library(survival))
options(digits = 15)
setwd("{workdir}")
d <- read.csv("data.csv", stringsAsFactors = FALSE)
if ("event" %in% names(d)) d$event <- as.logical(d$event)
out <- function(name, x) write.csv(x, paste0("out_", name, ".csv"), row.names = FALSE)
"""
    (workdir / "script.R").write_text(prelude + script)
    run = subprocess.run(["Rscript", str(workdir / "script.R")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return {p.stem[4:]: pd.read_csv(p) for p in workdir.glob("out_*.csv")}

"""Writes combat_input.csv: the data of the R check of ComBat (sva::ComBat).

60 samples x 30 analytes (log scale) in 3 batches (``site`` A, B, C of 18, 20 and 22
samples) with per-analyte location and scale offsets, and a 2-level biological covariate
(``group`` case/control, unbalanced across sites) with an effect on the first 10 analytes.
Analyte ``a30`` is constant within site B (sva leaves such an analyte unadjusted). Run
from the repository root: ``.venv/bin/python tests/reference/combat_input.py``; then
``Rscript tests/reference/combat_sva.R``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261206)
sizes = {"A": 18, "B": 20, "C": 22}
p = 30
site = np.repeat(list(sizes), list(sizes.values()))
n = site.size
case_share = {"A": 0.3, "B": 0.5, "C": 0.7}
group = np.array(["case" if rng.random() < case_share[s] else "control" for s in site])
base = rng.normal(8.0, 1.5, p)
effect = np.where(np.arange(p) < 10, rng.normal(0.8, 0.2, p), 0.0)
X = base + rng.normal(0.0, 0.5, (n, p)) + np.outer(group == "case", effect)
for s, loc_sd, scale in [("A", 0.0, 1.0), ("B", 0.6, 1.6), ("C", 0.4, 0.7)]:
    rows = site == s
    loc = rng.normal(0.5 * (s == "B") - 0.3 * (s == "C"), loc_sd or 0.2, p)
    mean = X[rows].mean(axis=0)
    X[rows] = mean + loc + (X[rows] - mean) * scale * rng.uniform(0.8, 1.25, p)
X[site == "B", p - 1] = 5.0
frame = pd.DataFrame(X.round(6), columns=[f"a{j + 1:02d}" for j in range(p)])
frame.insert(0, "group", group)
frame.insert(0, "site", site)
frame.insert(0, "sample", [f"S{i + 1:02d}" for i in range(n)])
frame.to_csv(Path(__file__).with_name("combat_input.csv"), index=False)

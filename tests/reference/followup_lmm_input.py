"""Writes followup_lmm_input.csv: the data of the R check of the follow-up mixed model.

30 participants (10 treated, 10 untreated, 10 control) x 3 visits, three analytes (log2
scale): ``a1`` with a treated-specific slope, ``a2`` null, ``a3`` with almost no
between-person variation (a boundary fit). Run from the repository root:
``.venv/bin/python tests/reference/followup_lmm_input.py``; then
``Rscript tests/reference/followup_lmm.R``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261206)
n, visits = 30, np.array([1, 2, 3])
arm = np.repeat(["treated", "untreated", "control"], n // 3)
rows = []
for analyte, sd_person, slope_treated in [("a1", 0.8, -0.5), ("a2", 0.5, 0.0), ("a3", 0.02, 0.0)]:
    person = rng.normal(0, sd_person, n)
    for i in range(n):
        for v in visits:
            value = (3.0 + (0.3 if arm[i] == "control" else 0.0) + person[i] + 0.1 * (v - 1)
                     + (slope_treated * (v - 1) if arm[i] == "treated" else 0.0)
                     + rng.normal(0, 0.4))
            rows.append((analyte, f"P{i + 1:02d}", int(v), arm[i], round(float(value), 6)))
pd.DataFrame(rows, columns=["analyte", "participant", "visit", "arm", "value"]).to_csv(
    Path(__file__).with_name("followup_lmm_input.csv"), index=False)

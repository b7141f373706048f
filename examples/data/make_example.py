"""Write the small made-up example tables used by ``make demo``.

The values are invented (seeded random draws around typical adult plasma
levels); they illustrate the file layouts hikisig reads and carry no finding.
Run: python examples/data/make_example.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
# column name as a kit exports it, unit, typical level (geometric mean), log-SD
ANALYTES = [
    ("Orn", "umol/L", 65.0, 0.25), ("Arg", "umol/L", 85.0, 0.2), ("Cit", "umol/L", 32.0, 0.2),
    ("Trp", "umol/L", 55.0, 0.15), ("Kynurenine", "umol/L", 2.0, 0.25),
    ("C0", "umol/L", 42.0, 0.2), ("C2", "umol/L", 7.0, 0.3), ("C16", "umol/L", 0.12, 0.3),
    ("C18", "umol/L", 0.05, 0.3), ("C18:1", "umol/L", 0.15, 0.3),
    ("CE 18:2", "umol/L", 1800.0, 0.2), ("Uric acid", "mg/dL", 5.3, 0.2),
    ("T-Bil", "umol/L", 12.0, 0.35), ("HDL-C", "mg/dL", 60.0, 0.2),
]


def main(seed: int = 20211) -> None:
    rng = np.random.default_rng(seed)
    n = 24
    codes = [f"EX{i:03d}" for i in range(1, n + 1)]
    sex = rng.choice(["M", "F"], size=n, p=[0.75, 0.25])
    group = np.array(["hikikomori", "control"] * (n // 2))
    age = rng.integers(18, 46, size=n)
    with open(HERE / "participants.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["participant", "sex", "age", "group", "medication_free", "site"])
        for c, s, a, g in zip(codes, sex, age, group, strict=True):
            w.writerow([c, s, int(a), g, "yes", "clinic-a"])
    with open(HERE / "lab_wide.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample", "participant", "visit", "batch"] + [a[0] for a in ANALYTES])
        w.writerow(["unit", "", "", ""] + [a[1] for a in ANALYTES])
        for i, c in enumerate(codes):
            vals = [f"{m * np.exp(rng.normal(0, sd)):.4g}" for _, _, m, sd in ANALYTES]
            if i == 3:
                vals[8] = "<LOD"
            if i == 7:
                vals[4] = "NA"
            w.writerow([f"{c}-V1", c, 1, "B1" if i < n // 2 else "B2", *vals])


if __name__ == "__main__":
    main()

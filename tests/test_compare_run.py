"""`[compare] reference` in the study run: the report's replication section and
tables/compare.csv, on the demo study."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

import hikisig
from hikisig.config import StudyConfig, load_config


def test_run_compares_with_the_published_signature(demo_run: Path, tmp_path: Path) -> None:
    base = load_config(demo_run / "study.toml")[0].model_dump()
    base["source"]["db"] = str(demo_run / "demo.db")
    base["source"]["criteria"] = str(demo_run / "synthetic-study" / "criteria.csv")
    for section in ("discriminate", "severity", "stratify"):
        base[section]["enabled"] = False
    base["compare"] = {"reference": "setoyama2021"}
    results = hikisig.run(StudyConfig.model_validate(base), out=tmp_path / "out")
    assert results.compare is not None
    table = pd.read_csv(tmp_path / "out" / "tables" / "compare.csv")
    assert "disagree" not in set(table["verdict"])
    assert set(table.loc[table["finding"].isin(["lcac_all", "lcac_men"]), "verdict"]) == {"agree"}
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    block = html[html.index('<section id="compare">'):]
    block = block[:block.index("</section>")]
    assert "Replication of the published signature" in block
    assert "Blood metabolic signatures of hikikomori" in block
    assert re.search(r"Sign test over the findings whose direction was observed: (\d+) of \1 ", block)
    assert "not shown to be specific to men" in block

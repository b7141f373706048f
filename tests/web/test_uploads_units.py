"""Lab uploads with units: a unit row or per-column units, "unit missing" confirmed by the analyst,
and abandoned previews deleted."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from hikisig.cohort import schema
from hikisig.cohort.store import Store
from hikisig.web import WebSettings, create_app
from hikisig.web.uploads import sweep_uploads

from .conftest import Clinic, run_cli, session_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "lab_wide.csv"


def _stored(db: Path, study: str) -> dict[tuple[str, str], tuple[float | None, str | None]]:
    """(sample, analyte source name) -> (value, unit) of a study."""
    with Session(Store(db).engine) as s:
        rows = s.execute(select(schema.Sample.code, schema.Analyte.source_name, schema.Measurement.value,
                                schema.Analyte.unit)
                         .join(schema.Sample, schema.Sample.id == schema.Measurement.sample_id)
                         .join(schema.Analyte, schema.Analyte.id == schema.Measurement.analyte_id)
                         .join(schema.Study, schema.Study.id == schema.Analyte.study_id)
                         .where(schema.Study.name == study)).all()
    return {(str(a), str(b)): (None if v is None else float(v), u) for a, b, v, u in rows}


def _preview(c, csrf: str, name: str, data: bytes, **fields: str):  # type: ignore[no-untyped-def]
    return c.post("/labs/preview", data={"csrf_token": csrf, "study": "units", "format": "auto", **fields},
                  files={"file": (name, data, "text/csv")})


def _token(html: str) -> str:
    m = re.search(r'name="token" value="([^"]+)"', html)
    assert m is not None, html[:2000]
    return m.group(1)


def test_the_readme_example_uploads_like_the_cli(web_app: FastAPI, clinic: Clinic, tmp_path: Path) -> None:
    cli_db = tmp_path / "cli.db"
    Store(cli_db).init()
    r = run_cli("--db", str(cli_db), "--study", "units", "import", "measurements", str(EXAMPLE), "--unit-row")
    assert r.code == 0, r.err
    c, csrf = session_for(web_app, "ana")
    page = c.get("/labs")
    assert 'name="unit_row"' in page.text and 'name="units"' in page.text
    pre = _preview(c, csrf, "lab_wide.csv", EXAMPLE.read_bytes(), unit_row="yes")
    assert pre.status_code == 200, pre.text
    assert "unit missing" not in pre.text and 'id="units_ok"' not in pre.text
    assert "<td>T-Bil</td><td>umol/L</td>" in pre.text
    done = c.post("/labs/import", data={"csrf_token": csrf, "token": _token(pre.text), "study": "units",
                                        "format": "auto", "unit_row": "yes"})
    assert done.status_code == 200 and 'id="import-done"' in done.text, done.text
    web, cli = _stored(clinic.db, "units"), _stored(cli_db, "units")
    assert web.keys() == cli.keys() and len(web) > 100
    assert all(web[k][1] == cli[k][1] and web[k][0] == pytest.approx(cli[k][0]) for k in web)
    value, unit = web[("EX001-V1", "T-Bil")]
    # 15.43 umol/L, stored in the catalog's mg/dL
    assert value is not None and (round(value, 3), unit) == (0.902, "mg/dL")


def test_unit_missing_needs_the_analysts_confirmation(web_app: FastAPI, clinic: Clinic) -> None:
    c, csrf = session_for(web_app, "ana")
    lab = b"sample,participant,visit,Orn,Arg\nU1,PA,1,80,70\n"
    pre = _preview(c, csrf, "lab.csv", lab, units="Orn=umol/L")  # per-column units: Arg has none
    assert pre.status_code == 200, pre.text
    assert "Unit missing for 1 analyte(s): Arg" in pre.text and 'id="units_ok"' in pre.text
    assert "<td>Orn</td><td>umol/L</td>" in pre.text
    token = _token(pre.text)
    form = {"csrf_token": csrf, "token": token, "study": "units", "format": "auto", "units": "Orn=umol/L"}
    refused = c.post("/labs/import", data=form)
    assert refused.status_code == 422 and 'id="units-unconfirmed"' in refused.text
    assert 'id="units_ok"' in refused.text and f'value="{token}"' in refused.text  # confirm right there
    assert _stored(clinic.db, "units") == {}  # nothing stored, the staged file kept for the retry
    ok = c.post("/labs/import", data={**form, "units_ok": "yes"})
    assert ok.status_code == 200 and 'id="import-done"' in ok.text, ok.text
    assert _stored(clinic.db, "units")[("U1", "Arg")] == (70.0, None)
    assert _stored(clinic.db, "units")[("U1", "Orn")][1] == "umol/L"
    # Arg is now stored without a unit: a later file adds nothing new to confirm
    pre = _preview(c, csrf, "more.csv", b"sample,participant,visit,Orn,Arg\nU2,PB,1,81,71\n",
                   units="Orn=umol/L")
    assert "Unit missing for 1 analyte(s): Arg" in pre.text and 'id="units_ok"' not in pre.text
    again = c.post("/labs/import", data={**form, "token": _token(pre.text)})
    assert again.status_code == 200, again.text


def test_api_takes_units_and_lists_the_missing_ones(web_app: FastAPI, clinic: Clinic) -> None:
    c, csrf = session_for(web_app, "ana")
    r = c.post("/api/v1/labs", headers={"X-CSRF-Token": csrf}, data={"study": "api", "unit_row": "true"},
               files={"file": ("lab_wide.csv", EXAMPLE.read_bytes(), "text/csv")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["units"]["T-Bil"] == "umol/L" and body["units_missing"] == []
    r = c.post("/api/v1/labs", headers={"X-CSRF-Token": csrf}, data={"study": "api", "units": "Orn=umol/L"},
               files={"file": ("lab.csv", b"sample,participant,visit,Orn,Arg\nU1,PA,1,80,70\n", "text/csv")})
    assert r.status_code == 200 and r.json()["units_missing"] == ["Arg"], r.text


def test_abandoned_previews_are_deleted(clinic: Clinic) -> None:
    uploads = clinic.work_dir / "uploads"
    old, fresh = uploads / ("o" * 24), uploads / ("f" * 24)
    for d in (old, fresh):
        d.mkdir(parents=True)
        (d / "lab.csv").write_text("x")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    assert sweep_uploads(clinic.work_dir) == 1
    assert not old.exists() and fresh.exists()
    app = create_app(str(clinic.db), WebSettings(work_dir=clinic.work_dir))  # start-up (SQLite): all go
    try:
        assert not fresh.exists()
    finally:
        app.state.jobs.shutdown()
        app.state.store.dispose()

"""`hikisig assess ...` and `import responses` on the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from helpers import Ran, hikisig


def run(*args: str, db: Path | None = None, check: bool = True) -> Ran:
    proc = hikisig(*args, env={"HIKISIG_DB": str(db)} if db is not None else None)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def write_answers(path: Path, n_items: int, rows: list[tuple[str, str, list[int]]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "visit", *[f"item{i}" for i in range(1, n_items + 1)]])
        for pid, visit, a in rows:
            w.writerow([pid, visit, *a])
    return path


def test_score_csv_contract(tmp_path):
    f = write_answers(tmp_path / "a.csv", 9, [("A", "1", [0] * 8 + [1]), ("B", "1", [3] * 9)])
    r = run("assess", "score", "--instrument", "phq9", str(f))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0])[:3] == ["id", "total", "band"]
    assert (rows[0]["total"], rows[0]["band"], rows[0]["item9_alert"]) == ("1.0", "minimal", "true")
    assert rows[1]["band"] == "severe" and rows[1]["screen_positive"] == "true"


def test_score_hq25_cutoff_option(tmp_path):
    f = write_answers(tmp_path / "h.csv", 25, [("A", "1", [2] * 25)])
    base = next(csv.DictReader(io.StringIO(run("assess", "score", "-i", "hq25", str(f)).stdout)))
    total = float(base["total"])
    hi = run("assess", "score", "-i", "hq25", str(f), "--cutoff", str(total + 1),
             "--out", str(tmp_path / "o.csv"))
    assert "wrote" in hi.stderr
    with open(tmp_path / "o.csv") as fh:
        assert next(csv.DictReader(fh))["screen_positive"] == "false"


def test_out_of_range_exit_2_names_row_participant_visit_item(tmp_path):
    f = write_answers(tmp_path / "a.csv", 9, [("A", "1", [0] * 9), ("B", "2", [0, 0, 5, 0, 0, 0, 0, 0, 0])])
    r = run("assess", "score", "--instrument", "phq9", str(f), check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "row 3, column 'item3'" in r.stderr and "participant 'B', visit 2, item 3" in r.stderr


def test_wrong_instrument_exit_2(tmp_path):
    f = write_answers(tmp_path / "a.csv", 25, [("A", "1", [0] * 25)])
    r = run("assess", "score", "--instrument", "phq9", str(f), check=False)
    assert r.returncode == 2 and "another instrument" in r.stderr


def test_criteria_csv(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("id,days_out_per_week,rarely_leaves_room,months_isolated,impairment,distress\n"
                 "A,3,no,6.0,yes,no\nB,1,no,5.9,no,YES\nC,0,true,2.9,1,1\nD,4,false,12,1,0\n")
    rows = list(csv.DictReader(io.StringIO(run("assess", "criteria", str(f)).stdout)))
    assert [(r["status"], r["severity"]) for r in rows] == [
        ("hikikomori", "mild"), ("pre-hikikomori", "moderate"), ("not", ""), ("not", "")]
    assert list(rows[0]) == ["id", "status", "severity", "reasons"]


def test_psychometrics_json(tmp_path):
    rows = [(f"P{i}", "1", [(i + j) % 4 for j in range(9)]) for i in range(30)]
    f = write_answers(tmp_path / "a.csv", 9, rows)
    text = f.read_text().splitlines()
    text[0] += ",dx"
    text[1:] = [line + ("," + ("yes" if k % 3 else "no")) for k, line in enumerate(text[1:])]
    f.write_text("\n".join(text) + "\n")
    data = json.loads(run("assess", "psychometrics", "-i", "phq9", str(f), "--diagnosis-column",
                          "dx", "--json").stdout)
    assert data["reliability"]["n"] == 30 and len(data["item_total"]) == 9
    metrics = {m["metric"] for m in data["screening"]["metrics"]}
    assert {"sensitivity", "ppv_at_prevalence", "auc"} <= metrics
    assert data["screening"]["prevalence"] == pytest.approx(0.0157)


def test_show_reports_unverified_and_unavailable():
    r = run("assess", "show", "hq25")
    assert "UNVERIFIED" in r.stdout
    assert "reverse-scored items: 4, 7, 10" in r.stdout


def test_import_responses_and_nothing_stored_on_error(tmp_path):
    db = tmp_path / "h.db"
    run("init", db=db)
    good = write_answers(tmp_path / "g.csv", 9, [("A", "1", [1] * 9)])
    assert "1 phq9 records stored" in run("import", "responses", str(good), "-i", "phq9", db=db).stdout
    bad = write_answers(tmp_path / "b.csv", 9, [("B", "1", [1] * 9), ("C", "1", [9] * 9)])
    r = run("import", "responses", str(bad), "-i", "phq9", db=db, check=False)
    assert r.returncode == 2 and "participant 'C'" in r.stderr
    info = json.loads(run("info", "--json", db=db).stdout)
    assert info["n_participants"] == 1


def test_fhir_questionnaire_and_roundtrip_cli(tmp_path):
    q = json.loads(run("assess", "questionnaire", "phq9").stdout)
    assert q["resourceType"] == "Questionnaire" and len(q["item"]) == 9


def test_fhir_export_import_gives_identical_answers_and_scores(tmp_path):
    from hikisig.cohort.assessments import load_assessments
    from hikisig.cohort.store import Store

    a_db, b_db = tmp_path / "a.db", tmp_path / "b.db"
    run("init", db=a_db)
    run("init", db=b_db)
    rows = [("A", "1", [0] * 24 + [4]), ("A", "2", [4] * 25), ("B", "1", [1, 2, 3, 4, 0] * 5)]
    f = write_answers(tmp_path / "h.csv", 25, rows)
    run("import", "responses", str(f), "-i", "hq25", db=a_db)
    bundle = tmp_path / "hq25.json"
    run("export", "fhir", str(bundle), "--instrument", "hq25", db=a_db)
    assert json.loads(bundle.read_text())["resourceType"] == "Bundle"
    run("import", "responses", str(bundle), "-i", "hq25", "--format", "fhir", db=b_db)
    a = load_assessments(Store(a_db), "default", "hq25")
    b = load_assessments(Store(b_db), "default", "hq25")
    import pandas as pd

    pd.testing.assert_frame_equal(a, b)
    assert a["total"].notna().all()

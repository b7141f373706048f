"""`hikisig model ...` and `hikisig predict` end to end on the synthetic study."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from helpers import Ran, hikisig


def run(*args: str, db: Path | None = None, check: bool = True) -> Ran:
    proc = hikisig("-q", *args, env={"HIKISIG_DB": str(db)} if db is not None else None)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    run("synth", "--seed", "3", "--out", str(d / "files"), "--db", str(d / "s.db"))
    return d


def test_discriminate_writes_contract_files(study):
    out = study / "discriminate"
    run("model", "discriminate", "--cv-repeats", "2", "--permutations", "200", "--out", str(out),
        db=study / "s.db")
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("auc", "auc_ci_low", "auc_ci_high", "auc_ci_method", "brier", "permutation_p",
                "cv_scheme"):
        assert key in metrics
    assert 0 <= metrics["auc_ci_low"] <= metrics["auc"] <= metrics["auc_ci_high"] <= 1
    with open(out / "oof_predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["id", "y_true", "y_prob"] and len(rows) == 83
    assert (out / "model_card.md").exists() and (out / "model.skops").exists()
    pred = run("predict", "--model", str(out), str(study / "files" / "measurements.csv")).stdout
    got = list(csv.DictReader(io.StringIO(pred)))
    assert len(got) == 83 and 0 <= float(got[0]["probability"]) <= 1
    # the file's ids are the training participants: every row is flagged
    assert {r["in_training"] for r in got} == {"True"}
    assert all("used to train the model" in r["warning"] for r in got)
    assert "SYN00001" not in (out / "model_card.md").read_text()
    assert "SYN00001" not in (out / "metrics.json").read_text()
    assert "SYN00001" not in (out / "training_ids.json").read_text()
    # the same values under new ids are not flagged
    fresh = study / "fresh.csv"
    fresh.write_text((study / "files" / "measurements.csv").read_text().replace("SYN", "NEW"))
    r = run("predict", "--model", str(out), str(fresh))
    assert {row["in_training"] for row in csv.DictReader(io.StringIO(r.stdout))} == {"False"}
    assert "used to train" not in r.stderr


def test_permutations_zero_saves_and_says_not_computed(study, tmp_path):
    for kind in ("discriminate", "severity"):
        r = run("model", kind, "--cv-repeats", "1", "--permutations", "0", "--out",
                str(tmp_path / kind), db=study / "s.db")
        m = json.loads((tmp_path / kind / "metrics.json").read_text())
        key = "permutation_p" if kind == "discriminate" else "permutation_p_q2"
        assert m[key] is None and m["validated"] is False
        assert m["verdict"].startswith("Not validated")
        if kind == "discriminate" or m["q2"] > 0:
            assert "not tested against chance" in m["verdict"]
        assert "permutation p not computed" in r.stdout + r.stderr
        assert (tmp_path / kind / "model.skops").exists()


def test_severity_and_stratify(study):
    run("model", "severity", "--cv-repeats", "2", "--permutations", "20", "--out",
        str(study / "severity"), db=study / "s.db")
    m = json.loads((study / "severity" / "metrics.json").read_text())
    assert {"r2y", "q2", "rmsee", "rmsecv", "r2_spearman", "n_components"} <= set(m)
    run("model", "stratify", "--bootstraps", "10", "--out", str(study / "strata"), db=study / "s.db")
    assert json.loads((study / "strata" / "metrics.json").read_text())["k"] >= 2


def test_predict_missing_analyte_exit_2(study, tmp_path):
    src = study / "files" / "measurements.csv"
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    j = header.index("c16")
    trimmed = [",".join(c for k, c in enumerate(line.split(",")) if k != j) for line in lines]
    f = tmp_path / "m.csv"
    f.write_text("\n".join(trimmed) + "\n")
    run("model", "severity", "--cv-repeats", "1", "--permutations", "5", "--out",
        str(tmp_path / "pls"), db=study / "s.db")
    r = run("predict", "--model", str(tmp_path / "pls"), str(f), check=False)
    assert r.returncode == 2 and "lacks 1 analyte" in r.stderr and "c16" in r.stderr


def test_consensus_signature_command(study):
    for kind, extra in (("discriminate", ["--cv-repeats", "1", "--permutations", "20"]),
                        ("severity", ["--cv-repeats", "1", "--permutations", "5"])):
        if not (study / kind).exists():
            run("model", kind, *extra, "--out", str(study / kind), db=study / "s.db")
    r = run("model", "signature", str(study / "discriminate"), str(study / "severity"))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    metrics = {k: json.loads((study / k / "metrics.json").read_text())
               for k in ("discriminate", "severity")}
    # 5 permutations cannot give p < 0.05: the severity model is not validated
    assert metrics["severity"]["validated"] is False
    assert metrics["discriminate"]["validated"] is True
    assert "left out: the severity model did not validate" in r.stderr
    assert {"analyte", "consensus_score", "n_models_top", "rank_discriminate",
            "models"} <= set(rows[0])
    assert "rank_severity" not in rows[0] and {x["models"] for x in rows} == {"discriminate"}
    scores = [float(r["consensus_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_follow_up_visits_reliable_change(tmp_path):
    d = tmp_path
    run("synth", "--seed", "4", "--visits", "2", "--n-cases", "20", "--n-controls", "20",
        "--out", str(d / "f"), "--db", str(d / "s.db"))
    run("model", "discriminate", "--cv-repeats", "2", "--permutations", "20", "--out",
        str(d / "rf"), db=d / "s.db")
    m = json.loads((d / "rf" / "metrics.json").read_text())
    assert m["prediction_sem_logit"] > 0
    out = run("predict", "--model", str(d / "rf"), str(d / "f" / "measurements.csv"),
              "--id-column", "id", "--participant-column", "id", "--visit-column", "visit",
              check=False)
    assert out.returncode == 2 and "duplicate sample id" in out.stderr  # id repeats across visits
    import pandas as pd

    meas = pd.read_csv(d / "f" / "measurements.csv", dtype=str)
    meas.insert(0, "sample", meas["id"] + "_v" + meas["visit"])
    meas.to_csv(d / "visits.csv", index=False)
    ran = run("predict", "--model", str(d / "rf"), str(d / "visits.csv"), "--id-column",
              "sample", "--participant-column", "id", "--visit-column", "visit")
    rows = list(csv.DictReader(io.StringIO(ran.stdout)))
    assert len(rows) == 80
    assert {"change_from_baseline", "reliable_change", "reliable_change_threshold"} <= set(rows[0])
    first = [r for r in rows if r["visit"] in ("1", "1.0")]
    assert all(float(r["change_from_baseline"]) == 0 for r in first)
    # the model was trained on every participant: no change is judged, and stderr says why
    assert {r["in_training"] for r in rows} == {"True"} and {r["reliable_change"] for r in rows} == {""}
    assert "reliable change not judged for 80 row(s)" in ran.stderr
    # new participants (other codes) are judged
    fresh = pd.read_csv(d / "visits.csv", dtype=str)
    fresh["id"] = fresh["id"].str.replace("SYN", "NEW")
    fresh["sample"] = fresh["sample"].str.replace("SYN", "NEW")
    fresh.to_csv(d / "fresh.csv", index=False)
    rows = list(csv.DictReader(io.StringIO(run(
        "predict", "--model", str(d / "rf"), str(d / "fresh.csv"), "--id-column", "sample",
        "--participant-column", "id", "--visit-column", "visit").stdout)))
    assert {r["reliable_change"] for r in rows} <= {"True", "False"}

"""The command line: exit codes, one line per error, --help with examples, info --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import GASTRIC, SACURINE
from helpers import Ran, hikisig


def run(*args: str, db: Path, check: bool = True) -> Ran:
    proc = hikisig(*args, env={"HIKISIG_DB": str(db)})
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_end_to_end(tmp_path):
    db = tmp_path / "h.db"
    assert "store ready" in run("init", db=db).stdout
    r = run("--study", "sacurine", "import", "measurements", str(SACURINE), db=db)
    assert "183 samples" in r.stdout and "warning:" in r.stderr
    r = run("--study", "gastric", "import", "measurements", str(GASTRIC), "--format", "cimcb", db=db)
    assert "140 samples" in r.stdout
    again = run("--study", "gastric", "import", "measurements", str(GASTRIC), db=db)
    assert "already imported" in again.stdout
    data = json.loads(run("info", "--json", db=db).stdout)
    assert (data["n_samples"], data["n_participants"], data["n_analytes"]) == (323, 306, 258)
    one = json.loads(run("--study", "sacurine", "info", "--json", db=db).stdout)
    assert (one["n_samples"], one["n_participants"], one["n_analytes"]) == (183, 183, 109)
    assert one["studies"][0]["participants_by_sex"] == {"F": 83, "M": 100}
    assert "study sacurine" in run("info", db=db).stdout
    out = tmp_path / "s.h5ad"
    assert "183 samples x 109 analytes" in run("--study", "sacurine", "export", "anndata",
                                                 str(out), db=db).stdout
    assert out.exists()


def test_bad_cell_exit_2_one_line_no_traceback(tmp_path):
    db = tmp_path / "h.db"
    run("init", db=db)
    f = tmp_path / "bad.csv"
    f.write_text("sample,Orn,Arg\nS1,1,2\nS2,3,4\nS3,4,abc\n")
    r = run("import", "measurements", str(f), db=db, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [f"error: {f}: row 4, column 'Arg': 'abc': is not a number "
                     "(expected a number, a missing-value code or <LOD/>ULOQ)"]
    assert "Traceback" not in r.stderr
    assert json.loads(run("info", "--json", db=db).stdout)["n_samples"] == 0


def test_not_initialised_exit_2(tmp_path):
    r = run("info", db=tmp_path / "x.db", check=False)
    assert r.returncode == 2 and "not initialised" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("cmd", [
    ["init"], ["info"], ["export"], ["import", "participants"], ["import", "measurements"],
    ["import", "responses"], ["assess", "list"], ["assess", "show"], ["assess", "score"],
    ["assess", "criteria"], ["assess", "psychometrics"], ["assess", "rescore"],
    ["assess", "questionnaire"], ["synth"], ["stats"], ["import"], ["assess"],
    ["model", "discriminate"], ["model", "severity"], ["model", "stratify"], ["model", "signature"],
    ["predict"], ["model"], ["power"], ["meta"], ["compare"]])
def test_every_command_has_help_with_example(cmd, tmp_path):
    r = run(*cmd, "--help", db=tmp_path / "x.db")
    assert "Example: hikisig" in r.stdout

"""Study config and `hikisig run`: validation, reproducibility, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hikisig.errors import HikisigError
from hikisig.pipeline.config import DEFAULT_CONFIG, load_config

FAST = """
[discriminate]
cv_repeats = 1
permutations = 20
n_estimators = 30
[severity]
cv_repeats = 1
permutations = 5
[stratify]
enabled = false
"""


def hs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hikisig", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ})


def test_default_config_is_valid(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(DEFAULT_CONFIG)
    config, sha = load_config(p)
    assert config.run.seed == 2021 and len(sha) == 64
    assert config.screening.prevalence == pytest.approx(0.0157)


def test_unknown_key_suggests_nearest(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[discriminate]\npermutation = 10\n[run]\nsed = 1\n")
    with pytest.raises(HikisigError) as exc:
        load_config(p)
    text = str(exc.value)
    assert "unknown key 'discriminate.permutation'; did you mean 'permutations'?" in text
    assert "unknown key 'run.sed'; did you mean 'seed'?" in text


def test_bad_value_and_bad_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[discriminate]\nmodel = 'svm'\n")
    with pytest.raises(HikisigError, match=r"discriminate\.model"):
        load_config(p)
    p.write_text("[discriminate\n")
    with pytest.raises(HikisigError, match="not valid TOML"):
        load_config(p)


def test_config_init_cli(tmp_path):
    r = hs("config", "init", str(tmp_path / "study.toml"))
    assert r.returncode == 0 and (tmp_path / "study.toml").read_text() == DEFAULT_CONFIG
    again = hs("config", "init", str(tmp_path / "study.toml"))
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    r = hs("synth", "--seed", "5", "--out", str(d / "files"), "--db", str(d / "s.db"))
    assert r.returncode == 0, r.stderr
    (d / "study.toml").write_text(f'[source]\ndb = "s.db"\ncriteria = "files/criteria.csv"\n{FAST}')
    return d


def test_run_twice_gives_byte_identical_tables(synthetic_store):
    d = synthetic_store
    for out in ("a", "b"):
        r = hs("run", "study.toml", "--out", out, "--quiet", cwd=d)
        assert r.returncode == 0, r.stderr
        assert "report:" in r.stdout
    a, b = d / "a", d / "b"
    csvs = sorted(p.name for p in (a / "tables").glob("*.csv"))
    assert "stats.csv" in csvs and "discriminate_oof_predictions.csv" in csvs
    for name in csvs:
        assert (a / "tables" / name).read_bytes() == (b / "tables" / name).read_bytes(), name
    prov = json.loads((a / "provenance.json").read_text())
    for key in ("config_sha256", "data_sha256", "versions", "seed", "engine", "start_time",
                "end_time"):
        assert key in prov
    assert (a / "models" / "discriminate" / "model.skops").exists()
    assert (a / "report.html").exists()

"""Study config and `hikisig run`: validation, reproducibility, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import Ran, hikisig
from hikisig.config import DEFAULT_CONFIG, load_config
from hikisig.errors import HikisigError

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


def hs(*args: str, cwd: Path | None = None) -> Ran:
    return hikisig(*args, cwd=cwd)


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


def test_run_reads_criteria_recorded_in_the_store(synthetic_store, tmp_path):
    """Without a criteria CSV, a store-based run takes the criteria recorded at visits (the
    clinic app's checklist), classified again with the current rules: the record of the
    analysed visit, or the participant's first record."""
    import shutil

    import pandas as pd
    from sqlalchemy import select

    from hikisig.assess.answers import read_answers_csv
    from hikisig.assess.criteria import apply_criteria
    from hikisig.cohort import schema
    from hikisig.cohort.store import Store
    from hikisig.pipeline.run import _criteria

    shutil.copy(synthetic_store / "s.db", tmp_path / "s.db")
    inputs = pd.read_csv(synthetic_store / "files" / "criteria.csv", dtype=str)
    expected = apply_criteria(read_answers_csv(synthetic_store / "files" / "criteria.csv"))
    store = Store(tmp_path / "s.db")
    with store.session() as s:
        visits = {code: (pid, v_id) for code, pid, v_id in s.execute(
            select(schema.Participant.code, schema.Participant.id, schema.Visit.id)
            .join(schema.Visit, schema.Visit.participant_id == schema.Participant.id)
            .where(schema.Visit.visit_index == 1))}
        first, third = inputs["id"].iloc[0], inputs["id"].iloc[2]
        yes = {"yes": True, "no": False}
        for row in inputs.itertuples(index=False):
            if row.id == third:
                continue  # recorded at a later visit only
            s.add(schema.CriteriaRecord(
                visit_id=visits[row.id][1], days_out_per_week=float(row.days_out_per_week),
                rarely_leaves_room=yes[row.rarely_leaves_room],
                months_isolated=float(row.months_isolated), impairment=yes[row.impairment],
                distress=yes[row.distress], status="stale", severity="stale", reasons=""))
        for code, visit_index in ((first, 2), (third, 3)):  # later visits: out at most once a week
            v = schema.Visit(participant_id=visits[code][0], visit_index=visit_index)
            s.add(v)
            s.flush()
            s.add(schema.CriteriaRecord(visit_id=v.id, days_out_per_week=0.0,
                                        rarely_leaves_room=True, months_isolated=48.0,
                                        impairment=True, distress=True, status="x", severity="x",
                                        reasons=""))
    study = store.study_names()[0]
    store.dispose()
    config, _ = load_config(synthetic_store / "study.toml")
    config.source.criteria = None
    obs = pd.DataFrame({"participant": inputs["id"], "visit": 1})
    got = _criteria(config, tmp_path, study, obs)
    assert got is not None and list(got["id"]) == list(inputs["id"].sort_values())
    assert got.set_index("id").loc[third, "visit"] == 3
    assert got.set_index("id").loc[third, "status"] == "hikikomori"
    assert (got.drop(columns="visit").query("id != @third").set_index("id").sort_index()
            .equals(expected.query("id != @third").set_index("id").sort_index()))
    assert "stale" not in set(got["status"])
    # a wide CSV source has no store records: only an explicit criteria file counts
    config.source.file = "x.csv"
    assert _criteria(config, tmp_path, study, obs) is None

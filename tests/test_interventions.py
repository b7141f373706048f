"""The intervention log: table and migration, reading and importing files, export, CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, inspect, select, text

from helpers import hikisig
from hikisig.cohort import schema
from hikisig.cohort.interventions import (
    KINDS,
    InterventionError,
    add_intervention,
    end_intervention,
    import_interventions,
    interventions_frame,
    read_interventions_file,
)
from hikisig.cohort.store import Store, StoreError
from hikisig.errors import InputError

KIND_LIST = ("psychotherapy, family_support, online_programme, social_robot, medication, day_programme, "
             "other")
GOOD = ("participant,kind,start,end,detail\n"
        "P1,psychotherapy,2024-01-10,2024-06-01,CBT weekly\n"
        "P2,social_robot,2024-02-01,,\n")


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def store(store: Store) -> Store:
    """conftest's empty store on SQLite and (with HIKISIG_TEST_PG_URL) PostgreSQL, with a
    study of two participants."""
    st = store
    with st.session() as s:
        study = st.study(s, "pilot", create=True)
        s.add_all([schema.Participant(study_id=study.id, code=c, attributes={}) for c in ("P1", "P2")])
    return st


def _count(store: Store, table: type[schema.Base]) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_kinds():
    assert KINDS == ("psychotherapy", "family_support", "online_programme", "social_robot", "medication",
                     "day_programme", "other")


def test_upgrade_from_0003_adds_the_table_and_keeps_data(tmp_path):
    from alembic import command

    from hikisig.cohort.store import _alembic_config

    store = Store(tmp_path / "old.db")
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0003")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO study (name, synthetic, created_at) VALUES ('kept', 0, '2026-01-01')"))
    assert "intervention" not in inspect(store.engine).get_table_names()
    with pytest.raises(StoreError, match="to upgrade"):
        store.require_ready()
    assert store.init() == Store.head_revision()  # 0004 and later
    assert "intervention" in inspect(store.engine).get_table_names()
    assert store.study_names() == ["kept"]


def test_read_file_types(tmp_path):
    df = read_interventions_file(_write(tmp_path, "iv.csv", GOOD))
    assert df.columns.tolist() == ["participant", "kind", "start", "end", "detail"]
    assert str(df["start"].dtype).startswith("datetime64") and str(df["end"].dtype).startswith("datetime64")
    assert df["start"].tolist() == [pd.Timestamp("2024-01-10"), pd.Timestamp("2024-02-01")]
    assert df["end"].iloc[0] == pd.Timestamp("2024-06-01") and pd.isna(df["end"].iloc[1])
    assert df["detail"].tolist() == ["CBT weekly", None]


def test_read_xlsx(tmp_path):
    path = tmp_path / "iv.xlsx"
    pd.DataFrame({"participant": ["P1"], "kind": ["medication"], "start": [dt.datetime(2024, 3, 1)],
                  "end": [None], "detail": ["sertraline"]}).to_excel(path, index=False)
    df = read_interventions_file(path)
    assert df.loc[0, "start"] == pd.Timestamp("2024-03-01") and pd.isna(df.loc[0, "end"])


@pytest.mark.parametrize(("body", "message"), [
    ("participant,start\nP1,2024-01-01\n",
     "iv.csv: row 1, column 'kind': required column is missing (expected columns participant, kind, start, "
     "end, detail; end and detail may be left out)"),
    ("participant,kind,start\n,other,2024-01-01\n",
     "iv.csv: row 2, column 'participant': empty participant code"),
    ("participant,kind,start\nP1,yoga,2024-01-01\n",
     f"iv.csv: row 2, column 'kind': 'yoga': unknown intervention kind (expected one of {KIND_LIST})"),
    ("participant,kind,start\nP1,other,01/02/2024\n",
     "iv.csv: row 2, column 'start': '01/02/2024': not a date (expected a date YYYY-MM-DD)"),
    ("participant,kind,start,end\nP1,other,2024-01-01,soon\n",
     "iv.csv: row 2, column 'end': 'soon': not a date (expected a date YYYY-MM-DD, or empty while ongoing)"),
    ("participant,kind,start,end\nP1,other,2024-02-01,2024-01-01\n",
     "iv.csv: row 2, column 'end': '2024-01-01': end is before the start 2024-02-01"),
    ("participant,kind,start,end,detail\n",
     "iv.csv: has no data rows (only a header): nothing to import"),
    ("participant,kind,start\nP1,other,2024-01-01\nP1,other,2024-01-01\n",
     "iv.csv: row 3, column 'participant': 'P1': the same intervention as row 2 (participant, kind and "
     "start)"),
])
def test_import_errors_are_exact_and_write_nothing(store, tmp_path, body, message):
    path = _write(tmp_path, "iv.csv", body)
    with pytest.raises(InputError) as err:
        import_interventions(store, path, "pilot")
    assert str(err.value).replace(str(tmp_path) + "/", "") == message
    assert _count(store, schema.Intervention) == 0 and _count(store, schema.ImportLog) == 0


def test_unknown_participant_names_row_and_code(store, tmp_path):
    path = _write(tmp_path, "iv.csv", GOOD + "P9,other,2024-01-01,,\n")
    with pytest.raises(InputError) as err:
        import_interventions(store, path, "pilot")
    assert str(err.value) == f"{path}: row 4, column 'participant': 'P9': no participant with this code in " \
                             "study 'pilot'"
    assert _count(store, schema.Intervention) == 0


def test_import_dry_run_reimport_and_audit(store, tmp_path):
    path = _write(tmp_path, "iv.csv", GOOD)
    dry = import_interventions(store, path, "pilot", dry_run=True)
    assert (dry.n_new, dry.n_written, dry.dry_run) == (2, 2, True)
    assert _count(store, schema.Intervention) == 0 and _count(store, schema.AuditEvent) == 0
    assert _count(store, schema.ImportLog) == 0

    res = import_interventions(store, path, "pilot")
    assert (res.n_rows, res.n_new, res.n_updated, res.n_unchanged, res.n_written) == (2, 2, 0, 0, 2)
    again = import_interventions(store, path, "pilot")
    assert (again.n_new, again.n_updated, again.n_unchanged, again.n_written) == (0, 0, 2, 0)
    assert _count(store, schema.Intervention) == 2
    # the ongoing one has ended since: the same file with an end updates the row
    ended = _write(tmp_path, "iv2.csv", GOOD.replace("2024-02-01,,", "2024-02-01,2024-05-05,weekly"))
    upd = import_interventions(store, ended, "pilot")
    assert (upd.n_new, upd.n_updated, upd.n_unchanged) == (0, 1, 1)
    assert "1 updated" in upd.summary()

    frame = interventions_frame(store, "pilot")
    assert frame.columns.tolist() == ["participant", "kind", "start", "end", "detail"]
    assert frame["participant"].tolist() == ["P1", "P2"]
    assert frame.loc[1, "end"] == pd.Timestamp("2024-05-05") and frame.loc[1, "detail"] == "weekly"
    with store.session() as s:
        logs = list(s.scalars(select(schema.ImportLog).where(schema.ImportLog.kind == "interventions")))
        events = list(s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.entity == "interventions")))
    assert len(logs) == 3 and [e.action for e in events] == ["import"] * 3
    assert '"new":2' in (events[0].after or "")


def test_frame_of_study_without_interventions(store):
    frame = interventions_frame(store, "pilot")
    assert frame.empty and frame.columns.tolist() == ["participant", "kind", "start", "end", "detail"]


def test_add_and_end(store):
    today = dt.date(2024, 6, 1)
    with store.session() as s:
        p1 = s.scalar(select(schema.Participant).where(schema.Participant.code == "P1"))
        assert p1 is not None
        rec = add_intervention(s, p1, "family_support", "2024-03-01", "parents' group", today=today)
        with pytest.raises(InterventionError, match="expected one of psychotherapy"):
            add_intervention(s, p1, "yoga", "2024-03-01", today=today)
        with pytest.raises(InterventionError, match="expected a date YYYY-MM-DD"):
            add_intervention(s, p1, "other", "March", today=today)
        with pytest.raises(InterventionError, match="in the future"):
            add_intervention(s, p1, "other", "2024-07-01", today=today)
        with pytest.raises(InterventionError, match="already recorded"):
            add_intervention(s, p1, "family_support", dt.date(2024, 3, 1), today=today)
        with pytest.raises(InterventionError, match="before the start 2024-03-01"):
            end_intervention(s, rec.id, "2024-02-01", today=today)
        end_intervention(s, rec.id, "2024-05-01", today=today)
        with pytest.raises(InterventionError, match="already ended on 2024-05-01"):
            end_intervention(s, rec.id, "2024-05-02", today=today)
    frame = interventions_frame(store, "pilot")
    assert frame.loc[0, "end"] == pd.Timestamp("2024-05-01")


LAB = "sample,participant,visit,Orn,Arg\nS1,P1,1,1.5,2.5\nS2,P2,1,1.7,2.1\n"


def test_cli_import_and_export(tmp_path):
    db = str(tmp_path / "c.db")
    lab = _write(tmp_path, "lab.csv", LAB)
    path = _write(tmp_path, "iv.csv", GOOD)
    assert hikisig("--db", db, "init").returncode == 0
    assert hikisig("--db", db, "--study", "pilot", "import", "measurements", str(lab)).returncode == 0
    dry = hikisig("--db", db, "import", "interventions", str(path), "--study", "pilot", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write 2 (2 new, 0 updated)" in dry.stdout and "dry run" in dry.stdout
    ran = hikisig("--db", db, "import", "interventions", str(path))  # the only study
    assert ran.returncode == 0, ran.stderr
    assert "wrote 2 (2 new, 0 updated)" in ran.stdout
    again = hikisig("--db", db, "import", "interventions", str(path), "--study", "pilot")
    assert "wrote 0 (0 new, 0 updated), 2 already stored unchanged" in again.stdout

    bad = _write(tmp_path, "bad.csv", "participant,kind,start\nP1,yoga,2024-01-01\n")
    err = hikisig("--db", db, "import", "interventions", str(bad))
    assert err.returncode == 2 and "unknown intervention kind" in err.stderr
    assert len([ln for ln in err.stderr.splitlines() if ln.strip()]) == 1
    nostudy = hikisig("--db", db, "import", "interventions", str(path), "--study", "nope")
    assert nostudy.returncode == 2 and "no study named 'nope'" in nostudy.stderr

    out = tmp_path / "w4m"
    exp = hikisig("--db", db, "export", "w4m", str(out))
    assert exp.returncode == 0, exp.stderr
    assert (out / "interventions.csv").read_text() == (
        "participant,kind,start,end,detail\nP1,psychotherapy,2024-01-10,2024-06-01,CBT weekly\n"
        "P2,social_robot,2024-02-01,,\n")
    exp = hikisig("--db", db, "export", "csv", str(tmp_path / "study.csv"))
    assert exp.returncode == 0 and (tmp_path / "study.interventions.csv").is_file()

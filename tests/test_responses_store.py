"""Questionnaire responses in the store: scored on import, conflicts, rescoring."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select, update

from hikisig.assess.answers import check_answers
from hikisig.assess.definition import load_instrument
from hikisig.cohort import schema
from hikisig.cohort.assessments import import_responses, load_assessments, rescore_assessments
from hikisig.errors import InputError


def answers(rows):
    inst = load_instrument("phq9")
    df = pd.DataFrame([{"id": pid, "visit": str(v), **{f"item{i}": str(a[i - 1]) for i in range(1, 10)}}
                       for pid, v, a in rows])
    return check_answers(df, inst), inst


def test_import_scores_and_loads(store):
    a, inst = answers([("P1", 1, [1] * 9), ("P1", 2, [0] * 8 + [2]), ("P2", 1, [3] * 9)])
    res = import_responses(store, a, inst, study="s", file="a.csv", sha256="x1")
    assert (res.n_written, res.n_participants_new) == (3, 2)
    got = load_assessments(store, "s", "phq9")
    assert got[["id", "visit", "total", "band"]].values.tolist() == [
        ["P1", 1, 9.0, "mild"], ["P1", 2, 2.0, "minimal"], ["P2", 1, 27.0, "severe"]]
    assert got["item9_alert"].tolist() == [True, True, True]
    with store.session() as s:
        row = s.scalars(select(schema.Assessment)).first()
        assert row.answers["item1"] == 1 and row.scores["total"] == 9 and row.version == "1.0"
    # the same file again changes nothing
    assert import_responses(store, a, inst, study="s", file="a.csv", sha256="x1").skipped


def test_conflict_needs_replace_and_writes_nothing(store):
    a, inst = answers([("P1", 1, [1] * 9)])
    import_responses(store, a, inst, study="s", sha256="a")
    b, _ = answers([("P1", 1, [2] * 9), ("P3", 1, [0] * 9)])
    before = store.row_counts()
    with pytest.raises(InputError, match=r"participant 'P1', visit 1.*--replace"):
        import_responses(store, b, inst, study="s", sha256="b")
    assert store.row_counts() == before
    res = import_responses(store, b, inst, study="s", sha256="b", replace=True)
    assert (res.n_replaced, res.n_written) == (1, 2)
    assert load_assessments(store, "s", "phq9")["total"].tolist() == [18.0, 0.0]


def test_rescore_after_definition_change(store):
    a, inst = answers([("P1", 1, [1] * 9)])
    import_responses(store, a, inst, study="s", sha256="a")
    with store.session() as s:  # as if stored under an older definition
        s.execute(update(schema.Assessment).values(scores={"total": 99}, definition_sha256="old"))
    assert rescore_assessments(store) == 1
    with store.session() as s:
        row = s.scalars(select(schema.Assessment)).one()
        assert row.scores["total"] == 9 and row.definition_sha256 != "old"
    assert rescore_assessments(store) == 0

"""FHIR R4 Questionnaire / QuestionnaireResponse export and import."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hikisig.assess.definition import Instrument, instrument_ids, load_instrument
from hikisig.assess.fhir import (
    QuestionnaireVersionWarning,
    questionnaire,
    questionnaire_responses,
    read_questionnaire_responses,
)
from hikisig.errors import InputError


def answers_frame(inst: Instrument, with_date: bool = True, seed: int = 0) -> pd.DataFrame:
    """Random answers with unanswered items, several visits and a missing visit."""
    rng = np.random.default_rng(seed)
    n_rows = 6
    values = rng.integers(inst.response_min, inst.response_max + 1,
                          size=(n_rows, inst.n_items)).astype(float)
    values[1, 0] = np.nan
    values[3, -1] = np.nan
    values[4, :] = np.nan  # nothing answered
    frame = pd.DataFrame({
        "id": ["P01", "P01", "P02", "P03", "P04", "P05/x y"],
        "visit": pd.array([1, 2, 1, None, 3, 1], dtype="Int64"),
    })
    if with_date:
        frame["date"] = pd.Series(["2024-01-05", "2024-07-01", None, "2024-02-29", "2023-12-31",
                                   "2024-03-03"], dtype=object)
    items = pd.DataFrame(values, columns=inst.item_columns)
    return pd.concat([frame, items], axis=1)


def phq9_bundle() -> tuple[Instrument, dict[str, Any]]:
    inst = load_instrument("phq9")
    return inst, questionnaire_responses(inst, answers_frame(inst))


def problems_of(exc: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize("instrument_id", instrument_ids())
def test_round_trip_every_instrument(instrument_id, tmp_path):
    inst = load_instrument(instrument_id)
    for with_date in (True, False):
        answers = answers_frame(inst, with_date=with_date)
        bundle = questionnaire_responses(inst, answers)
        back = read_questionnaire_responses(bundle, inst)
        pd.testing.assert_frame_equal(back, answers)
        # through a JSON file as well
        path = tmp_path / f"{instrument_id}_{with_date}.json"
        path.write_text(json.dumps(bundle))
        pd.testing.assert_frame_equal(read_questionnaire_responses(path, inst), answers)


def test_round_trip_is_raw_answers_and_skips_unanswered():
    inst, bundle = phq9_bundle()
    answers = answers_frame(inst)
    qrs = [e["resource"] for e in bundle["entry"]]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert len(qrs) == len(answers)
    first = qrs[0]
    assert first["questionnaire"] == "urn:hikisig:questionnaire:phq9|1.0"
    assert first["subject"]["identifier"] == {"system": "urn:hikisig:participant", "value": "P01"}
    assert first["authored"] == "2024-01-05"
    assert {"url": "urn:hikisig:visit", "valueInteger": 1} in first["extension"]
    assert [i["linkId"] for i in first["item"]] == inst.item_columns
    coding = first["item"][0]["answer"][0]["valueCoding"]
    assert coding["system"] == "urn:hikisig:questionnaire:phq9/answers"
    assert coding["code"] == str(int(answers.loc[0, "item1"]))
    assert coding["display"] == inst.response_labels[coding["code"]]
    assert [i["linkId"] for i in qrs[1]["item"]] == inst.item_columns[1:]
    assert "item" not in qrs[4]
    assert "extension" not in qrs[3] and "authored" not in qrs[2]


def test_single_questionnaire_response_is_accepted():
    inst, bundle = phq9_bundle()
    back = read_questionnaire_responses(bundle["entry"][0]["resource"], inst)
    assert back["id"].tolist() == ["P01"] and back["visit"].tolist() == [1]


def test_value_integer_answers_and_datetime_authored_are_read():
    inst, bundle = phq9_bundle()
    qr = bundle["entry"][0]["resource"]
    qr["item"][0]["answer"] = [{"valueInteger": 3}]
    qr["item"][1]["answer"] = [{"valueCoding": {"code": "2"}}]  # no system: accepted
    qr["authored"] = "2024-01-05T10:30:00+09:00"
    back = read_questionnaire_responses(bundle, inst)
    assert back.loc[0, "item1"] == 3.0 and back.loc[0, "item2"] == 2.0
    assert back.loc[0, "date"] == "2024-01-05"


def test_scores_become_extensions():
    inst = load_instrument("phq9")
    answers = answers_frame(inst)
    scores = pd.DataFrame({"id": ["P01", "P02"], "visit": pd.array([2, 1], dtype="Int64"),
                           "total": [12.0, np.nan], "screen_positive": [True, False]})
    bundle = questionnaire_responses(inst, answers, scores)
    ext = bundle["entry"][1]["resource"]["extension"]
    assert {"url": "urn:hikisig:score:total", "valueDecimal": 12.0} in ext
    assert {"url": "urn:hikisig:score:screen_positive", "valueBoolean": True} in ext
    ext2 = bundle["entry"][2]["resource"]["extension"]
    assert [e["url"] for e in ext2] == ["urn:hikisig:visit", "urn:hikisig:score:screen_positive"]
    # scores are derived data: reading ignores them
    pd.testing.assert_frame_equal(read_questionnaire_responses(bundle, inst), answers)


def test_export_rejects_answers_outside_the_range():
    inst = load_instrument("phq9")
    answers = answers_frame(inst)
    answers.loc[2, "item4"] = 7.0
    answers.loc[0, "item2"] = 1.5
    with pytest.raises(InputError) as exc:
        questionnaire_responses(inst, answers)
    assert {(p.column, p.value) for p in exc.value.problems} == {("item4", 7.0), ("item2", 1.5)}
    assert "participant 'P02', visit 1" in str(exc.value)


def test_wrong_instrument_is_an_error():
    inst, bundle = phq9_bundle()
    other = copy.deepcopy(bundle)
    other["entry"][2]["resource"]["questionnaire"] = "urn:hikisig:questionnaire:k6|1.0"
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(other, inst)
    (problem,) = exc.value.problems
    assert problem.file == "<FHIR bundle>" and problem.column == "questionnaire"
    assert "participant 'P02', visit 1" in problem.message and "another questionnaire" in problem.message


def test_bundle_read_with_another_instrument_is_an_error():
    """Reading PHQ-9 responses as another instrument: one problem per response, not per answer."""
    inst, bundle = phq9_bundle()
    other = inst.model_copy(update={"id": "phq8", "n_items": 8, "name": "PHQ-8"})
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(bundle, other)
    assert [p.column for p in exc.value.problems] == ["questionnaire"] * 6


def test_unknown_link_id_names_participant_visit_and_item():
    inst, bundle = phq9_bundle()
    bundle["entry"][1]["resource"]["item"][0]["linkId"] = "item10"
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(bundle, inst)
    (problem,) = exc.value.problems
    assert problem.column == "item10" and problem.value == "item10"
    assert "participant 'P01', visit 2 (entry 2)" in problem.message
    assert "unknown linkId" in problem.message


def test_out_of_range_answer_names_participant_visit_and_item():
    inst, bundle = phq9_bundle()
    bundle["entry"][2]["resource"]["item"][3]["answer"][0]["valueCoding"]["code"] = "4"
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(bundle, inst)
    (problem,) = exc.value.problems
    assert (problem.column, problem.value) == ("item4", 4)
    assert "participant 'P02', visit 1" in problem.message and "out of range" in problem.message


@pytest.mark.parametrize("answer", [
    {"valueCoding": {"system": "urn:hikisig:questionnaire:phq9/answers", "code": "1.5"}},
    {"valueCoding": {"code": "two"}},
    {"valueInteger": 1.5},
    {"valueInteger": True},
    {"valueDecimal": 2.0},
    {"valueString": "2"},
    {"valueInteger": 2, "valueCoding": {"code": "2"}},
    {"valueCoding": {"system": "http://loinc.org", "code": "2"}},
])
def test_non_integer_or_uncoded_answer_is_an_error(answer):
    inst, bundle = phq9_bundle()
    bundle["entry"][0]["resource"]["item"][4]["answer"] = [answer]
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(bundle, inst)
    (problem,) = exc.value.problems
    assert problem.column == "item5"
    assert "participant 'P01', visit 1" in problem.message


def test_two_answers_duplicate_link_id_and_missing_subject_are_errors():
    inst, bundle = phq9_bundle()
    qr0 = bundle["entry"][0]["resource"]
    qr0["item"][0]["answer"].append({"valueCoding": {"code": "0"}})
    qr0["item"][2]["linkId"] = "item2"
    del bundle["entry"][3]["resource"]["subject"]
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(bundle, inst)
    text = problems_of(exc)
    assert len(text) == 3
    assert any("item1" in t and "2 answers" in t for t in text)
    assert any("item2" in t and "linkId given twice" in t for t in text)
    assert any("participant (unknown), visit (none) (entry 4)" in t and "subject" in t for t in text)


def test_all_problems_are_collected_with_the_file_name(tmp_path):
    inst, bundle = phq9_bundle()
    bundle["entry"][0]["resource"]["item"][0]["linkId"] = "q1"
    bundle["entry"][5]["resource"]["item"][8]["answer"][0]["valueCoding"]["code"] = "-1"
    bundle["entry"][5]["resource"]["status"] = "draft"
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(InputError) as exc:
        read_questionnaire_responses(path, inst)
    assert len(exc.value.problems) == 3
    assert all(p.file == str(path) for p in exc.value.problems)
    assert "'P05/x y', visit 1" in str(exc.value)


def test_duplicate_visit_is_an_error():
    inst, bundle = phq9_bundle()
    bundle["entry"].append(copy.deepcopy(bundle["entry"][0]))
    with pytest.raises(InputError, match=r"second response .* \(first: entry 1\)"):
        read_questionnaire_responses(bundle, inst)


def test_entered_in_error_is_skipped():
    inst, bundle = phq9_bundle()
    bundle["entry"][0]["resource"]["status"] = "entered-in-error"
    back = read_questionnaire_responses(bundle, inst)
    pd.testing.assert_frame_equal(back, answers_frame(inst).iloc[1:].reset_index(drop=True))


def test_version_with_spaces_is_encoded_in_the_canonical():
    inst = load_instrument("phq9").model_copy(update={"version": "PHQ-9 (2001), 9|items"})
    bundle = questionnaire_responses(inst, answers_frame(inst))
    canonical = bundle["entry"][0]["resource"]["questionnaire"]
    assert canonical == "urn:hikisig:questionnaire:phq9|PHQ-9%20(2001),%209%7Citems"
    assert " " not in canonical
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(read_questionnaire_responses(bundle, inst), answers_frame(inst))


def test_other_version_warns_and_reads():
    inst, bundle = phq9_bundle()
    for entry in bundle["entry"]:
        entry["resource"]["questionnaire"] = "urn:hikisig:questionnaire:phq9|0.9"
    with pytest.warns(QuestionnaireVersionWarning, match="0.9"):
        back = read_questionnaire_responses(bundle, inst)
    pd.testing.assert_frame_equal(back, answers_frame(inst))
    bundle["entry"][0]["resource"]["questionnaire"] = "urn:hikisig:questionnaire:phq9"
    bundle["entry"] = bundle["entry"][:1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_questionnaire_responses(bundle, inst)  # no version given: no warning


def test_not_a_bundle_and_bad_json(tmp_path):
    inst = load_instrument("phq9")
    with pytest.raises(InputError, match="resourceType"):
        read_questionnaire_responses({"resourceType": "Patient"}, inst)
    with pytest.raises(InputError, match="only QuestionnaireResponse"):
        read_questionnaire_responses({"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": {"resourceType": "Patient"}}]}, inst)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_questionnaire_responses(bad, inst)
    with pytest.raises(InputError, match="file not found"):
        read_questionnaire_responses(tmp_path / "missing.json", inst)


def test_empty_bundle_gives_empty_frame():
    inst = load_instrument("phq9")
    back = read_questionnaire_responses({"resourceType": "Bundle", "type": "collection"}, inst)
    assert back.columns.tolist() == ["id", "visit", *inst.item_columns] and back.empty


@pytest.mark.parametrize("instrument_id", instrument_ids())
def test_questionnaire_structure(instrument_id):
    inst = load_instrument(instrument_id)
    q = questionnaire(inst)
    assert q["resourceType"] == "Questionnaire" and q["status"] == "active"
    assert q["id"] == inst.id and q["url"] == f"urn:hikisig:questionnaire:{inst.id}"
    assert q["version"] == inst.version and q["title"] == inst.name
    assert q["name"][0].isupper()
    assert [i["linkId"] for i in q["item"]] == inst.item_columns
    texts = {it.number: it.text for it in inst.items if it.text}
    for n, item in enumerate(q["item"], start=1):
        assert item["type"] == "choice" and item["required"] is False
        assert item["text"] == texts.get(n, f"Item {n}")
        codes = [o["valueCoding"]["code"] for o in item["answerOption"]]
        assert codes == [str(v) for v in range(inst.response_min, inst.response_max + 1)]
        assert all(o["valueCoding"]["system"] == q["url"] + "/answers" for o in item["answerOption"])
    json.dumps(q)  # JSON-ready


@pytest.mark.parametrize("instrument_id", instrument_ids())
def test_resources_parse_with_the_fhir_models(instrument_id):
    """Structural validation by an independent FHIR implementation (fhir.resources, R4B models)."""
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.questionnaire import Questionnaire

    inst = load_instrument(instrument_id)
    q = Questionnaire.model_validate(questionnaire(inst))
    assert q.url == f"urn:hikisig:questionnaire:{inst.id}" and len(q.item) == inst.n_items
    scores = pd.DataFrame({"id": ["P01"], "visit": pd.array([1], dtype="Int64"), "total": [3.0]})
    bundle = Bundle.model_validate(questionnaire_responses(inst, answers_frame(inst), scores))
    assert len(bundle.entry) == 6
    assert bundle.entry[0].resource.get_resource_type() == "QuestionnaireResponse"
    # and what the model writes back out is still read identically
    dumped = json.loads(bundle.model_dump_json())
    pd.testing.assert_frame_equal(read_questionnaire_responses(dumped, inst), answers_frame(inst))


def test_fhir_models_reject_a_broken_questionnaire():
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B.questionnaire import Questionnaire
    from pydantic import ValidationError

    q = questionnaire(load_instrument("phq9"))
    del q["item"][0]["linkId"]
    with pytest.raises(ValidationError):
        Questionnaire.model_validate(q)

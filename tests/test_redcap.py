"""Reading questionnaire answers from a REDCap export and data dictionary."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hikisig.assess.definition import load_instrument
from hikisig.assess.redcap import (
    EventVisitWarning,
    event_visit_numbers,
    parse_choices,
    read_redcap,
)
from hikisig.errors import InputError

DICT_HEADER = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
               "Choices, Calculations, OR Slider Labels", "Field Note",
               "Text Validation Type OR Show Slider Number", "Text Validation Min",
               "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
               "Required Field?", "Custom Alignment", "Question Number (surveys only)",
               "Matrix Group Name", "Matrix Ranking?", "Field Annotation"]
PHQ_CHOICES = ("0, Not at all | 1, Several days | 2, More than half the days | "
               "3, Nearly every day")
K6_CHOICES = "0, None of the time | 1, A little | 2, Some | 3, Most | 4, All of the time"


def dictionary_rows(phq_choices: str = PHQ_CHOICES) -> list[list[str]]:
    def row(name: str, form: str, ftype: str, label: str, choices: str = "",
            validation: str = "") -> list[str]:
        cells = [""] * len(DICT_HEADER)
        cells[0], cells[1], cells[3], cells[4], cells[5], cells[7] = (
            name, form, ftype, label, choices, validation)
        return cells

    rows = [row("record_id", "enrolment", "text", "Participant code"),
            row("age", "enrolment", "text", "Age", validation="integer"),
            row("phq9_date", "phq9", "text", "Date", validation="date_ymd"),
            row("phq9_intro", "phq9", "descriptive", "Over the last 2 weeks,\nhow often...")]
    rows += [row(f"phq9_{i}", "phq9", "radio", f"PHQ-9 item {i}", phq_choices)
             for i in range(1, 10)]
    rows += [row("phq9_total", "phq9", "calc", "Total", "sum([phq9_1],[phq9_2])")]
    rows += [row(f"k6_{i}", "k6", "radio", f"K6 item {i}", K6_CHOICES) for i in range(1, 7)]
    return rows


PHQ = [f"phq9_{i}" for i in range(1, 10)]
K6 = [f"k6_{i}" for i in range(1, 7)]
EXPORT_HEADER = ["record_id", "redcap_event_name", "age", "phq9_date", *PHQ, "phq9_total",
                 "phq9_complete", *K6, "k6_complete"]


def export_row(record: str, event: str, phq: list[str], k6: list[str] | None = None,
               date: str = "") -> list[str]:
    k6 = k6 or [""] * 6
    total = "" if "" in phq else str(sum(int(v) for v in phq))
    return [record, event, "30", date, *phq, total, "2", *k6, "2" if k6[0] else "0"]


def export_rows() -> list[list[str]]:
    return [
        export_row("101", "visit_1_arm_1", list("012301230"), list("012340"), date="2024-01-10"),
        export_row("101", "visit_2_arm_1", [*"1111111", "", "0"]),
        export_row("101", "visit_3_arm_1", [""] * 9, list("444444")),  # no PHQ-9 at this event
        export_row("102", "visit_1_arm_2", list("333333333")),
    ]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    dictionary = write_csv(tmp_path / "dictionary.csv", DICT_HEADER, dictionary_rows())
    export = write_csv(tmp_path / "export.csv", EXPORT_HEADER, export_rows())
    return export, dictionary


def test_reads_values_and_visits(project):
    export, dictionary = project
    phq9 = load_instrument("phq9")
    got = read_redcap(export, dictionary, phq9)
    assert got.columns.tolist() == ["id", "visit", *phq9.item_columns]
    assert got["id"].tolist() == ["101", "101", "102"]
    assert got["visit"].dtype == "Int64" and got["visit"].tolist() == [1, 2, 1]
    assert got.loc[0, phq9.item_columns].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert math.isnan(got.loc[1, "item8"]) and got.loc[1, "item9"] == 0
    assert got.loc[2, phq9.item_columns].tolist() == [3.0] * 9
    assert all(got[c].dtype == np.float64 for c in phq9.item_columns)


def test_same_export_other_form_and_date_field(project):
    export, dictionary = project
    inst = load_instrument("phq9")
    got = read_redcap(export, dictionary, inst, date_field="phq9_date")
    assert got["date"].tolist() == ["2024-01-10", None, None]
    # a form chosen by name, for an instrument whose id is not in the form name
    renamed = inst.model_copy(update={"id": "depression"})
    got2 = read_redcap(export, dictionary, renamed, form="phq9")
    pd.testing.assert_frame_equal(got2, read_redcap(export, dictionary, inst))


def test_k6_from_the_same_export(project):
    k6 = load_instrument("k6")
    assert (k6.n_items, k6.response_min, k6.response_max) == (6, 0, 4)
    export, dictionary = project
    got = read_redcap(export, dictionary, k6)
    assert got["visit"].tolist() == [1, 3]
    assert got.loc[1, k6.item_columns].tolist() == [4.0] * 6


def test_codes_1_to_4_for_phq9_is_an_error(tmp_path):
    shifted = "1, Not at all | 2, Several days | 3, More than half the days | 4, Nearly every day"
    dictionary = write_csv(tmp_path / "dict.csv", DICT_HEADER, dictionary_rows(shifted))
    export = write_csv(tmp_path / "export.csv", EXPORT_HEADER, export_rows())
    with pytest.raises(InputError) as exc:
        read_redcap(export, dictionary, load_instrument("phq9"))
    problems = exc.value.problems
    assert len(problems) == 9  # code 4 of each of the nine fields
    first = problems[0]
    assert first.file == str(dictionary) and first.column == "phq9_1" and first.value == "4"
    assert first.row == 7  # header, 3 fields, a two-line label, then phq9_1
    assert "does not shift codes" in first.message


def test_out_of_range_answer_names_row_and_column(project):
    export, dictionary = project
    rows = export_rows()
    rows[1][EXPORT_HEADER.index("phq9_5")] = "4"
    rows[3][EXPORT_HEADER.index("phq9_2")] = "Nearly every day"  # a labels export
    write_csv(export, EXPORT_HEADER, rows)
    with pytest.raises(InputError) as exc:
        read_redcap(export, dictionary, load_instrument("phq9"))
    p1, p2 = exc.value.problems
    assert (p1.file, p1.row, p1.column, p1.value) == (str(export), 3, "phq9_5", "4")
    assert "out of range" in p1.message and "0 to 3" in p1.message
    assert (p2.row, p2.column, p2.value) == (5, "phq9_2", "Nearly every day")
    assert "not an integer" in p2.message and "raw" in p2.message


def test_field_map(tmp_path):
    inst = load_instrument("phq9")
    # items stored in reverse order in oddly named fields of a form that does not say "phq9"
    header = ["participant", "mood_a", "mood_b", "mood_c", "mood_d", "mood_e", "mood_f",
              "mood_g", "mood_h", "mood_i"]
    cells = [[""] * len(DICT_HEADER) for _ in header]
    for c, name in zip(cells, header, strict=True):
        c[0], c[1], c[3], c[5] = name, "mood", "dropdown", PHQ_CHOICES
    cells[0][3], cells[0][5] = "text", ""
    d = write_csv(tmp_path / "mood_dict.csv", DICT_HEADER, cells)
    e = write_csv(tmp_path / "mood.csv", header, [["A", *"012301232"], ["B", *"3", *[""] * 8]])
    fmap = {name: 9 - k for k, name in enumerate(header[1:])}
    got = read_redcap(e, d, inst, field_map=fmap)
    assert got["id"].tolist() == ["A", "B"] and got["visit"].isna().all()
    assert got.loc[0, inst.item_columns].tolist() == [2, 3, 2, 1, 0, 3, 2, 1, 0]
    assert got.loc[1, "item9"] == 3 and got.loc[1, inst.item_columns[:8]].isna().all()
    # without a map the form is not found
    with pytest.raises(InputError, match="give the form name or a field map"):
        read_redcap(e, d, inst)


def test_bad_field_maps(project):
    export, dictionary = project
    inst = load_instrument("phq9")
    fmap = {f"phq9_{i}": i for i in range(1, 9)}
    with pytest.raises(InputError, match=r"no field for item\(s\) 9"):
        read_redcap(export, dictionary, inst, field_map=fmap)
    with pytest.raises(InputError) as exc:
        read_redcap(export, dictionary, inst,
                    field_map={**fmap, "phq9_9": 1, "nosuch": 9, "phq9_total": 10})
    text = str(exc.value)
    assert "item 1 twice" in text and "'nosuch'" in text and "type 'calc'" in text
    assert "expected an item number from 1 to 9" in text


def test_incomplete_form_asks_for_a_field_map(tmp_path):
    rows = [r for r in dictionary_rows() if r[0] != "phq9_9"]
    dictionary = write_csv(tmp_path / "dict.csv", DICT_HEADER, rows)
    export = write_csv(tmp_path / "export.csv", EXPORT_HEADER, export_rows())
    with pytest.raises(InputError, match=r"has 8 field.* has 9 items; give a field map"):
        read_redcap(export, dictionary, load_instrument("phq9"))


def test_ambiguous_form_is_an_error(tmp_path):
    rows = dictionary_rows()
    rows += [[f"phq9b_{i}", "phq9_followup", "radio", *r[3:]] for i, r in enumerate(rows[4:13], 1)]
    for r in rows[-9:]:
        r[2] = ""
    dictionary = write_csv(tmp_path / "dict.csv", DICT_HEADER, rows)
    # an exact name wins over a longer one
    export = write_csv(tmp_path / "export.csv", EXPORT_HEADER, export_rows())
    assert len(read_redcap(export, dictionary, load_instrument("phq9"))) == 3
    for r in rows:
        if r[1] == "phq9":
            r[1] = "phq9_baseline"
    write_csv(dictionary, DICT_HEADER, rows)
    with pytest.raises(InputError, match="several forms could hold phq9"):
        read_redcap(export, dictionary, load_instrument("phq9"))


def test_field_missing_from_export_and_duplicate_rows(project):
    export, dictionary = project
    header = [h for h in EXPORT_HEADER if h != "phq9_3"]
    rows = [[c for h, c in zip(EXPORT_HEADER, r, strict=True) if h != "phq9_3"]
            for r in export_rows()]
    write_csv(export, header, rows)
    with pytest.raises(InputError) as exc:
        read_redcap(export, dictionary, load_instrument("phq9"))
    (p,) = exc.value.problems
    assert (p.row, p.column) == (1, "phq9_3")
    rows = export_rows()
    write_csv(export, EXPORT_HEADER, [*rows, rows[0]])
    with pytest.raises(InputError) as exc:
        read_redcap(export, dictionary, load_instrument("phq9"))
    (p,) = exc.value.problems
    assert (p.row, p.column, p.value) == (6, "redcap_event_name", "visit_1_arm_1")
    assert "first in row 2" in p.message


def test_classic_project_with_repeat_instances(tmp_path, project):
    _, dictionary = project
    header = ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance", *PHQ]
    rows = [["7", "", "", *[""] * 9],
            ["7", "phq9", "1", *"000000000"],
            ["7", "phq9", "2", *"111111111"],
            ["8", "phq9", "1", *"222222222"]]
    export = write_csv(tmp_path / "classic.csv", header, rows)
    got = read_redcap(export, dictionary, load_instrument("phq9"))
    assert got["id"].tolist() == ["7", "7", "8"] and got["visit"].tolist() == [1, 2, 1]


def test_event_numbering():
    assert event_visit_numbers(["baseline_arm_1", "month_6_arm_1", "month_12_arm_1"]) == (
        {"baseline_arm_1": 1, "month_6_arm_1": 2, "month_12_arm_1": 3}, True)
    assert event_visit_numbers(["month_6_arm_1", "month_12_arm_1"]) == (
        {"month_6_arm_1": 6, "month_12_arm_1": 12}, False)
    assert event_visit_numbers(["Visit 2 (Arm 1: Cases)", "Visit 2 (Arm 2: Controls)"]) == (
        {"Visit 2 (Arm 1: Cases)": 2, "Visit 2 (Arm 2: Controls)": 2}, False)


def test_mixed_event_names_warn_and_event_visits_override(project):
    export, dictionary = project
    rows = export_rows()
    rows[0][1] = "baseline_arm_1"
    write_csv(export, EXPORT_HEADER, rows)
    inst = load_instrument("phq9")
    with pytest.warns(EventVisitWarning, match="event_visits"):
        got = read_redcap(export, dictionary, inst)
    # order of first appearance of every event: baseline, visit_2, visit_3, visit_1 (arm 2)
    assert got["visit"].tolist() == [1, 2, 4]
    mapping = {"baseline_arm_1": 1, "visit_2_arm_1": 2, "visit_3_arm_1": 3, "visit_1_arm_2": 1}
    got = read_redcap(export, dictionary, inst, event_visits=mapping)
    assert got["visit"].tolist() == [1, 2, 1]
    with pytest.raises(InputError, match="event without a visit number"):
        read_redcap(export, dictionary, inst, event_visits={"baseline_arm_1": 1})


def test_api_metadata_dictionary_and_bom(tmp_path, project):
    export, _ = project
    header = ["field_name", "form_name", "section_header", "field_type", "field_label",
              "select_choices_or_calculations", "field_note",
              "text_validation_type_or_show_slider_number"]
    rows = [r[:8] for r in dictionary_rows()]
    path = tmp_path / "metadata.csv"
    write_csv(path, header, rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    got = read_redcap(export, path, load_instrument("phq9"))
    assert len(got) == 3


def test_not_a_dictionary(tmp_path, project):
    export, _ = project
    d = write_csv(tmp_path / "d.csv", ["a", "b"], [["1", "2"]])
    with pytest.raises(InputError, match="not a REDCap data dictionary"):
        read_redcap(export, d, load_instrument("phq9"))
    with pytest.raises(InputError, match="file not found"):
        read_redcap(tmp_path / "none.csv", project[1], load_instrument("phq9"))


def test_parse_choices():
    assert parse_choices(" 0, No | 1 , Yes, often |") == [("0", "No"), ("1", "Yes, often")]


def test_cli_import_responses_redcap(tmp_path):
    import json

    from helpers import hikisig

    dd = write_csv(tmp_path / "dd.csv", DICT_HEADER, dictionary_rows())
    ex = write_csv(tmp_path / "export.csv", EXPORT_HEADER, export_rows())
    env = {"HIKISIG_DB": str(tmp_path / "h.db")}
    assert hikisig("init", env=env).returncode == 0
    r = hikisig("import", "responses", str(ex), "-i", "phq9", "--format", "redcap", "--dictionary",
                str(dd), env=env)
    assert r.returncode == 0, r.stderr
    assert "3 phq9 records stored" in r.stdout
    missing = hikisig("import", "responses", str(ex), "-i", "phq9", "--format", "redcap", env=env)
    assert missing.returncode == 2 and "--dictionary" in missing.stderr
    info = json.loads(hikisig("info", "--json", env=env).stdout)
    assert info["n_participants"] == 2

"""Tests of the analyte catalog: data content, name resolution, units, validation."""

from __future__ import annotations

import csv
import dataclasses
import doctest
import re
from pathlib import Path

import pandas as pd
import pytest

import hikisig.catalog
import hikisig.catalog.analytes
import hikisig.catalog.units
from hikisig.catalog import (
    CLASSES,
    COLUMNS,
    SUBCLASSES,
    Analyte,
    Catalog,
    UnknownUnitError,
    load_catalog,
    normalize_name,
    normalize_unit,
    resolve,
)


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def ids_of(cat: Catalog, class_: str) -> set[str]:
    return {a.id for a in cat.by_class(class_)}


# -- size and content ---------------------------------------------------------------------------


def test_catalog_has_at_least_150_analytes(cat: Catalog) -> None:
    assert len(cat) >= 150
    assert len(list(cat)) == len(cat) == len(set(cat.ids))


def test_all_required_classes_present(cat: Catalog) -> None:
    present = {a.class_ for a in cat}
    required = {
        "amino_acid",
        "biogenic_amine",
        "acylcarnitine",
        "cholesterol_ester",
        "lysophosphatidylcholine",
        "phosphatidylcholine",
        "sphingomyelin",
        "clinical_chemistry",
        "hexose",
        "organic_acid",
        "bile_acid",
    }
    assert required <= present
    assert present <= CLASSES


def test_amino_acids(cat: Catalog) -> None:
    aa = ids_of(cat, "amino_acid")
    proteinogenic = {
        "alanine", "arginine", "asparagine", "aspartic_acid", "cysteine", "glutamine",
        "glutamic_acid", "glycine", "histidine", "isoleucine", "leucine", "lysine",
        "methionine", "phenylalanine", "proline", "serine", "threonine", "tryptophan",
        "tyrosine", "valine",
    }  # fmt: skip
    assert proteinogenic <= aa
    assert {"ornithine", "arginine", "citrulline"} <= aa
    assert len(aa) >= 21
    assert {a.id for a in cat.by_class("amino_acid") if a.subclass == "proteinogenic"} == proteinogenic


def test_biogenic_amines(cat: Catalog) -> None:
    ba = ids_of(cat, "biogenic_amine")
    assert {"kynurenine", "sdma", "adma", "serotonin", "putrescine", "spermidine", "spermine",
            "histamine", "taurine", "sarcosine", "methionine_sulfoxide", "hydroxyproline",
            "alpha_aminoadipic_acid", "carnosine"} <= ba  # fmt: skip
    assert "creatinine" not in ba
    assert cat.get("creatinine").class_ == "clinical_chemistry"


def test_acylcarnitines_cover_c2_to_c18_with_modifications(cat: Catalog) -> None:
    ac = {a.id: a for a in cat.by_class("acylcarnitine")}
    expected = {
        "c0", "c2", "c3", "c4", "c5", "c5_1", "c5_oh", "c6", "c8", "c10", "c10_1", "c12", "c14",
        "c14_1", "c14_2", "c16", "c16_1", "c16_oh", "c18", "c18_1", "c18_2", "c18_1_oh", "c4_dc",
        # hydroxy
        "c3_oh", "c4_oh", "c14_1_oh", "c16_1_oh",
        # dicarboxylic
        "c3_dc", "c5_dc", "c6_dc", "c12_dc",
        # unsaturated
        "c3_1", "c4_1", "c10_2", "c12_1", "c16_2",
    }  # fmt: skip
    assert expected <= set(ac)
    chains = {a.chain_length for a in ac.values()}
    assert {0, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18} <= chains
    assert sum(a.hydroxy is True for a in ac.values()) >= 7
    assert sum(a.dicarboxylic is True for a in ac.values()) >= 5
    assert sum((a.double_bonds or 0) > 0 for a in ac.values()) >= 12


def test_acylcarnitine_subclass_matches_chain_length(cat: Catalog) -> None:
    for a in cat.by_class("acylcarnitine"):
        n = a.chain_length
        assert n is not None, a.id
        if n == 0:
            expected = "free"
        elif 2 <= n <= 5:
            expected = "short"
        elif 6 <= n <= 12:
            expected = "medium"
        elif 14 <= n <= 18:
            expected = "long"
        else:
            pytest.fail(f"{a.id}: unexpected chain length {n}")
        assert a.subclass == expected, a.id
    assert cat.get("c0").subclass == "free"
    assert cat.get("c5_dc").subclass == "short"
    assert cat.get("c12").subclass == "medium"
    assert cat.get("c14").subclass == "long"


def test_acylcarnitine_ids_agree_with_fields(cat: Catalog) -> None:
    pattern = re.compile(r"^c(\d+)(?:_(\d+))?(?:_(oh|dc|m_dc))?$")
    for a in cat.by_class("acylcarnitine"):
        m = pattern.match(a.id)
        assert m, a.id
        if m.group(3) != "m_dc":  # methylglutaryl: 6 acyl carbons although named C5
            assert int(m.group(1)) == a.chain_length, a.id
        assert int(m.group(2) or 0) == a.double_bonds, a.id
        assert a.hydroxy is (m.group(3) == "oh"), a.id
        assert a.dicarboxylic is (m.group(3) in {"dc", "m_dc"}), a.id


def test_hydroxy_dicarboxylic_only_for_acylcarnitines(cat: Catalog) -> None:
    for a in cat:
        if a.class_ != "acylcarnitine":
            assert a.hydroxy is None and a.dicarboxylic is None, a.id


def test_lipid_species(cat: Catalog) -> None:
    ce = ids_of(cat, "cholesterol_ester")
    assert len(ce) >= 8
    assert {"ce_14_0", "ce_16_0", "ce_16_1", "ce_18_0", "ce_18_1", "ce_18_2", "ce_18_3",
            "ce_20_3", "ce_20_4", "ce_20_5", "ce_22_6"} <= ce  # fmt: skip
    lpc = ids_of(cat, "lysophosphatidylcholine")
    assert {f"lysopc_a_c{s}" for s in
            ["16_0", "16_1", "17_0", "18_0", "18_1", "18_2", "20_3", "20_4", "24_0"]} <= lpc  # fmt: skip
    pc = ids_of(cat, "phosphatidylcholine")
    assert {"pc_aa_c32_0", "pc_aa_c34_1", "pc_aa_c34_2", "pc_aa_c36_2", "pc_aa_c36_4",
            "pc_aa_c38_4", "pc_aa_c38_6", "pc_ae_c34_1", "pc_ae_c36_2"} <= pc  # fmt: skip
    sm = ids_of(cat, "sphingomyelin")
    assert {"sm_c16_0", "sm_c16_1", "sm_c18_0", "sm_c18_1", "sm_c24_0", "sm_c24_1",
            "sm_oh_c22_1"} <= sm  # fmt: skip
    for a in cat:
        if a.class_ in {"cholesterol_ester", "lysophosphatidylcholine", "phosphatidylcholine",
                        "sphingomyelin", "acylcarnitine"}:  # fmt: skip
            assert a.chain_length is not None and a.double_bonds is not None, a.id
            assert a.default_unit == "umol/L", a.id
        elif a.class_ not in {"cholesterol_ester"}:
            assert a.chain_length is None and a.double_bonds is None, a.id
    assert cat.get("pc_aa_c34_1").chain_length == 34
    assert cat.get("ce_18_2").double_bonds == 2


def test_clinical_chemistry(cat: Catalog) -> None:
    cc = ids_of(cat, "clinical_chemistry")
    assert {"uric_acid", "total_bilirubin", "direct_bilirubin", "arginase", "hdl_c", "ldl_c",
            "total_cholesterol", "triglycerides", "creatinine", "bun", "crp", "albumin",
            "total_protein", "glucose", "hba1c", "ast", "alt", "ggt", "alp", "ldh", "ck",
            "sodium", "potassium", "chloride", "free_fatty_acids"} <= cc  # fmt: skip
    expected_units = {
        "uric_acid": "mg/dL", "total_bilirubin": "mg/dL", "creatinine": "mg/dL", "hdl_c": "mg/dL",
        "ldl_c": "mg/dL", "triglycerides": "mg/dL", "glucose": "mg/dL", "albumin": "g/dL",
        "crp": "mg/dL", "arginase": "U/L", "ast": "U/L", "alt": "U/L", "ggt": "U/L",
    }  # fmt: skip
    for analyte_id, unit in expected_units.items():
        assert cat.get(analyte_id).default_unit == unit, analyte_id
    for a in cat.by_class("clinical_chemistry"):
        assert a.subclass in SUBCLASSES["clinical_chemistry"], a.id


def test_vocabularies(cat: Catalog) -> None:
    for a in cat:
        assert a.class_ in CLASSES
        if a.subclass is not None:
            assert a.subclass in SUBCLASSES[a.class_], a.id
        assert a.matrix, a.id
        assert set(a.matrix) <= {"plasma", "serum", "whole_blood"}, a.id
        assert re.fullmatch(r"[a-z][a-z0-9_]*", a.id)


# -- codes --------------------------------------------------------------------------------------


def test_science_md_codes_exact(cat: Catalog) -> None:
    hmdb = {
        "ornithine": "HMDB0000214",
        "arginine": "HMDB0000517",
        "citrulline": "HMDB0000904",
        "c0": "HMDB0000062",
        "c16": "HMDB0000222",
        "c18": "HMDB0000848",
        "c18_1": "HMDB0005065",
    }
    loinc = {
        "ornithine": "20652-4",
        "arginine": "20637-5",
        "citrulline": "20640-9",
        "c0": "14286-9",
        "uric_acid": "3084-1",
        "total_bilirubin": "1975-2",
    }
    for analyte_id, code in hmdb.items():
        assert cat.get(analyte_id).hmdb == code, analyte_id
    for analyte_id, code in loinc.items():
        assert cat.get(analyte_id).loinc == code, analyte_id
    # docs/science.md: no LOINC found for C16, C18, C18:1; arginase must use a local code.
    for analyte_id in ("c16", "c18", "c18_1", "arginase"):
        assert cat.get(analyte_id).loinc is None, analyte_id


def test_code_formats_and_uniqueness(cat: Catalog) -> None:
    hmdb = [a.hmdb for a in cat if a.hmdb]
    loinc = [a.loinc for a in cat if a.loinc]
    assert all(re.fullmatch(r"HMDB\d{7}", h) for h in hmdb)
    assert all(re.fullmatch(r"\d{1,7}-\d", code) for code in loinc)
    assert len(hmdb) == len(set(hmdb)), "an HMDB id is used by two analytes"
    assert len(loinc) == len(set(loinc)), "a LOINC code is used by two analytes"


def _loinc_check_digit(code: str) -> int:
    """Mod-10 check digit of a LOINC code (the LOINC users' guide algorithm)."""
    digits = [int(d) for d in code.rjust(6, "0")]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return (10 - total % 10) % 10


def test_loinc_check_digits(cat: Catalog) -> None:
    for a in cat:
        if a.loinc:
            body, check = a.loinc.split("-")
            assert _loinc_check_digit(body) == int(check), (a.id, a.loinc)


def test_hmdb_agrees_with_sacurine_where_both_known(cat: Catalog) -> None:
    path = Path(__file__).parent / "data" / "sacurine" / "sacurine_variableMetadata.tsv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    checked = 0
    for row in rows:
        analyte = cat.resolve(row["variableMetadata"])
        code = row["hmdb"].strip()
        if analyte is None or not code or analyte.hmdb is None:
            continue
        assert analyte.hmdb == "HMDB" + code[4:].rjust(7, "0"), row["variableMetadata"]
        checked += 1
    assert checked >= 5


# -- name resolution ----------------------------------------------------------------------------

KIT_NAMES = [
    ("Orn", "ornithine"),
    ("Arg", "arginine"),
    ("Cit", "citrulline"),
    ("Trp", "tryptophan"),
    ("Kynurenine", "kynurenine"),
    ("SDMA", "sdma"),
    ("ADMA", "adma"),
    ("C0", "c0"),
    ("C2", "c2"),
    ("C16", "c16"),
    ("C18", "c18"),
    ("C18:1", "c18_1"),
    ("c18-1", "c18_1"),
    (" C18 : 1 ", "c18_1"),
    ("C18:2", "c18_2"),
    ("C5:1", "c5_1"),
    ("C14:1-OH", "c14_1_oh"),
    ("C14:1", "c14_1"),
    ("C16-OH", "c16_oh"),
    ("C5-DC (C6-OH)", "c5_dc"),
    ("C3-DC (C4-OH)", "c3_dc"),
    ("C5-OH (C3-DC-M)", "c5_oh"),
    ("C6 (C4:1-DC)", "c6"),
    ("C4-DC", "c4_dc"),
    ("C5-M-DC", "c5_m_dc"),
    ("lysoPC a C16:0", "lysopc_a_c16_0"),
    ("LPC 16:0", "lysopc_a_c16_0"),
    ("PC aa C34:1", "pc_aa_c34_1"),
    ("PC ae C34:1", "pc_ae_c34_1"),
    ("PC ae C36:2", "pc_ae_c36_2"),
    ("PC O-34:1", "pc_ae_c34_1"),
    ("SM C16:0", "sm_c16_0"),
    ("SM (OH) C22:1", "sm_oh_c22_1"),
    ("CE 18:2", "ce_18_2"),
    ("CE(16:0)", "ce_16_0"),
    ("H1", "hexose"),
    ("t4-OH-Pro", "hydroxyproline"),
    ("alpha-AAA", "alpha_aminoadipic_acid"),
    ("α-AAA", "alpha_aminoadipic_acid"),
    ("Met-SO", "methionine_sulfoxide"),
    ("Uric acid", "uric_acid"),
    ("Urate", "uric_acid"),
    ("UA", "uric_acid"),
    ("T-Bil", "total_bilirubin"),
    ("Total bilirubin", "total_bilirubin"),
    ("TG", "triglycerides"),
    ("HDL cholesterol", "hdl_c"),
    ("HDL-C", "hdl_c"),
    ("LDL-C", "ldl_c"),
    ("γ-GTP", "ggt"),
    ("GOT", "ast"),
    ("Arginase", "arginase"),
    ("Creatinine", "creatinine"),
    ("Palmitoylcarnitine", "c16"),
    ("Oleoylcarnitine", "c18_1"),
    ("L-Ornithine", "ornithine"),
    ("Ornithine", "ornithine"),
    ("L.Ornithine", "ornithine"),
    ("ORNITHINE", "ornithine"),
    ("l-ornithine", "ornithine"),
    ("ornithine", "ornithine"),
    ("X2.Aminoadipic.acid", "alpha_aminoadipic_acid"),
    ("Aspartic.acid", "aspartic_acid"),
    ("L-Carnitine", "c0"),
]


@pytest.mark.parametrize(("name", "expected"), KIT_NAMES)
def test_resolve_kit_and_common_names(cat: Catalog, name: str, expected: str) -> None:
    analyte = cat.resolve(name)
    assert analyte is not None, name
    assert analyte.id == expected


def test_distinct_species_do_not_merge(cat: Catalog) -> None:
    pairs = [
        ("PC aa C34:1", "PC ae C34:1"),
        ("C14:1-OH", "C14:1"),
        ("C5-DC", "C5"),
        ("C16:1", "C16"),
        ("C16-OH", "C16"),
        ("C3-DC (C4-OH)", "C4-OH (C3-DC)"),
        ("SM C16:1", "SM (OH) C16:1"),
        ("lysoPC a C16:0", "SM C16:0"),
        ("Cys", "Cystine"),
        ("Glu", "Gln"),
        ("Glucose", "Glu"),
        ("CA", "Calcium"),
        ("DOPA", "Dopamine"),
    ]
    for a, b in pairs:
        ra, rb = cat.resolve(a), cat.resolve(b)
        assert ra is not None and rb is not None, (a, b)
        assert ra.id != rb.id, (a, b)


@pytest.mark.parametrize(
    "name", ["not an analyte", "", "   ", "C99", "X.gamma.Glu.Leu.Ile", "PC aa C99:9", "NA"]
)
def test_unknown_names_resolve_to_none(cat: Catalog, name: str) -> None:
    assert cat.resolve(name) is None


def test_resolve_non_string_is_none(cat: Catalog) -> None:
    assert cat.resolve(None) is None  # type: ignore[arg-type]
    assert cat.resolve(float("nan")) is None  # type: ignore[arg-type]


def test_module_level_resolve() -> None:
    analyte = resolve("L-ornithine")
    assert analyte is not None and analyte.id == "ornithine"
    assert resolve("nothing of the sort") is None


def test_no_name_shared_by_two_analytes(cat: Catalog) -> None:
    owner: dict[str, str] = {}
    for a in cat:
        for name in a.names:
            key = normalize_name(name)
            assert key, (a.id, name)
            assert owner.setdefault(key, a.id) == a.id, (
                f"{name!r} of {a.id} and a name of {owner[key]} share {key!r}"
            )
    # raw synonyms are not repeated across analytes either
    seen: dict[str, str] = {}
    for a in cat:
        for s in a.synonyms:
            assert seen.setdefault(s.casefold(), a.id) == a.id, s


def test_every_name_resolves_to_its_analyte(cat: Catalog) -> None:
    for a in cat:
        for name in a.names:
            hit = cat.resolve(name)
            assert hit is not None and hit.id == a.id, (a.id, name)


def test_required_kit_synonyms_present(cat: Catalog) -> None:
    assert {"Orn", "L-Ornithine", "Ornithine"} <= set(cat.get("ornithine").synonyms)
    assert "Palmitoylcarnitine" in cat.get("c16").synonyms
    assert {"Uric acid", "Urate"} <= set(cat.get("uric_acid").synonyms)
    assert {"T-Bil", "Total bilirubin"} <= set(cat.get("total_bilirubin").synonyms)
    assert "TG" in cat.get("triglycerides").synonyms
    assert {"HDL cholesterol", "HDL-C"} <= set(cat.get("hdl_c").synonyms)
    assert "C14:1-OH" in cat.get("c14_1_oh").synonyms
    assert "C5-DC (C6-OH)" in cat.get("c5_dc").synonyms
    assert "SM (OH) C22:1" in cat.get("sm_oh_c22_1").synonyms


# -- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("lysoPC a C16:0", "lysopcac160"),
        ("C18:1", "c181"),
        (" C18 : 1 ", "c181"),
        ("c18-1", "c181"),
        ("C14:1-OH", "c141oh"),
        ("PC aa C34:1", "pcaac341"),
        ("PC ae C34:1", "pcaec341"),
        ("L-Ornithine", "ornithine"),
        ("L.Ornithine", "ornithine"),
        ("α-AAA", "alphaaaa"),
        ("β-Alanine", "betaalanine"),
        ("γ-GTP", "gammagtp"),
        ("µmol", "umol"),
        ("Ｃ１６", "c16"),  # full-width characters (NFKC)
        ("LDL-C", "ldlc"),  # no stereo prefix here
        ("Lysine", "lysine"),
    ],
)
def test_normalize_name(name: str, key: str) -> None:
    assert normalize_name(name) == key


# -- units --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("µmol/l", "umol/L"),
        ("μmol/L", "umol/L"),
        ("umol/L", "umol/L"),
        ("umol/l", "umol/L"),
        ("uM", "umol/L"),
        ("µM", "umol/L"),
        ("μM", "umol/L"),
        ("µmol / L", "umol/L"),
        ("nmol/mL", "umol/L"),
        ("mM", "mmol/L"),
        ("mmol/l", "mmol/L"),
        ("nM", "nmol/L"),
        ("nmol/l", "nmol/L"),
        ("mg/dl", "mg/dL"),
        ("MG/DL", "mg/dL"),
        (" mg/dL ", "mg/dL"),
        ("mg/100 mL", "mg/dL"),
        ("g/dl", "g/dL"),
        ("mg/l", "mg/L"),
        ("IU/L", "U/L"),
        ("U/l", "U/L"),
        ("ng/ml", "ng/mL"),
        ("mcg/dL", "ug/dL"),
        ("mEq/l", "mEq/L"),
        ("%", "%"),
        ("mL/min/1.73 m²", "mL/min/1.73m2"),
    ],
)
def test_normalize_unit(raw: str, canonical: str) -> None:
    assert normalize_unit(raw) == canonical


def test_normalize_unit_unknown_is_stripped_only() -> None:
    assert normalize_unit("  furlongs/fortnight ") == "furlongs/fortnight"
    assert normalize_unit("mg/g Cr") == "mg/g Cr"


def test_units_are_canonical_and_include_default(cat: Catalog) -> None:
    for a in cat:
        assert normalize_unit(a.default_unit) == a.default_unit, a.id
        assert a.units[a.default_unit] == 1.0, a.id
        assert next(iter(a.units)) == a.default_unit, a.id
        for unit, factor in a.units.items():
            assert normalize_unit(unit) == unit, (a.id, unit)
            assert factor > 0, (a.id, unit)


def test_uric_acid_conversion(cat: Catalog) -> None:
    # docs/science.md: mg/dL x 59.48 = umol/L
    assert 297.4 * cat.factor("uric_acid", "umol/L") == pytest.approx(5.0, rel=1e-4)
    assert 0.2974 * cat.factor("uric_acid", "mmol/L") == pytest.approx(5.0, rel=1e-4)
    assert 297.4 * cat.factor("uric_acid", "µmol/l") == pytest.approx(5.0, rel=1e-4)
    assert cat.factor("uric_acid", "mg/dL") == 1.0


def test_bilirubin_conversion(cat: Catalog) -> None:
    # docs/science.md: mg/dL x 17.1 = umol/L
    assert 17.1 * cat.factor("total_bilirubin", "umol/L") == pytest.approx(1.0, rel=1e-4)
    assert 17.1 * cat.factor("direct_bilirubin", "uM") == pytest.approx(1.0, rel=1e-4)


def test_other_clinical_conversions(cat: Catalog) -> None:
    assert 88.4 * cat.factor("creatinine", "umol/L") == pytest.approx(1.0, rel=1e-4)
    assert 5.5 * cat.factor("glucose", "mmol/L") == pytest.approx(99.088, rel=1e-4)
    assert 5.0 * cat.factor("total_cholesterol", "mmol/L") == pytest.approx(193.35, rel=1e-4)
    assert 1.0 * cat.factor("triglycerides", "mmol/L") == pytest.approx(88.57, rel=1e-4)
    assert 45.0 * cat.factor("albumin", "g/L") == pytest.approx(4.5)
    assert 3.0 * cat.factor("crp", "mg/L") == pytest.approx(0.3)
    assert cat.factor("ast", "IU/L") == 1.0
    assert 1.0 * cat.factor("ast", "ukat/L") == pytest.approx(60.0)


def test_metabolite_molar_factors(cat: Catalog) -> None:
    assert cat.factor("ornithine", "nmol/mL") == 1.0
    assert cat.factor("ornithine", "nmol/L") == pytest.approx(0.001)
    assert cat.factor("c16", "mmol/L") == pytest.approx(1000.0)
    # 1 mg/dL arginine (174.20 g/mol) = 57.405 umol/L
    assert cat.factor("arginine", "mg/dL") == pytest.approx(10000 / 174.20, rel=1e-4)


def test_unknown_unit_error(cat: Catalog) -> None:
    with pytest.raises(UnknownUnitError) as info:
        cat.factor("uric_acid", "mg/g")
    err = info.value
    assert isinstance(err, ValueError)
    message = str(err)
    assert "uric_acid" in message
    assert "mg/g" in message
    for unit in ("mg/dL", "umol/L", "mmol/L"):
        assert unit in message
    assert err.analyte_id == "uric_acid" and err.unit == "mg/g"
    assert "mg/dL" in err.accepted
    with pytest.raises(UnknownUnitError, match="arginase"):
        cat.get("arginase").factor("umol/L")
    with pytest.raises(ValueError, match="ng/mL"):
        cat.factor("c16", "ng/mL")


# -- API ----------------------------------------------------------------------------------------


def test_get_and_contains(cat: Catalog) -> None:
    assert "ornithine" in cat
    assert "Orn" not in cat  # ids only
    assert cat.get("ornithine").display_name == "L-Ornithine"
    with pytest.raises(KeyError, match="no_such_analyte"):
        cat.get("no_such_analyte")
    with pytest.raises(KeyError):
        cat.factor("no_such_analyte", "umol/L")


def test_analyte_is_frozen_and_hashable(cat: Catalog) -> None:
    orn = cat.get("ornithine")
    assert isinstance(orn, Analyte)
    with pytest.raises(dataclasses.FrozenInstanceError):
        orn.id = "x"  # type: ignore[misc]
    assert len({orn, cat.get("ornithine"), cat.get("arginine")}) == 2
    assert [f.name for f in dataclasses.fields(Analyte)] == [
        "id", "display_name", "synonyms", "exact_synonyms", "class_", "subclass", "chain_length",
        "double_bonds", "hydroxy", "dicarboxylic", "hmdb", "kegg", "loinc", "default_unit", "units",
        "matrix", "notes",
    ]  # fmt: skip
    assert isinstance(orn.synonyms, tuple) and isinstance(orn.matrix, tuple)


def test_by_class(cat: Catalog) -> None:
    acs = cat.by_class("acylcarnitine")
    assert acs and all(a.class_ == "acylcarnitine" for a in acs)
    assert acs == [a for a in cat if a.class_ == "acylcarnitine"]  # file order
    with pytest.raises(ValueError, match="acylcarnitines"):
        cat.by_class("acylcarnitines")


def test_default_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_to_frame(cat: Catalog) -> None:
    df = cat.to_frame()
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == list(cat.ids)
    assert df.index.name == "id"
    assert list(df.columns) == [c for c in COLUMNS if c != "id"]
    assert df.loc["ornithine", "class"] == "amino_acid"
    assert df.loc["ornithine", "synonyms"].split("|")[0] == "Orn"
    assert df.loc["uric_acid", "units"].startswith("mg/dL=1|")
    assert df.loc["c16", "chain_length"] == 16
    assert bool(df.loc["c16_oh", "hydroxy"]) is True
    assert pd.isna(df.loc["ornithine", "chain_length"])
    assert str(df["chain_length"].dtype) == "Int64"
    assert str(df["hydroxy"].dtype) == "boolean"


def test_to_frame_roundtrips_through_load(cat: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "copy.csv"
    df = cat.to_frame().reset_index()
    df["hydroxy"] = df["hydroxy"].map({True: "true", False: "false"}).fillna("")
    df["dicarboxylic"] = df["dicarboxylic"].map({True: "true", False: "false"}).fillna("")
    df.to_csv(path, index=False)
    again = load_catalog(path)
    assert again is not cat
    assert [a for a in again] == [a for a in cat]


def test_docstring_examples() -> None:
    for module in (hikisig.catalog, hikisig.catalog.analytes, hikisig.catalog.units):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


# -- validation of bad files --------------------------------------------------------------------

HEADER = ",".join(COLUMNS)
ORN = (
    "ornithine,L-Ornithine,Orn|Ornithine,,amino_acid,non_proteinogenic,,,,,"
    "HMDB0000214,C00077,20652-4,umol/L,umol/L=1|nmol/L=0.001,plasma|serum,"
)
ARG = "arginine,L-Arginine,Arg,,amino_acid,proteinogenic,,,,,HMDB0000517,,20637-5,umol/L,umol/L=1,plasma,"
C16 = (
    "c16,Palmitoylcarnitine (C16),C16,,acylcarnitine,long,16,0,false,false,"
    "HMDB0000222,,,umol/L,umol/L=1,plasma,"
)


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "analytes.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_small_valid_catalog(tmp_path: Path) -> None:
    cat = load_catalog(write(tmp_path, ORN, ARG, C16))
    assert len(cat) == 3
    assert cat.resolve("orn").id == "ornithine"  # type: ignore[union-attr]
    assert cat.resolve("Cit") is None
    assert cat.get("c16").factor("uM") == 1.0


def test_duplicate_id_reports_line(tmp_path: Path) -> None:
    dup = ARG.replace("Arg,", "Arginine,")
    path = write(tmp_path, ARG, ORN, dup)
    with pytest.raises(ValueError, match=r"line 4.*'id'.*'arginine'.*duplicate.*line 2"):
        load_catalog(path)


def test_bad_hmdb_reports_line_column_value(tmp_path: Path) -> None:
    path = write(tmp_path, ORN, ARG.replace("HMDB0000517", "HMDB00517"))
    with pytest.raises(ValueError, match=r"line 3, column 'hmdb': 'HMDB00517'"):
        load_catalog(path)


def test_bad_loinc(tmp_path: Path) -> None:
    path = write(tmp_path, ORN.replace("20652-4", "20652"))
    with pytest.raises(ValueError, match=r"line 2, column 'loinc': '20652'"):
        load_catalog(path)


def test_colliding_synonyms_name_both_analytes(tmp_path: Path) -> None:
    bad = ARG.replace("Arg,", "Arg|L-ornithine,")
    path = write(tmp_path, ORN, bad)
    with pytest.raises(ValueError) as info:
        load_catalog(path)
    message = str(info.value)
    assert "'ornithine' (line 2)" in message
    assert "'arginine' (line 3)" in message
    assert "L-ornithine" in message


def test_collision_through_punctuation(tmp_path: Path) -> None:
    c18 = (
        "c18_1,Oleoylcarnitine (C18:1),C18:1,,acylcarnitine,long,18,1,false,false,,,,umol/L,umol/L=1,plasma,"
    )
    other = "other,Other,C18-1,,acylcarnitine,long,18,1,false,false,,,,umol/L,umol/L=1,plasma,"
    with pytest.raises(ValueError, match="c181"):
        load_catalog(write(tmp_path, c18, other))


def test_non_integer_chain_length(tmp_path: Path) -> None:
    path = write(tmp_path, C16.replace(",16,0,", ",16.5,0,"))
    with pytest.raises(ValueError, match=r"line 2, column 'chain_length': '16.5'"):
        load_catalog(path)
    path = write(tmp_path, C16.replace(",16,0,", ",16,one,"))
    with pytest.raises(ValueError, match=r"line 2, column 'double_bonds': 'one'"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("units", "fragment"),
    [
        ("umol/L=1|nmol/L", "malformed"),
        ("umol/L=1|nmol/L=abc", "not a number"),
        ("umol/L=1|nmol/L=-1", "positive"),
        ("umol/L=1|µmol/l=1", "twice"),
        ("nmol/L=1", "default unit"),
        ("umol/L=2", "default unit"),
    ],
)
def test_malformed_units(tmp_path: Path, units: str, fragment: str) -> None:
    path = write(tmp_path, ARG.replace("umol/L,umol/L=1,", f"umol/L,{units},"))
    with pytest.raises(ValueError, match=rf"line 2, column 'units'.*{fragment}"):
        load_catalog(path)


@pytest.mark.parametrize("column", ["id", "display_name", "class", "default_unit"])
def test_missing_required_field(tmp_path: Path, column: str) -> None:
    fields = next(csv.reader([ARG]))
    fields[COLUMNS.index(column)] = ""
    row = ",".join(f'"{f}"' if "," in f else f for f in fields)
    with pytest.raises(ValueError, match=rf"line 2, column '{column}'.*required"):
        load_catalog(write(tmp_path, row))


def test_acylcarnitine_subclass_checked(tmp_path: Path) -> None:
    path = write(tmp_path, C16.replace(",long,", ",medium,"))
    with pytest.raises(ValueError, match=r"line 2, column 'subclass'.*'long'"):
        load_catalog(path)


def test_flags_only_for_acylcarnitines(tmp_path: Path) -> None:
    bad = ARG.replace("proteinogenic,,,,,", "proteinogenic,,,true,,")
    with pytest.raises(ValueError, match=r"column 'hydroxy'.*only used for acylcarnitines"):
        load_catalog(write(tmp_path, bad))
    missing = C16.replace(",false,false,", ",,false,")
    with pytest.raises(ValueError, match=r"column 'hydroxy'.*required for acylcarnitines"):
        load_catalog(write(tmp_path, missing))


def test_unknown_class_subclass_matrix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"column 'class': 'amino acid'"):
        load_catalog(write(tmp_path, ARG.replace("amino_acid", "amino acid")))
    with pytest.raises(ValueError, match=r"column 'subclass': 'essential'"):
        load_catalog(write(tmp_path, ARG.replace("proteinogenic", "essential")))
    with pytest.raises(ValueError, match=r"column 'matrix'"):
        load_catalog(write(tmp_path, ARG.replace(",plasma,", ",urine,")))


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "analytes.csv"
    path.write_text(HEADER.replace("hmdb", "HMDB") + "\n" + ORN + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1.*missing \['hmdb'\]"):
        load_catalog(path)


def test_too_many_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 2"):
        load_catalog(write(tmp_path, ORN + ",extra"))

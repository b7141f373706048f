"""Name matching of the analyte catalog: case-sensitive synonyms, stereo descriptors,
systematic acylcarnitine names, HMDB and KEGG ids, kit short names and match kinds."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from hikisig.catalog import COLUMNS, MATCH_KINDS, Catalog, load_catalog, normalize_name, resolve


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def hit(cat: Catalog, name: str) -> str | None:
    analyte = cat.resolve(name)
    return analyte.id if analyte is not None else None


# -- case-sensitive synonyms ---------------------------------------------------------------------


def test_glu_upper_case_is_glucose_kit_glu_is_glutamate(cat: Catalog) -> None:
    assert hit(cat, "GLU") == "glucose"
    assert hit(cat, " GLU ") == "glucose"  # surrounding spaces do not matter
    assert hit(cat, "Glu") == "glutamic_acid"
    assert hit(cat, "glu") == "glutamic_acid"  # no exact synonym: the normalised key decides
    assert hit(cat, "Glucose") == "glucose"
    assert hit(cat, "Glutamate") == "glutamic_acid"
    assert cat.match("GLU") == (cat.get("glucose"), "exact")
    assert cat.match("Glu") == (cat.get("glutamic_acid"), "synonym")


def test_other_case_sensitive_synonyms(cat: Catalog) -> None:
    assert hit(cat, "Ca") == "calcium"
    assert hit(cat, "CA") == "cholic_acid"
    assert hit(cat, "Na") == "sodium"
    assert hit(cat, "NA") is None  # the usual missing-value marker stays unmatched
    assert hit(cat, "na") is None
    assert hit(cat, "K") == "potassium"
    assert hit(cat, "k") is None
    assert hit(cat, "Cl") == "chloride"


def test_exact_synonyms_are_documented_in_notes(cat: Catalog) -> None:
    with_exact = {a.id: a for a in cat if a.exact_synonyms}
    assert set(with_exact) == {"glucose", "calcium", "sodium", "potassium", "chloride"}
    assert with_exact["glucose"].exact_synonyms == ("GLU",)
    for a in with_exact.values():
        assert a.notes and "case-sensitive synonym" in a.notes.casefold(), a.id
        for synonym in a.exact_synonyms:
            assert cat.match(synonym) == (a, "exact"), synonym
    # the analyte on the other side of each case collision says so too
    for other in ("glutamic_acid", "cholic_acid"):
        notes = cat.get(other).notes
        assert notes is not None and "case-sensitive synonym" in notes, other


def test_exact_synonym_wins_over_normalised_key(cat: Catalog) -> None:
    # GLU normalises to glu, a key of glutamic acid: the exact synonym is checked first
    assert normalize_name("GLU") == normalize_name("Glu")
    assert cat.resolve("GLU") != cat.resolve("Glu")


# -- stereo descriptors and systematic names ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("L-Ornithine", "ornithine"),
        ("hexanoyl-L-carnitine", "hexanoylcarnitine"),
        ("O-acetyl-L-carnitine", "oacetylcarnitine"),
        ("Decanoyl-DL-carnitine", "decanoylcarnitine"),
        ("(S)-2,5-Diaminopentanoic acid", "25diaminopentanoicacid"),
        ("(2S)-2-aminopropanoic acid", "2aminopropanoicacid"),
        ("(R)-3-Hydroxybutyrate", "3hydroxybutyrate"),
        ("(+)-Lactate", "lactate"),
        ("L-(+)-Lactic acid", "lacticacid"),
        ("D(+)-Glucose", "glucose"),
        ("D,L-Lactate", "lactate"),
        ("beta-D-Glucose", "betaglucose"),
        ("Carnitine (R)", "carnitine"),
        # not stereo descriptors
        ("D-Bil", "dbil"),  # direct bilirubin: D before a short abbreviation stays
        ("LDL-C", "ldlc"),
        ("Glucose (mg/dL)", "glucosemgdl"),
        ("25-OH-D", "25ohd"),
        ("SM (OH) C14:1", "smohc141"),
        ("PC O-34:1", "pco341"),
    ],
)
def test_normalize_name_drops_stereo_descriptors(name: str, key: str) -> None:
    assert normalize_name(name) == key


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hexanoyl-L-carnitine", "c6"),
        ("Hexanoyl-L-carnitine", "c6"),
        ("O-hexanoyl-L-carnitine", "c6"),
        ("O-Hexanoylcarnitine", "c6"),
        ("decanoyl-L-carnitine", "c10"),
        ("O-decanoyl-L-carnitine", "c10"),
        ("O-acetyl-L-carnitine", "c2"),
        ("Acetyl-L-carnitine", "c2"),
        ("L-Acetylcarnitine", "c2"),
        ("propionyl-L-carnitine", "c3"),
        ("O-Propanoylcarnitine", "c3"),
        ("butyryl-L-carnitine", "c4"),
        ("isovaleryl-L-carnitine", "c5"),
        ("2-methylbutyroylcarnitine", "c5"),
        ("glutaroyl carnitine", "c5_dc"),
        ("methylglutaroylcarnitine", "c5_m_dc"),
        ("lauroyl-L-carnitine", "c12"),
        ("O-palmitoyl-L-carnitine", "c16"),
        ("O-hexadecanoyl-(R)-carnitine", "c16"),
        ("stearoyl-L-carnitine", "c18"),
        ("oleoyl-L-carnitine", "c18_1"),
        ("Linoleyl carnitine", "c18_2"),
        ("O-tetradecenoyl-L-carnitine", "c14_1"),
        ("3-Hydroxy-cis-5-tetradecenoylcarnitine", "c14_1_oh"),
        ("L-Carnitine", "c0"),
        ("(R)-Carnitine", "c0"),
        ("L-Ornithine", "ornithine"),
        ("L-ornithine", "ornithine"),
        ("(S)-2,5-Diaminopentanoic acid", "ornithine"),
        ("DL-Ornithine", "ornithine"),
        ("L-Alanine", "alanine"),
        ("(S)-2-Aminopropanoic acid", "alanine"),
        ("trans-4-Hydroxy-L-proline", "hydroxyproline"),
        ("beta-Alanyl-L-histidine", "carnosine"),
        ("D-Glucose", "glucose"),
        ("D-3-Hydroxybutyrate", "beta_hydroxybutyrate"),
        ("(R)-3-Hydroxybutyric acid", "beta_hydroxybutyrate"),
        ("DL-Lactate", "lactate"),
        ("L-Lactic acid", "lactate"),
        ("D-Bil", "direct_bilirubin"),
    ],
)
def test_systematic_and_stereo_names_resolve(cat: Catalog, name: str, expected: str) -> None:
    assert hit(cat, name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "D-Serine",  # the L-serine analyte: an enantiomer is another metabolite
        "D-Lactate",
        "D-Ornithine",
        "D-Carnitine",
        "(S)-Carnitine",  # L-carnitine is (R)
        "acetyl-D-carnitine",
        "L-3-Hydroxybutyrate",  # ketone-body assays measure the D-(R) form
        "(R)-2,5-Diaminopentanoic acid",
        "L-Glucose",
        "Bil",  # dropping D from D-Bil must not make Bil a name
    ],
)
def test_contradicting_stereo_descriptor_does_not_match(cat: Catalog, name: str) -> None:
    assert cat.match(name) == (None, "unmatched")


def test_every_acylcarnitine_resolves_by_its_systematic_forms(cat: Catalog) -> None:
    checked = 0
    for a in cat.by_class("acylcarnitine"):
        acyl_names = [
            n for n in a.synonyms if n.casefold().endswith("ylcarnitine") and not n.startswith("O-")
        ]
        assert acyl_names or a.id == "c0", a.id
        for name in acyl_names:
            acyl = name[: -len("carnitine")]
            for form in (
                name,
                f"{acyl}-L-carnitine",
                f"{acyl} carnitine",
                f"O-{acyl}-L-carnitine",
                f"O-{acyl}carnitine",
                f"{acyl}-DL-carnitine",
                f"L-{name}",
            ):
                assert hit(cat, form) == a.id, (a.id, form)
                checked += 1
    assert checked > 300


def test_derived_acylcarnitine_names_never_shadow_listed_names(cat: Catalog) -> None:
    # every listed name still resolves to its own analyte (the O- forms are only a fallback)
    for a in cat:
        for name in a.names:
            assert hit(cat, name) == a.id, (a.id, name)


# -- HMDB and KEGG ids ----------------------------------------------------------------------------


def test_hmdb_ids_resolve_in_both_forms(cat: Catalog) -> None:
    assert hit(cat, "HMDB0000148") == "glutamic_acid"
    assert hit(cat, "HMDB00148") == "glutamic_acid"
    assert hit(cat, "hmdb0000214") == "ornithine"
    assert hit(cat, " HMDB00214 ") == "ornithine"
    with_hmdb = [a for a in cat if a.hmdb]
    assert len(with_hmdb) >= 60
    for a in with_hmdb:
        assert a.hmdb is not None
        short = "HMDB" + a.hmdb[4:].lstrip("0").rjust(5, "0")
        assert cat.match(a.hmdb) == (a, "exact"), a.id
        assert cat.match(short) == (a, "exact"), (a.id, short)


def test_unknown_or_malformed_accessions_do_not_match(cat: Catalog) -> None:
    for name in ("HMDB9999999", "HMDB0000000", "HMDB000148", "HMDB148", "C99999", "C0077", "C000770"):
        assert cat.resolve(name) is None, name


def test_kegg_ids_resolve(cat: Catalog) -> None:
    assert cat.match("C00077") == (cat.get("ornithine"), "exact")
    assert hit(cat, "cpd:C00077") == "ornithine"
    assert hit(cat, "c00077") == "ornithine"
    assert hit(cat, "C00031") == "glucose"
    assert hit(cat, "C00025") == "glutamic_acid"
    with_kegg = [a for a in cat if a.kegg]
    assert len(with_kegg) >= 40
    for a in with_kegg:
        assert a.kegg is not None and re.fullmatch(r"C\d{5}", a.kegg), a.id
        assert cat.match(a.kegg) == (a, "exact"), a.id
    codes = [a.kegg for a in with_kegg]
    assert len(codes) == len(set(codes))


def test_kegg_ids_are_documented_with_sources(cat: Catalog) -> None:
    readme = (Path(__file__).parents[1] / "src/hikisig/catalog/data/README.md").read_text("utf-8")
    for a in cat:
        if a.kegg:
            assert re.search(rf"\| `{a.id}` \| {a.kegg} \| [A-Z]", readme), a.id


def test_disputed_kegg_ids_are_left_empty(cat: Catalog) -> None:
    # the public sources disagree on free carnitine (C00318 L-carnitine vs C00487 carnitine)
    # and Metabolon gives hexanoylcarnitine the hexanoate id: both are left empty
    assert cat.get("c0").kegg is None
    assert cat.get("c6").kegg is None


# -- kit short names ------------------------------------------------------------------------------

# The column names of a Biocrates AbsoluteIDQ p180 export, as listed by a public analysis
# script of a p180 serum data set (see data/README.md): 21 amino acids, 22 biogenic amines
# (with total DMA), H1, 41 acylcarnitine names, 14 lysoPC, 76 PC and 14 SM.
P180 = (
    ["Ala", "Arg", "Asn", "Asp", "Cit", "Glu", "Gln", "Gly", "His", "Ile", "Leu", "Lys", "Met",
     "Orn", "Phe", "Pro", "Ser", "Thr", "Trp", "Tyr", "Val"]
    + ["Ac-Orn", "alpha-AAA", "ADMA", "Carnosine", "Creatinine", "DOPA", "Dopamine", "Histamine",
       "Kynurenine", "Met-SO", "Nitro-Tyr", "PEA", "Putrescine", "Sarcosine", "Serotonin",
       "Spermidine", "Spermine", "c4-OH-Pro", "t4-OH-Pro", "SDMA", "Taurine", "total DMA"]
    + ["H1"]
    + ["C0", "C10:1", "C10:2", "C2", "C3", "C3:1", "C3-OH", "C3-DC (C4-OH)", "C4", "C4:1",
       "C4-OH (C3-DC)", "C5", "C5:1", "C5:1-DC", "C5-DC (C6-OH)", "C5-M-DC", "C5-OH (C3-DC-M)",
       "C6:1", "C6 (C4:1-DC)", "C7-DC", "C8", "C9", "C10", "C12", "C12-DC", "C12:1", "C14",
       "C14:1", "C14:1-OH", "C14:2", "C14:2-OH", "C16", "C16:1", "C16:1-OH", "C16:2", "C16:2-OH",
       "C16-OH", "C18", "C18:1", "C18:1-OH", "C18:2"]
    + [f"lysoPC a C{s}" for s in ("14:0", "16:0", "16:1", "17:0", "18:0", "18:1", "18:2", "20:3",
                                  "20:4", "24:0", "26:0", "26:1", "28:0", "28:1")]
    + [f"PC aa C{s}" for s in ("24:0", "26:0", "28:1", "30:0", "30:2", "32:0", "32:1", "32:2",
                               "32:3", "34:1", "34:2", "34:3", "34:4", "36:0", "36:1", "36:2",
                               "36:3", "36:4", "36:5", "36:6", "38:0", "38:1", "38:3", "38:4",
                               "38:5", "38:6", "40:1", "40:2", "40:3", "40:4", "40:5", "40:6",
                               "42:0", "42:1", "42:2", "42:4", "42:5", "42:6")]
    + [f"PC ae C{s}" for s in ("30:0", "30:1", "30:2", "32:1", "32:2", "34:0", "34:1", "34:2",
                               "34:3", "36:0", "36:1", "36:2", "36:3", "36:4", "36:5", "38:0",
                               "38:1", "38:2", "38:3", "38:4", "38:5", "38:6", "40:1", "40:2",
                               "40:3", "40:4", "40:5", "40:6", "42:0", "42:1", "42:2", "42:3",
                               "42:4", "42:5", "44:3", "44:4", "44:5", "44:6")]
    + ["SM (OH) C14:1", "SM (OH) C16:1", "SM (OH) C22:1", "SM (OH) C22:2", "SM (OH) C24:1",
       "SM C16:0", "SM C16:1", "SM C18:0", "SM C18:1", "SM C20:2", "SM C24:0", "SM C24:1",
       "SM C26:0", "SM C26:1"]
)  # fmt: skip


def test_every_p180_column_resolves_to_its_own_analyte(cat: Catalog) -> None:
    assert len(P180) == len(set(P180)) == 189
    ids = [hit(cat, name) for name in P180]
    assert None not in ids, [n for n, i in zip(P180, ids, strict=True) if i is None]
    assert len(set(ids)) == len(P180)  # no two kit columns merge


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("C0", "c0"),
        ("C2", "c2"),
        ("C14:1-OH", "c14_1_oh"),
        ("lysoPC a C16:0", "lysopc_a_c16_0"),
        ("PC aa C34:1", "pc_aa_c34_1"),
        ("SM (OH) C14:1", "sm_oh_c14_1"),
        ("H1", "hexose"),
        ("t4-OH-Pro", "hydroxyproline"),
        ("Ac-Orn", "acetylornithine"),
        ("alpha-AAA", "alpha_aminoadipic_acid"),
        ("Met-SO", "methionine_sulfoxide"),
        ("total DMA", "total_dma"),
        ("Cit", "citrulline"),
        ("Glu", "glutamic_acid"),
    ],
)
def test_biocrates_short_names(cat: Catalog, name: str, expected: str) -> None:
    assert hit(cat, name) == expected


# Nightingale NMR column names (machine-readable names of the csv delivery, as in UK Biobank)
NIGHTINGALE = {
    "Glucose": "glucose",
    "Lactate": "lactate",
    "Pyruvate": "pyruvate",
    "Citrate": "citrate",
    "Ala": "alanine",
    "Gln": "glutamine",
    "Gly": "glycine",
    "His": "histidine",
    "Ile": "isoleucine",
    "Leu": "leucine",
    "Val": "valine",
    "Phe": "phenylalanine",
    "Tyr": "tyrosine",
    "Acetoacetate": "acetoacetate",
    "bOHbutyrate": "beta_hydroxybutyrate",
    "Creatinine": "creatinine",
    "Albumin": "albumin",
    "Total_C": "total_cholesterol",
    "HDL_C": "hdl_c",
    "LDL_C": "ldl_c",
    "non_HDL_C": "non_hdl_c",
    "Total_TG": "triglycerides",
}


@pytest.mark.parametrize(("name", "expected"), sorted(NIGHTINGALE.items()))
def test_nightingale_names(cat: Catalog, name: str, expected: str) -> None:
    assert hit(cat, name) == expected


def test_nightingale_names_without_catalog_analyte_stay_unmatched(cat: Catalog) -> None:
    # no catalog analyte: these are reported as uncatalogued, never forced onto a neighbour
    for name in ("ApoB", "ApoA1", "GlycA", "Acetate", "Acetone", "Total_BCAA", "Clinical_LDL_C"):
        assert cat.resolve(name) is None, name


def test_nightingale_units_are_accepted(cat: Catalog) -> None:
    # Nightingale reports metabolites in mmol/L and albumin in g/L
    for name in NIGHTINGALE:
        analyte = cat.resolve(name)
        assert analyte is not None
        unit = "g/L" if name == "Albumin" else "mmol/L"
        assert analyte.factor(unit) > 0, name


def test_cit_is_citrulline_and_citrate_is_citrate(cat: Catalog) -> None:
    assert hit(cat, "Cit") == "citrulline"
    assert hit(cat, "CIT") == "citrulline"
    assert hit(cat, "Citrate") == "citrate"
    assert hit(cat, "Citric acid") == "citrate"
    assert hit(cat, "Citrulline") == "citrulline"


def test_public_data_set_columns_stay_distinct(cat: Catalog) -> None:
    path = Path(__file__).parent / "data" / "sacurine" / "sacurine_variableMetadata.tsv"
    with path.open(encoding="utf-8") as fh:
        names = [row["variableMetadata"] for row in csv.DictReader(fh, delimiter="\t")]
    ids = [i for i in (hit(cat, n) for n in names) if i is not None]
    assert len(ids) == len(set(ids))
    assert hit(cat, "X.gamma.Glu.Leu.Ile") is None


# -- match kinds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected", "kind"),
    [
        ("ornithine", "ornithine", "exact"),  # the id
        ("L-Ornithine", "ornithine", "exact"),  # the display name
        ("l ornithine", "ornithine", "exact"),  # display name after normalisation
        ("Ornithine", "ornithine", "exact"),  # L- is dropped: same key as the display name
        ("Orn", "ornithine", "synonym"),
        ("(S)-2,5-Diaminopentanoic acid", "ornithine", "synonym"),
        ("C18:1", "c18_1", "exact"),  # the id c18_1 after normalisation
        ("Oleoylcarnitine", "c18_1", "synonym"),
        ("c18_1", "c18_1", "exact"),
        ("Oleoylcarnitine (C18:1)", "c18_1", "exact"),
        ("GLU", "glucose", "exact"),  # case-sensitive synonym
        ("HMDB0000214", "ornithine", "exact"),
        ("HMDB00214", "ornithine", "exact"),
        ("C00077", "ornithine", "exact"),
        ("O-hexanoyl-L-carnitine", "c6", "synonym"),  # derived acylcarnitine name
        ("X2.Aminoadipic.acid", "alpha_aminoadipic_acid", "synonym"),  # make.names repair
        ("X.Ornithine", "ornithine", "synonym"),
    ],
)
def test_match_kinds(cat: Catalog, name: str, expected: str, kind: str) -> None:
    analyte, how = cat.match(name)
    assert analyte is not None and analyte.id == expected, name
    assert how == kind, name


def test_unmatched_kind(cat: Catalog) -> None:
    assert MATCH_KINDS == ("exact", "synonym", "unmatched")
    for name in ("not an analyte", "", "   ", "NA", "C99", "HMDB9999999"):
        assert cat.match(name) == (None, "unmatched"), name
    assert cat.match(None) == (None, "unmatched")  # type: ignore[arg-type]
    assert cat.match(1.5) == (None, "unmatched")  # type: ignore[arg-type]


def test_resolve_is_the_analyte_of_match(cat: Catalog) -> None:
    names = [n for a in cat for n in (*a.names, *a.exact_synonyms)]
    names += ["GLU", "glu", "HMDB00148", "C00077", "D-Serine", "nothing", "hexanoyl-L-carnitine"]
    for name in names:
        assert cat.resolve(name) is cat.match(name)[0], name
    assert resolve("GLU") is load_catalog().get("glucose")


# -- validation of the new columns ----------------------------------------------------------------

HEADER = ",".join(COLUMNS)
GLUCOSE = (
    "glucose,Glucose,Glucose|BS,GLU,clinical_chemistry,glucose_metabolism,,,,,"
    "HMDB0000122,C00031,2345-7,mg/dL,mg/dL=1,plasma,"
)
GLUTAMATE = (
    "glutamic_acid,L-Glutamic acid,Glu|Glutamate,,amino_acid,proteinogenic,,,,,"
    "HMDB0000148,C00025,,umol/L,umol/L=1,plasma,"
)


def write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "analytes.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_exact_synonym_may_share_a_key_with_another_analyte(tmp_path: Path) -> None:
    small = load_catalog(write(tmp_path, GLUCOSE, GLUTAMATE))
    assert small.match("GLU") == (small.get("glucose"), "exact")
    assert small.match("Glu") == (small.get("glutamic_acid"), "synonym")
    assert small.match("C00025")[0] is small.get("glutamic_acid")


def test_exact_synonym_on_two_analytes_is_refused(tmp_path: Path) -> None:
    bad = GLUTAMATE.replace("Glu|Glutamate,,", "Glu|Glutamate,GLU,")
    with pytest.raises(ValueError) as info:
        load_catalog(write(tmp_path, GLUCOSE, bad))
    message = str(info.value)
    assert re.search(r"line 3, column 'exact_synonyms': 'GLU': .*already claimed", message), message
    assert "'glucose' (line 2)" in message


def test_exact_synonym_equal_to_another_analytes_name_is_refused(tmp_path: Path) -> None:
    bad = GLUCOSE.replace(",GLU,", ",Glu,")
    with pytest.raises(ValueError) as info:
        load_catalog(write(tmp_path, bad, GLUTAMATE))
    message = str(info.value)
    assert "line 2, column 'exact_synonyms': 'Glu'" in message
    assert "'glutamic_acid' (line 3)" in message


def test_exact_synonym_listed_twice_in_a_row(tmp_path: Path) -> None:
    bad = GLUCOSE.replace(",GLU,", ",GLU| GLU ,")
    with pytest.raises(ValueError, match=r"line 2, column 'exact_synonyms': 'GLU': listed twice"):
        load_catalog(write(tmp_path, bad))


def test_exact_synonym_may_not_be_an_accession(tmp_path: Path) -> None:
    bad = GLUCOSE.replace(",GLU,", ",GLU|C00025,")
    with pytest.raises(ValueError, match=r"line 2, column 'exact_synonyms': 'C00025': looks like"):
        load_catalog(write(tmp_path, bad, GLUTAMATE))


def test_bad_kegg_reports_line_column_value(tmp_path: Path) -> None:
    bad = GLUTAMATE.replace("C00025", "C25")
    with pytest.raises(ValueError, match=r"line 3, column 'kegg': 'C25'"):
        load_catalog(write(tmp_path, GLUCOSE, bad))


@pytest.mark.parametrize(("column", "code"), [("hmdb", "HMDB0000122"), ("kegg", "C00031")])
def test_code_on_two_analytes_is_refused(tmp_path: Path, column: str, code: str) -> None:
    other = "HMDB0000148" if column == "hmdb" else "C00025"
    bad = GLUTAMATE.replace(other, code)
    with pytest.raises(ValueError) as info:
        load_catalog(write(tmp_path, GLUCOSE, bad))
    message = str(info.value)
    assert f"line 3, column '{column}': '{code}'" in message
    assert "'glucose' (line 2)" in message


def test_catalog_without_the_new_columns_still_loads(tmp_path: Path) -> None:
    legacy = ",".join(c for c in COLUMNS if c not in ("exact_synonyms", "kegg"))
    row = (
        "ornithine,L-Ornithine,Orn,amino_acid,non_proteinogenic,,,,,HMDB0000214,20652-4,"
        "umol/L,umol/L=1,plasma,"
    )
    small = load_catalog(write(tmp_path, row, header=legacy))
    orn = small.get("ornithine")
    assert orn.exact_synonyms == () and orn.kegg is None
    assert small.match("HMDB00214") == (orn, "exact")
    with pytest.raises(ValueError, match="line 2: more fields than the 15 columns"):
        load_catalog(write(tmp_path, row + ",extra", header=legacy))


def test_to_frame_has_the_new_columns(cat: Catalog) -> None:
    df = cat.to_frame()
    assert df.loc["glucose", "exact_synonyms"] == "GLU"
    assert df.loc["ornithine", "kegg"] == "C00077"
    assert df.loc["ornithine", "exact_synonyms"] == ""

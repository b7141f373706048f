"""Tests of the shipped instrument definitions (the TOML files), not of the scorer.

Totals are computed here from the definition itself (reverse = min + max - x),
so a wrong reverse-item list or response range in a file makes these fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hikisig.assess.definition import (
    CHECKED_FIELDS,
    Instrument,
    InstrumentError,
    instrument_ids,
    load_instrument,
)

SHIPPED = ("hq25", "hq25m", "k6", "k10", "lsns6", "phq9", "ucla3")


def total_if_all(inst: Instrument, answer: int) -> int:
    """Total when every item is answered ``answer``, reversing the reverse items."""
    lo, hi = inst.response_min, inst.response_max
    return sum((lo + hi - answer) if i in inst.reverse_items else answer
               for i in range(1, inst.n_items + 1))


def test_all_shipped_ids_are_listed_and_load() -> None:
    ids = instrument_ids()
    missing = set(SHIPPED) - set(ids)
    assert not missing, f"not shipped: {sorted(missing)}"
    for iid in ids:
        inst = load_instrument(iid)
        assert inst.id == iid, f"{iid}.toml declares id {inst.id!r}"


@pytest.mark.parametrize(("iid", "n_items", "lo", "hi"), [
    ("hq25", 25, 0, 4),
    ("hq25m", 25, 0, 4),
    ("k6", 6, 0, 4),
    ("k10", 10, 1, 5),
    ("lsns6", 6, 0, 5),
    ("phq9", 9, 0, 3),
    ("ucla3", 20, 1, 4),
])
def test_item_count_and_response_range(iid: str, n_items: int, lo: int, hi: int) -> None:
    inst = load_instrument(iid)
    assert (inst.n_items, inst.response_min, inst.response_max) == (n_items, lo, hi)


@pytest.mark.parametrize(("iid", "all_min", "all_max"), [
    ("hq25m", 24, 76),   # docs/science.md checkable values
    ("ucla3", 47, 53),   # docs/science.md checkable values
    ("k6", 0, 24),
    ("k10", 10, 50),
    ("lsns6", 0, 30),
    ("phq9", 0, 27),
])
def test_totals_for_uniform_answers(iid: str, all_min: int, all_max: int) -> None:
    inst = load_instrument(iid)
    assert total_if_all(inst, inst.response_min) == all_min
    assert total_if_all(inst, inst.response_max) == all_max


def test_reverse_lists() -> None:
    assert load_instrument("hq25m").reverse_items == [4, 7, 10, 15, 21, 25]
    assert load_instrument("ucla3").reverse_items == [1, 5, 6, 9, 10, 15, 16, 19, 20]
    hq25 = load_instrument("hq25")
    # 4, 7, 10 are the confirmed part; the rest is inferred and must say so.
    assert {4, 7, 10} <= set(hq25.reverse_items)
    if set(hq25.reverse_items) != {4, 7, 10}:
        assert not hq25.verified["reverse_items"].verified
    for iid in ("k6", "k10", "lsns6", "phq9"):
        assert load_instrument(iid).reverse_items == []


@pytest.mark.parametrize("iid", ["hq25", "hq25m"])
def test_hq_cutoff(iid: str) -> None:
    cut = load_instrument(iid).cutoff("screen_positive")
    assert cut is not None
    assert cut.default == 42
    assert 44 in cut.alternatives
    assert cut.direction == ">="


def test_hq_subscales_not_guessed() -> None:
    for iid in ("hq25", "hq25m"):
        inst = load_instrument(iid)
        assert inst.subscales == [], f"{iid}: subscale membership is not verified"
        assert {s.id for s in inst.unavailable_subscales} == {
            "socialization", "isolation", "emotional_support"}
        assert all(s.reason.strip() for s in inst.unavailable_subscales)
        assert not inst.verified["subscales"].verified


def test_hq_no_item_text() -> None:
    for iid in ("hq25", "hq25m"):
        inst = load_instrument(iid)
        assert all(item.text is None for item in inst.items)
        assert inst.item_text_licence.strip()


def test_phq9_bands() -> None:
    assert [b.min for b in load_instrument("phq9").bands] == [0, 5, 10, 15, 20]


def test_k10_bands() -> None:
    bands = load_instrument("k10").bands
    assert [b.min for b in bands] == [10, 20, 25, 30]
    assert bands[-1].max == 50


def test_k6_bands_and_cutoff() -> None:
    inst = load_instrument("k6")
    assert [b.min for b in inst.bands] == [0, 5, 13]
    cut = inst.cutoff("screen_positive")
    assert cut is not None
    assert (cut.default, cut.direction) == (13, ">=")
    assert 5 in cut.alternatives


def test_ucla3_has_no_cutoff_or_bands() -> None:
    inst = load_instrument("ucla3")
    assert inst.bands == []
    assert inst.cutoffs == []


def test_lsns6_isolation_cutoff() -> None:
    cut = load_instrument("lsns6").cutoff("isolated")
    assert cut is not None
    assert (cut.default, cut.direction) == (12, "<")


def test_lsns6_subscales_partition_items() -> None:
    inst = load_instrument("lsns6")
    assert [s.id for s in inst.subscales] == ["family", "friends"]
    items = sorted(i for s in inst.subscales for i in s.items)
    assert items == list(range(1, inst.n_items + 1)), "each item in exactly one subscale"
    for s in inst.subscales:
        k = len(s.items)
        assert (k * inst.response_min, k * inst.response_max) == (0, 15)


@pytest.mark.parametrize("iid", SHIPPED)
def test_every_checked_field_has_an_entry(iid: str) -> None:
    inst = load_instrument(iid)
    assert set(CHECKED_FIELDS) <= set(inst.verified)


@pytest.mark.parametrize("iid", SHIPPED)
def test_unverified_facts_are_explained(iid: str) -> None:
    inst = load_instrument(iid)
    for field, check in inst.verified.items():
        if not check.verified:
            assert check.source.strip(), f"{iid}: unverified {field} has no explanation"
    for sub in inst.subscales:
        assert sub.verified, f"{iid}: unverified subscale {sub.id} must be under unavailable_subscales"
        assert sub.source.strip()


@pytest.mark.parametrize("iid", SHIPPED)
def test_definition_carries_its_source(iid: str) -> None:
    inst = load_instrument(iid)
    assert inst.citation.strip()
    assert inst.doi.startswith("10.")


VALID = """
id = "bad"
name = "Bad"
version = "1"
reference_period = "none"
n_items = 3
response_min = 0
response_max = 2
reverse_items = {reverse}
citation = "none"

[missing]
rule = "complete"
{checks}
"""


def _checks(fields: tuple[str, ...]) -> str:
    return "\n".join(f'[verified.{f}]\nverified = true\nsource = "test"\n' for f in fields)


def test_valid_minimal_definition_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(VALID.format(reverse="[3]", checks=_checks(CHECKED_FIELDS)), encoding="utf-8")
    assert load_instrument(path).reverse_items == [3]


def test_reverse_item_out_of_range_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(VALID.format(reverse="[4]", checks=_checks(CHECKED_FIELDS)), encoding="utf-8")
    with pytest.raises(InstrumentError, match="reverse_items"):
        load_instrument(path)


@pytest.mark.parametrize("dropped", CHECKED_FIELDS)
def test_missing_verified_entry_is_rejected(tmp_path: Path, dropped: str) -> None:
    path = tmp_path / "bad.toml"
    fields = tuple(f for f in CHECKED_FIELDS if f != dropped)
    path.write_text(VALID.format(reverse="[]", checks=_checks(fields)), encoding="utf-8")
    with pytest.raises(InstrumentError, match=dropped):
        load_instrument(path)

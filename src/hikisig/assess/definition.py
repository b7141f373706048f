"""Instrument definitions: questionnaires as data files, validated on load.

Each instrument and version is one TOML file in ``hikisig/assess/instruments``
(or any folder given to :func:`load_instrument`). The file states every fact
the scorer uses (items, response range, reverse-scored items, subscales,
missing-data rule, bands, cut-offs, item alerts) with its source, and a
``verified`` entry for each field saying whether a published source confirmed
it. Facts that no source confirmed are either marked unverified or left out
(a subscale whose membership is unknown is listed under
``unavailable_subscales`` with the reason, never guessed).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hikisig.errors import HikisigError

__all__ = [
    "CHECKED_FIELDS",
    "Band",
    "Check",
    "Cutoff",
    "Instrument",
    "InstrumentError",
    "Item",
    "ItemAlert",
    "Licence",
    "MissingRule",
    "Subscale",
    "UnavailableSubscale",
    "instrument_ids",
    "load_instrument",
]

#: Fields of a definition that must carry a ``verified`` entry.
CHECKED_FIELDS = ("items", "response_range", "reverse_items", "subscales", "missing", "bands",
                  "cutoffs", "alerts")


class InstrumentError(HikisigError):
    """An instrument is unknown or its definition file is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(_Strict):
    """Whether a published source confirmed a field, and which source."""

    verified: bool
    source: str = ""


class Item(_Strict):
    """One item: its number, and its wording only where the licence allows."""

    number: int = Field(ge=1)
    text: str | None = None


class Licence(_Strict):
    """Whether the item wording may be reproduced, under which licence, and the source saying so.

    ``text_allowed = false`` means hikisig does not store or show the wording (the licence
    forbids it or no source read confirms that reuse is allowed); forms then say so and name
    ``source``.
    """

    text_allowed: bool
    name: str
    source: str


class Subscale(_Strict):
    """A subscale: the items whose (reverse-scored) answers are summed."""

    id: str
    name: str
    items: list[int]
    verified: bool
    source: str = ""


class UnavailableSubscale(_Strict):
    """A subscale the instrument has but hikisig cannot score, with the reason."""

    id: str
    name: str
    reason: str


class MissingRule(_Strict):
    """What to do with unanswered items.

    ``prorate``: with at most ``max_missing`` items unanswered, the score is the
    mean of the answered items times the number of items; with more, the score
    is missing. ``complete``: any unanswered item makes the score missing.
    """

    rule: Literal["prorate", "complete"]
    max_missing: int = Field(default=0, ge=0)


class Band(_Strict):
    """A band of the total: applies from ``min`` (inclusive) up to the next band's ``min``."""

    label: str
    min: float
    max: float


class Cutoff(_Strict):
    """A screening cut-off on the total, giving a boolean flag column."""

    id: str
    default: float
    alternatives: list[float] = []
    direction: Literal[">=", ">", "<", "<="] = ">="
    description: str = ""


class ItemAlert(_Strict):
    """A flag raised by the raw answer to one item, whatever the total."""

    id: str
    item: int
    above: float
    description: str = ""


class Instrument(_Strict):
    """A questionnaire definition (see the module docstring).

    Examples
    --------
    >>> phq9 = load_instrument("phq9")
    >>> phq9.n_items, phq9.response_min, phq9.response_max
    (9, 0, 3)
    """

    id: str
    name: str
    short_name: str = ""
    version: str
    reference_period: str
    n_items: int = Field(ge=1)
    response_min: int
    response_max: int
    response_labels: dict[str, str] = {}
    items: list[Item] = []
    item_text_licence: str = ""
    licence: Licence | None = None
    item_stem: str = ""
    reverse_items: list[int] = []
    subscales: list[Subscale] = []
    unavailable_subscales: list[UnavailableSubscale] = []
    missing: MissingRule
    bands: list[Band] = []
    cutoffs: list[Cutoff] = []
    alerts: list[ItemAlert] = []
    citation: str
    doi: str = ""
    notes: str = ""
    verified: dict[str, Check]

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        n = self.n_items
        problems: list[str] = []
        if self.response_min >= self.response_max:
            problems.append("response_min must be below response_max")

        def check_items(where: str, items: list[int]) -> None:
            bad = [i for i in items if not 1 <= i <= n]
            if bad:
                problems.append(f"{where}: item(s) {bad} outside 1..{n}")
            if len(set(items)) != len(items):
                problems.append(f"{where}: an item is listed twice")

        check_items("reverse_items", self.reverse_items)
        for sub in self.subscales:
            check_items(f"subscale {sub.id}", sub.items)
        for al in self.alerts:
            check_items(f"alert {al.id}", [al.item])
        if self.items and sorted(i.number for i in self.items) != list(range(1, n + 1)):
            problems.append(f"items must be numbered 1..{n}")
        if any(i.text for i in self.items):
            if self.licence is None or not self.licence.text_allowed:
                problems.append("item text is stored but licence.text_allowed is not true")
            if "item_text" not in self.verified:
                problems.append("item text is stored without a verified.item_text entry naming its source")
        if self.missing.max_missing >= n:
            problems.append("missing.max_missing must be below n_items")
        mins = [b.min for b in self.bands]
        if mins != sorted(mins):
            problems.append("bands must be in increasing order of min")
        ids = [s.id for s in self.subscales] + [c.id for c in self.cutoffs] + [a.id for a in self.alerts]
        if len(set(ids)) != len(ids):
            problems.append("subscale, cut-off and alert ids must be distinct")
        missing_checks = [f for f in CHECKED_FIELDS if f not in self.verified]
        if missing_checks:
            problems.append(f"verified entries missing for: {', '.join(missing_checks)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def item_columns(self) -> list[str]:
        """Names of the item columns: ``item1`` ... ``itemN``."""
        return [f"item{i}" for i in range(1, self.n_items + 1)]

    @property
    def min_total(self) -> float:
        """Smallest possible total."""
        return float(self.n_items * self.response_min)

    @property
    def max_total(self) -> float:
        """Largest possible total."""
        return float(self.n_items * self.response_max)

    @property
    def item_texts(self) -> dict[int, str]:
        """Item number -> wording, for the items whose wording is stored (licence permitting)."""
        return {i.number: i.text for i in self.items if i.text}

    def cutoff(self, cutoff_id: str) -> Cutoff | None:
        """The cut-off with this id, or None."""
        return next((c for c in self.cutoffs if c.id == cutoff_id), None)


def _folder() -> Path:
    return Path(str(resources.files("hikisig.assess") / "instruments"))


def instrument_ids(folder: Path | None = None) -> list[str]:
    """Ids of the shipped instruments (file names without ``.toml``).

    Examples
    --------
    >>> "phq9" in instrument_ids()
    True
    """
    return sorted(p.stem for p in (folder or _folder()).glob("*.toml"))


def load_instrument(instrument: str | Path) -> Instrument:
    """Load and validate an instrument by id (shipped) or by path (a TOML file).

    Raises
    ------
    InstrumentError
        Unknown id, unreadable file, or a definition that fails validation
        (every problem named).
    """
    path = Path(instrument)
    if path.suffix == ".toml" or path.exists():
        return _load_path(path.resolve())
    return _load_shipped(str(instrument))


@lru_cache(maxsize=64)
def _load_shipped(instrument_id: str) -> Instrument:
    path = _folder() / f"{instrument_id}.toml"
    if not path.exists():
        raise InstrumentError(f"unknown instrument {instrument_id!r}; known: "
                              f"{', '.join(instrument_ids())}")
    return _load_path(path)


def _load_path(path: Path) -> Instrument:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InstrumentError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InstrumentError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Instrument.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(x) for x in e['loc']) or 'definition'}: {e['msg']}"
                 for e in exc.errors()]
        raise InstrumentError("\n".join(lines)) from exc

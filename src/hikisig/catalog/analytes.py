"""The analyte catalog: definitions, name matching and unit factors.

The catalog is a CSV file shipped with the package (``data/analytes.csv``,
documented in ``data/README.md``). Each row defines one analyte: a stable id,
names and synonyms used by laboratory exports (case-insensitive synonyms
and a few case-sensitive ones), a class, acyl-chain facts, HMDB, KEGG and
LOINC codes where known, the unit values are stored in and the factors that
convert other units to it.

Loading validates the file and raises :class:`ValueError` naming the CSV line,
the column and the value for every kind of mistake the catalog guards against
(duplicate ids, names that would match two analytes, a case-sensitive synonym
or a code claimed by two analytes, malformed codes, units without the default
unit...).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from hikisig.catalog.units import UnknownUnitError, normalize_unit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ACYLCARNITINE_SUBCLASSES",
    "CLASSES",
    "COLUMNS",
    "MATCH_KINDS",
    "MATRICES",
    "SUBCLASSES",
    "Analyte",
    "Catalog",
    "MatchKind",
    "acylcarnitine_subclass",
    "load_catalog",
    "normalize_name",
    "resolve",
]

#: Columns of the catalog CSV, in order.
COLUMNS: tuple[str, ...] = (
    "id",
    "display_name",
    "synonyms",
    "exact_synonyms",
    "class",
    "subclass",
    "chain_length",
    "double_bonds",
    "hydroxy",
    "dicarboxylic",
    "hmdb",
    "kegg",
    "loinc",
    "default_unit",
    "units",
    "matrix",
    "notes",
)

#: Controlled vocabulary of the ``class`` column.
CLASSES: frozenset[str] = frozenset(
    {
        "amino_acid",
        "biogenic_amine",
        "acylcarnitine",
        "cholesterol_ester",
        "lysophosphatidylcholine",
        "phosphatidylcholine",
        "sphingomyelin",
        "hexose",
        "organic_acid",
        "bile_acid",
        "steroid",
        "clinical_chemistry",
    }
)

#: Controlled vocabulary of the ``subclass`` column, per class (empty subclass is allowed
#: except for acylcarnitines, whose subclass follows from the chain length).
SUBCLASSES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "amino_acid": frozenset({"proteinogenic", "non_proteinogenic", "sum"}),
        "biogenic_amine": frozenset(
            {
                "tryptophan_pathway",
                "methylarginine",
                "polyamine",
                "histidine_pathway",
                "catecholamine",
                "amino_acid_derivative",
                "trace_amine",
                "neurotransmitter",
                "one_carbon",
                "guanidino",
            }
        ),
        "acylcarnitine": frozenset({"free", "short", "medium", "long", "very_long"}),
        "cholesterol_ester": frozenset({"saturated", "monounsaturated", "polyunsaturated"}),
        "lysophosphatidylcholine": frozenset({"acyl", "alkyl"}),
        "phosphatidylcholine": frozenset({"diacyl", "acyl_alkyl"}),
        "sphingomyelin": frozenset({"non_hydroxylated", "hydroxylated"}),
        "hexose": frozenset({"sum"}),
        "organic_acid": frozenset({"glycolysis", "tca_cycle", "ketone_body", "tryptophan_pathway"}),
        "bile_acid": frozenset({"primary", "primary_conjugated", "secondary", "secondary_conjugated"}),
        "steroid": frozenset({"glucocorticoid", "androgen"}),
        "clinical_chemistry": frozenset(
            {
                "lipid_panel",
                "liver",
                "kidney",
                "enzyme",
                "inflammation",
                "protein",
                "glucose_metabolism",
                "purine",
                "electrolyte",
            }
        ),
    }
)

#: Allowed values of the ``matrix`` column (``|``-separated).
MATRICES: frozenset[str] = frozenset({"plasma", "serum", "whole_blood"})

#: Acylcarnitine subclasses, shortest chains first.
ACYLCARNITINE_SUBCLASSES: tuple[str, ...] = ("free", "short", "medium", "long", "very_long")

#: How :meth:`Catalog.match` found an analyte (see its docstring).
MatchKind = Literal["exact", "synonym", "unmatched"]

#: The values :meth:`Catalog.match` returns as its second element.
MATCH_KINDS: tuple[MatchKind, ...] = ("exact", "synonym", "unmatched")

_REQUIRED = ("id", "display_name", "class", "default_unit")
# Columns added after the first catalog format; a file without them still loads.
_OPTIONAL = frozenset({"exact_synonyms", "kegg"})
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HMDB_RE = re.compile(r"^HMDB\d{7}$")
_KEGG_RE = re.compile(r"^C\d{5}$")
_LOINC_RE = re.compile(r"^\d{1,7}-\d$")
# Accession numbers accepted as names: HMDB in the 7-digit and the old 5-digit form, KEGG
# COMPOUND with or without its "cpd:" prefix.
_HMDB_QUERY = re.compile(r"^HMDB(\d{5}|\d{7})$", re.IGNORECASE)
_KEGG_QUERY = re.compile(r"^(?:cpd:)?(C\d{5})$", re.IGNORECASE)
_BOOLS = {"true": True, "false": False}
_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "ω": "omega",
    "µ": "u",
    "μ": "u",
}
# A stereo descriptor written as a token of its own (matched on case-folded text): L, D, DL
# or D,L, optionally with an optical rotation attached (``D(+)-``), followed by a separator
# and a word; or a parenthesised CIP or rotation descriptor ((R), (S), (2S), (RS), (+), (-),
# (±)) followed by a word or ending the name. "Its own token" means it starts the name or
# follows a character that is not a letter or digit, so the letters of LDL-C, DL-xx inside a
# word or a unit such as mg/dL are never taken for descriptors.
_ROTATION = r"\((?:\+|-|\u2212|±|\+/-|\+-)\)"
_STEREO_RE = re.compile(
    r"(?<![^\W_])"
    r"(?:(?P<letter>d,l|dl|d|l)(?P<rot>" + _ROTATION + r")?[\s.\-_]+(?=[^\W_]|\()"
    r"|(?P<paren>\((?:\d*[rs](?:,\d*[rs])*|rs|\+|-|\u2212|±|\+/-|\+-)\))"
    r"(?:[\s.\-_]*(?=[^\W_]|\()|\s*$))"
)
# D and DL are dropped only before at least this many letters, so that clinical
# abbreviations such as D-Bil (direct bilirubin) keep their D.
_D_MIN_LETTERS = 4
_OPPOSITE = {"L": "D", "D": "L", "R": "S", "S": "R", "+": "-", "-": "+"}
_MAKE_NAMES_X = re.compile(r"^[Xx](?=[.\d])")
# Acylcarnitine names "<acyl>carnitine" also match as "O-<acyl>carnitine" (the O-acyl ester
# name of HMDB, KEGG and ChEBI), see Catalog._build_lookup.
_CARNITINE = "carnitine"


def acylcarnitine_subclass(chain_length: int) -> str:
    """Return the chain-length subclass of an acylcarnitine.

    ``free`` for C0 (carnitine itself), ``short`` for C2-C5, ``medium`` for
    C6-C13, ``long`` for C14-C21 and ``very_long`` from C22. The derived
    markers (short-, medium- and long-chain sums) rely on these bins.

    Parameters
    ----------
    chain_length : int
        Number of carbons of the acyl group (0 for free carnitine).

    Returns
    -------
    str
        One of :data:`ACYLCARNITINE_SUBCLASSES`.

    Raises
    ------
    ValueError
        For negative lengths and for 1 (there is no C1 acylcarnitine).

    Examples
    --------
    >>> acylcarnitine_subclass(16)
    'long'
    >>> acylcarnitine_subclass(5)
    'short'
    """
    if chain_length == 0:
        return "free"
    if chain_length < 2:
        raise ValueError(f"acylcarnitine chain length {chain_length} is not possible")
    if chain_length <= 5:
        return "short"
    if chain_length <= 13:
        return "medium"
    if chain_length <= 21:
        return "long"
    return "very_long"


def normalize_name(name: str) -> str:
    """Return the key used to match analyte names.

    The steps are: Unicode NFKC normalisation; case folding; Greek letters
    and the micro sign spelled out (``α`` -> ``alpha``, ``β`` -> ``beta``,
    ``γ`` -> ``gamma``, ``µ`` -> ``u``); stereo descriptors written as tokens
    of their own dropped (see below); finally every character that is not a
    letter or a digit removed.

    Stereo descriptors: ``L``, ``D``, ``DL`` (``D,L``) before a word, at the
    start or inside the name (``L-Ornithine``, ``L.Ornithine``,
    ``hexanoyl-L-carnitine``, ``DL-Lactate``, ``D(+)-Glucose``), and the
    parenthesised ``(R)``, ``(S)``, ``(2S)``, ``(RS)``, ``(+)``, ``(-)``,
    ``(±)`` (``(S)-2,5-Diaminopentanoic acid``). A descriptor must stand
    alone: the L of ``LDL-C`` and the dL of ``mg/dL`` are letters of a word.
    ``D`` and ``DL`` are dropped only before at least four letters, so the
    clinical abbreviation ``D-Bil`` (direct bilirubin) keeps its D. Dropping a
    descriptor never lets an enantiomer match the other one:
    :meth:`Catalog.match` refuses ``D-Serine`` for the L-serine analyte (see
    there).

    Removing punctuation never merges distinct kit species because the
    letters that tell them apart stay: ``C14:1-OH`` -> ``c141oh`` versus
    ``C14:1`` -> ``c141``, ``C5-DC`` -> ``c5dc`` versus ``C5`` -> ``c5``,
    ``PC aa C34:1`` -> ``pcaac341`` versus ``PC ae C34:1`` -> ``pcaec341``.
    Spacing and separators do not matter: ``C18:1``, ``c18-1`` and
    `` C18 : 1 `` all give ``c181``. The catalog refuses to load if two
    analytes would share a key.

    Parameters
    ----------
    name : str
        A name as written in a laboratory export or a publication.

    Returns
    -------
    str
        The matching key (may be empty for a name without letters or digits).

    Examples
    --------
    >>> normalize_name("lysoPC a C16:0")
    'lysopcac160'
    >>> normalize_name("L-Ornithine")
    'ornithine'
    >>> normalize_name("hexanoyl-L-carnitine")
    'hexanoylcarnitine'
    >>> normalize_name("(S)-2,5-Diaminopentanoic acid")
    '25diaminopentanoicacid'
    >>> normalize_name("D-Bil")
    'dbil'
    >>> normalize_name("γ-GTP")
    'gammagtp'
    """
    return _normalize(name)[0]


def _normalize(name: str) -> tuple[str, frozenset[str]]:
    """The matching key of a name and the stereo descriptors dropped from it.

    Descriptors are reported as ``L``, ``D``, ``R``, ``S``, ``+`` or ``-``;
    racemic or several-centre descriptors (``DL``, ``(RS)``, ``(2S,3R)``,
    ``(±)``) are dropped without being reported.
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    for letter, spelled in _GREEK.items():
        text = text.replace(letter, spelled)
    text = text.strip()
    found: set[str] = set()

    def drop(m: re.Match[str]) -> str:
        letter = m.group("letter")
        if letter is not None:
            if letter != "l" and sum(ch.isalpha() for ch in m.string[m.end() :]) < _D_MIN_LETTERS:
                return m.group(0)
            if letter in ("l", "d"):
                found.add(letter.upper())
            rotation = m.group("rot")
        else:
            rotation = m.group("paren")
            centre = re.fullmatch(r"\(\d*([rs])\)", rotation)
            if centre:
                found.add(centre.group(1).upper())
        if rotation in ("(+)",):
            found.add("+")
        elif rotation in ("(-)", "(\u2212)"):
            found.add("-")
        return " "

    text = _STEREO_RE.sub(drop, text)
    return "".join(ch for ch in text if ch.isalnum()), frozenset(found)


def _exact_form(name: str) -> str:
    """A name as compared with case-sensitive synonyms: NFKC, surrounding spaces stripped."""
    return unicodedata.normalize("NFKC", name).strip()


def _stereo_conflict(query: frozenset[str], declared: frozenset[str]) -> bool:
    """Whether a name's descriptors contradict the ones an analyte's own names carry.

    ``D-Serine`` contradicts an analyte named ``L-Serine``; a descriptor of a system the
    analyte's names do not use (``(S)-`` for an analyte only named ``L-``) does not.
    """
    return any(_OPPOSITE[d] in declared and d not in declared for d in query)


@dataclass(frozen=True)
class Analyte:
    """One analyte of the catalog.

    Attributes mirror the CSV columns (see ``data/README.md``); ``class_``
    holds the ``class`` column. ``synonyms`` match case-insensitively after
    :func:`normalize_name`, ``exact_synonyms`` only as written (case and
    all). ``units`` maps canonical unit strings to the factor that multiplies
    a value in that unit to give the default unit; it always contains the
    default unit with factor 1.

    Examples
    --------
    >>> from hikisig.catalog import load_catalog
    >>> ua = load_catalog().get("uric_acid")
    >>> ua.default_unit
    'mg/dL'
    >>> round(297.4 * ua.factor("umol/L"), 2)
    5.0
    """

    id: str
    display_name: str
    synonyms: tuple[str, ...]
    exact_synonyms: tuple[str, ...]
    class_: str
    subclass: str | None
    chain_length: int | None
    double_bonds: int | None
    hydroxy: bool | None
    dicarboxylic: bool | None
    hmdb: str | None
    kegg: str | None
    loinc: str | None
    default_unit: str
    units: dict[str, float] = field(hash=False)
    matrix: tuple[str, ...]
    notes: str | None

    @property
    def names(self) -> tuple[str, ...]:
        """The names matched after normalisation: id, display name and synonyms.

        The case-sensitive :attr:`exact_synonyms` and the HMDB and KEGG ids
        also match (see :meth:`Catalog.match`) but are not listed here.
        """
        return (self.id, self.display_name, *self.synonyms)

    def factor(self, unit: str) -> float:
        """Return the factor converting a value in ``unit`` to the default unit.

        Parameters
        ----------
        unit : str
            Any spelling understood by :func:`~hikisig.catalog.normalize_unit`.

        Returns
        -------
        float
            Multiply a value in ``unit`` by this to express it in
            :attr:`default_unit`.

        Raises
        ------
        UnknownUnitError
            If the unit is not accepted for this analyte; the message names
            the analyte, the unit given and the accepted units.

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> load_catalog().get("ornithine").factor("nmol/mL")
        1.0
        """
        if not isinstance(unit, str):
            raise UnknownUnitError(self.id, repr(unit), tuple(self.units), self.display_name)
        canonical = normalize_unit(unit)
        try:
            return self.units[canonical]
        except KeyError:
            raise UnknownUnitError(self.id, unit, tuple(self.units), self.display_name) from None


class Catalog:
    """A validated collection of analytes with name resolution.

    Usually obtained from :func:`load_catalog`. Iterating yields
    :class:`Analyte` objects in file order; ``in`` and :meth:`get` take ids.

    Parameters
    ----------
    analytes : iterable of Analyte
        The analytes; ids must be unique.
    source : str, optional
        Where the analytes come from (used in error messages).
    lines : mapping of str to int, optional
        CSV line number of each analyte id (used in error messages).

    Raises
    ------
    ValueError
        If an id occurs twice, two analytes share a normalised name, or a
        case-sensitive synonym, an HMDB id or a KEGG id belongs to two
        analytes (or a case-sensitive synonym is another analyte's name).

    Examples
    --------
    >>> from hikisig.catalog import load_catalog
    >>> cat = load_catalog()
    >>> cat.resolve("Orn").id
    'ornithine'
    >>> "arginine" in cat
    True
    """

    def __init__(
        self,
        analytes: Iterable[Analyte],
        source: str = "<catalog>",
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self.source = source
        self._lines = dict(lines or {})
        self._analytes: dict[str, Analyte] = {}
        for analyte in analytes:
            if analyte.id in self._analytes:
                raise ValueError(f"{source}: duplicate analyte id {analyte.id!r}")
            self._analytes[analyte.id] = analyte
        # normalised key -> id, for id, display name and synonyms
        self._lookup: dict[str, str] = {}
        # normalised keys of each analyte's id and display name (an "exact" match)
        self._own_keys: dict[str, frozenset[str]] = {}
        # stereo descriptors carried by each analyte's own names
        self._stereo: dict[str, frozenset[str]] = {}
        # derived acylcarnitine keys ("O-<acyl>carnitine") -> id
        self._derived: dict[str, str] = {}
        # case-sensitive synonyms, HMDB and KEGG ids -> id
        self._exact: dict[str, str] = {}
        self._hmdb: dict[str, str] = {}
        self._kegg: dict[str, str] = {}
        self._build_lookup()

    def _where(self, analyte_id: str) -> str:
        line = self._lines.get(analyte_id)
        return f"{analyte_id!r} (line {line})" if line is not None else repr(analyte_id)

    def _column_error(self, analyte_id: str, column: str, value: str, expected: str) -> ValueError:
        line = self._lines.get(analyte_id)
        if line is not None:
            return _fail(self.source, line, column, value, expected)
        return ValueError(f"{self.source}: analyte {analyte_id!r}, column {column!r}: {value!r}: {expected}")

    def _build_lookup(self) -> None:
        first_name: dict[str, str] = {}
        derived: dict[str, set[str]] = {}
        for analyte in self._analytes.values():
            declared: set[str] = set()
            for name in analyte.names:
                key, stereo = _normalize(name)
                declared |= stereo
                if not key:
                    raise ValueError(
                        f"{self.source}: analyte {self._where(analyte.id)}: "
                        f"name {name!r} has no letters or digits"
                    )
                other = self._lookup.get(key)
                if other is None:
                    self._lookup[key] = analyte.id
                    first_name[key] = name
                elif other != analyte.id:
                    raise ValueError(
                        f"{self.source}: name {name!r} of analyte {self._where(analyte.id)} "
                        f"and name {first_name[key]!r} of analyte {self._where(other)} "
                        f"both normalise to {key!r}; a name must identify one analyte"
                    )
                if (
                    analyte.class_ == "acylcarnitine"
                    and key.endswith(_CARNITINE)
                    and len(key) > len(_CARNITINE)
                    and not name.strip().casefold().startswith("o-")
                ):
                    derived.setdefault("o" + key, set()).add(analyte.id)
            self._own_keys[analyte.id] = frozenset(
                {normalize_name(analyte.id), normalize_name(analyte.display_name)}
            )
            self._stereo[analyte.id] = frozenset(declared)
        # A derived name never overrides a listed one, and one derived for two analytes is dropped.
        self._derived = {
            key: next(iter(ids)) for key, ids in derived.items() if len(ids) == 1 and key not in self._lookup
        }
        # Raw names of each analyte, to check that a case-sensitive synonym does not take a
        # name another analyte lists.
        raw_owner: dict[str, str] = {}
        for analyte in self._analytes.values():
            for name in analyte.names:
                raw_owner.setdefault(_exact_form(name), analyte.id)
        for analyte in self._analytes.values():
            for synonym in analyte.exact_synonyms:
                text = _exact_form(synonym)
                if not text:
                    raise self._column_error(analyte.id, "exact_synonyms", synonym, "empty synonym")
                if _HMDB_QUERY.match(text) or _KEGG_QUERY.match(text):
                    raise self._column_error(
                        analyte.id,
                        "exact_synonyms",
                        synonym,
                        "looks like an HMDB or KEGG id; put ids in the hmdb and kegg columns",
                    )
                other = self._exact.get(text)
                if other is not None:
                    raise self._column_error(
                        analyte.id,
                        "exact_synonyms",
                        synonym,
                        f"exact synonym already claimed by analyte {self._where(other)}; "
                        "an exact synonym must identify one analyte",
                    )
                owner = raw_owner.get(text, analyte.id)
                if owner != analyte.id:
                    raise self._column_error(
                        analyte.id,
                        "exact_synonyms",
                        synonym,
                        f"is also a name of analyte {self._where(owner)}; "
                        "an exact synonym must identify one analyte",
                    )
                self._exact[text] = analyte.id
            for column, code, index in (
                ("hmdb", analyte.hmdb, self._hmdb),
                ("kegg", analyte.kegg, self._kegg),
            ):
                if code is None:
                    continue
                other = index.get(code)
                if other is not None:
                    raise self._column_error(
                        analyte.id,
                        column,
                        code,
                        f"also the {column.upper()} id of analyte {self._where(other)}; "
                        "an id must identify one analyte",
                    )
                index[code] = analyte.id

    # -- container protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self._analytes)

    def __iter__(self) -> Iterator[Analyte]:
        return iter(self._analytes.values())

    def __contains__(self, analyte_id: object) -> bool:
        return isinstance(analyte_id, str) and analyte_id in self._analytes

    def __repr__(self) -> str:
        return f"Catalog({len(self)} analytes from {self.source})"

    @property
    def ids(self) -> tuple[str, ...]:
        """Analyte ids in file order."""
        return tuple(self._analytes)

    # -- lookups ------------------------------------------------------------
    def get(self, analyte_id: str) -> Analyte:
        """Return the analyte with this id.

        Parameters
        ----------
        analyte_id : str
            A catalog id such as ``"ornithine"`` or ``"c16"``.

        Raises
        ------
        KeyError
            If there is no such id; the message names the id.

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> load_catalog().get("c16").display_name
        'Palmitoylcarnitine (C16)'
        """
        try:
            return self._analytes[analyte_id]
        except KeyError:
            raise KeyError(
                f"unknown analyte id {analyte_id!r} in {self.source} (use resolve() to look up a name)"
            ) from None

    def match(self, name: str) -> tuple[Analyte | None, MatchKind]:
        """Return the analyte a name refers to and how the name matched.

        The name is compared in this order; the first hit wins:

        1. Case-sensitive synonyms (``exact_synonyms`` column), compared with
           the name as written after Unicode NFKC and stripping surrounding
           spaces: ``GLU`` is glucose although ``Glu`` (normalised ``glu``)
           is glutamic acid.
        2. Accession numbers: an HMDB id in the 7-digit (``HMDB0000148``) or
           the old 5-digit form (``HMDB00148``), or a KEGG COMPOUND id
           (``C00077``, ``cpd:C00077``), compared with the ``hmdb`` and
           ``kegg`` columns.
        3. The :func:`normalize_name` key of the name against the keys of
           every analyte's id, display name and synonyms (case, spaces,
           punctuation and stereo descriptors do not matter), then against
           the ``O-<acyl>carnitine`` names derived for acylcarnitines (so
           ``O-hexanoyl-L-carnitine`` finds hexanoylcarnitine). A name whose
           stereo descriptor contradicts the analyte's own names does not
           match: ``D-Serine`` is not the analyte named ``L-Serine``, and
           ``D-Lactate`` is not ``L-Lactate``; ``DL-``, ``(RS)-`` or a
           descriptor of another system (``(S)-`` for an ``L-`` analyte) are
           accepted.
        4. For column names mangled by R's ``make.names``, a leading ``X``
           followed by a dot or a digit is dropped and steps 1-3 are tried
           again (``X2.Aminoadipic.acid``; dots vanish in step 3 anyway).

        The kind is ``"exact"`` when the name is the analyte's id or display
        name (compared after normalisation: ``l-ornithine`` is exactly
        ``L-Ornithine``), one of its case-sensitive synonyms, or its HMDB or
        KEGG id; ``"synonym"`` when it matched through a synonym, a derived
        acylcarnitine name or the ``make.names`` repair; ``"unmatched"``
        (with ``None``) otherwise, and for anything that is not a string.

        Parameters
        ----------
        name : str
            A name from a laboratory export, a publication or a user.

        Returns
        -------
        tuple of (Analyte or None, str)
            The analyte and one of :data:`MATCH_KINDS`.

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> cat = load_catalog()
        >>> analyte, how = cat.match("Ornithine")
        >>> analyte.id, how
        ('ornithine', 'exact')
        >>> cat.match("Orn")[1]
        'synonym'
        >>> [cat.match(n)[0].id for n in ("GLU", "Glu", "glu")]
        ['glucose', 'glutamic_acid', 'glutamic_acid']
        >>> cat.match("HMDB00214")[0].id, cat.match("HMDB00214")[1]
        ('ornithine', 'exact')
        >>> cat.match("hexanoyl-L-carnitine")[0].id
        'c6'
        >>> cat.match("no such analyte")
        (None, 'unmatched')
        """
        if not isinstance(name, str):
            return None, "unmatched"
        text = _exact_form(name)
        candidates: list[tuple[str, bool]] = [(text, False)]
        if _MAKE_NAMES_X.match(text):
            candidates.append((text[1:], True))
        for candidate, repaired in candidates:
            analyte, kind = self._match_one(candidate)
            if analyte is not None:
                return analyte, "synonym" if repaired else kind
        return None, "unmatched"

    def _match_one(self, text: str) -> tuple[Analyte | None, MatchKind]:
        if not text:
            return None, "unmatched"
        hit = self._exact.get(text)
        if hit is not None:
            return self._analytes[hit], "exact"
        m = _HMDB_QUERY.match(text)
        if m:
            hit = self._hmdb.get("HMDB" + m.group(1).rjust(7, "0"))
            if hit is not None:
                return self._analytes[hit], "exact"
        m = _KEGG_QUERY.match(text)
        if m:
            hit = self._kegg.get(m.group(1).upper())
            if hit is not None:
                return self._analytes[hit], "exact"
        key, stereo = _normalize(text)
        if not key:
            return None, "unmatched"
        hit = self._lookup.get(key)
        kind: MatchKind = "synonym"
        if hit is not None:
            if key in self._own_keys[hit]:
                kind = "exact"
        else:
            hit = self._derived.get(key)
        if hit is None or _stereo_conflict(stereo, self._stereo[hit]):
            return None, "unmatched"
        return self._analytes[hit], kind

    def resolve(self, name: str) -> Analyte | None:
        """Return the analyte a name refers to, or None.

        The analyte of :meth:`match`, which documents the matching rules:
        case-sensitive synonyms first, then HMDB and KEGG ids, then the
        normalised name (ignoring case, spaces, punctuation and stereo
        descriptors such as ``L-`` or ``(S)-``), then the ``make.names``
        repair (``X2.Aminoadipic.acid``).

        Parameters
        ----------
        name : str
            A name from a laboratory export, a publication or a user.

        Returns
        -------
        Analyte or None
            None if no analyte matches (or ``name`` is not a string).

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> cat = load_catalog()
        >>> cat.resolve(" C18 : 1 ").id
        'c18_1'
        >>> cat.resolve("PC ae C34:1").id
        'pc_ae_c34_1'
        >>> cat.resolve("not an analyte") is None
        True
        """
        return self.match(name)[0]

    def factor(self, analyte_id: str, unit: str) -> float:
        """Return the factor converting ``unit`` to the analyte's default unit.

        Parameters
        ----------
        analyte_id : str
            Catalog id.
        unit : str
            Unit of the values to convert (any spelling :func:`normalize_unit` knows).

        Raises
        ------
        KeyError
            Unknown id.
        UnknownUnitError
            Unit not accepted for this analyte.

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> round(load_catalog().factor("total_bilirubin", "umol/L") * 17.1, 4)
        1.0
        """
        return self.get(analyte_id).factor(unit)

    def by_class(self, class_: str) -> list[Analyte]:
        """Return the analytes of one class, in file order.

        Parameters
        ----------
        class_ : str
            One of :data:`CLASSES`.

        Raises
        ------
        ValueError
            If ``class_`` is not in the controlled vocabulary.

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> longs = [a.id for a in load_catalog().by_class("acylcarnitine")
        ...          if a.subclass == "long"]
        >>> "c16" in longs and "c18_1" in longs
        True
        """
        if class_ not in CLASSES:
            raise ValueError(f"unknown class {class_!r}; known classes: {', '.join(sorted(CLASSES))}")
        return [a for a in self._analytes.values() if a.class_ == class_]

    def to_frame(self) -> pd.DataFrame:
        """Return the catalog as a DataFrame indexed by id.

        One column per CSV field (``class`` keeps its CSV name); synonyms,
        exact synonyms, units and matrix are the ``|``-separated strings of
        the CSV, integer
        and boolean columns use pandas' nullable dtypes. Suitable as AnnData
        ``var`` annotations.

        Examples
        --------
        >>> from hikisig.catalog import load_catalog
        >>> df = load_catalog().to_frame()
        >>> df.loc["ornithine", "hmdb"]
        'HMDB0000214'
        """
        import pandas as pd  # imported here: the catalog itself does not need pandas

        records = []
        for a in self._analytes.values():
            records.append(
                {
                    "id": a.id,
                    "display_name": a.display_name,
                    "synonyms": "|".join(a.synonyms),
                    "exact_synonyms": "|".join(a.exact_synonyms),
                    "class": a.class_,
                    "subclass": a.subclass,
                    "chain_length": a.chain_length,
                    "double_bonds": a.double_bonds,
                    "hydroxy": a.hydroxy,
                    "dicarboxylic": a.dicarboxylic,
                    "hmdb": a.hmdb,
                    "kegg": a.kegg,
                    "loinc": a.loinc,
                    "default_unit": a.default_unit,
                    "units": "|".join(f"{u}={_format_factor(f)}" for u, f in a.units.items()),
                    "matrix": "|".join(a.matrix),
                    "notes": a.notes,
                }
            )
        frame = pd.DataFrame.from_records(records, columns=list(COLUMNS)).set_index("id")
        frame = frame.astype(
            {
                "chain_length": "Int64",
                "double_bonds": "Int64",
                "hydroxy": "boolean",
                "dicarboxylic": "boolean",
            }
        )
        return frame


def _format_factor(value: float) -> str:
    return format(value, ".10g")


# -- loading ------------------------------------------------------------------
def _fail(source: str, line: int, column: str, value: str, expected: str) -> ValueError:
    return ValueError(f"{source}: line {line}, column {column!r}: {value!r}: {expected}")


def _parse_int(source: str, line: int, column: str, value: str) -> int | None:
    if value == "":
        return None
    if not re.fullmatch(r"\d+", value):
        raise _fail(source, line, column, value, "expected a non-negative integer or empty")
    return int(value)


def _parse_bool(source: str, line: int, column: str, value: str) -> bool | None:
    if value == "":
        return None
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise _fail(source, line, column, value, "expected 'true', 'false' or empty") from None


def _parse_units(source: str, line: int, raw: str, default_unit: str) -> dict[str, float]:
    units: dict[str, float] = {}
    for entry in raw.split("|"):
        unit_text, sep, factor_text = entry.partition("=")
        unit_text = unit_text.strip()
        factor_text = factor_text.strip()
        if not sep or not unit_text or not factor_text:
            raise _fail(source, line, "units", raw, f"malformed entry {entry!r}; expected unit=factor")
        try:
            factor = float(factor_text)
        except ValueError:
            raise _fail(
                source, line, "units", raw, f"factor {factor_text!r} of {unit_text!r} is not a number"
            ) from None
        if not math.isfinite(factor) or factor <= 0:
            raise _fail(source, line, "units", raw, f"factor of {unit_text!r} must be positive")
        unit = normalize_unit(unit_text)
        if unit in units:
            raise _fail(source, line, "units", raw, f"unit {unit!r} is listed twice")
        units[unit] = factor
    if units.get(default_unit) != 1.0:
        raise _fail(
            source,
            line,
            "units",
            raw,
            f"must list the default unit {default_unit!r} with factor 1 (e.g. '{default_unit}=1')",
        )
    # Default unit first, the rest in file order.
    return {default_unit: 1.0, **{u: f for u, f in units.items() if u != default_unit}}


def _parse_row(source: str, line: int, row: Mapping[str, str]) -> Analyte:
    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    for column in _REQUIRED:
        if values[column] == "":
            raise _fail(source, line, column, "", "required field is empty")
    analyte_id = values["id"]
    if not _ID_RE.match(analyte_id):
        raise _fail(source, line, "id", analyte_id, "expected lower-case snake_case (a-z, 0-9, _)")
    class_ = values["class"]
    if class_ not in CLASSES:
        raise _fail(source, line, "class", class_, f"expected one of {', '.join(sorted(CLASSES))}")
    chain_length = _parse_int(source, line, "chain_length", values["chain_length"])
    double_bonds = _parse_int(source, line, "double_bonds", values["double_bonds"])
    hydroxy = _parse_bool(source, line, "hydroxy", values["hydroxy"])
    dicarboxylic = _parse_bool(source, line, "dicarboxylic", values["dicarboxylic"])
    subclass = values["subclass"] or None
    if subclass is not None and subclass not in SUBCLASSES[class_]:
        raise _fail(
            source,
            line,
            "subclass",
            subclass,
            f"expected one of {', '.join(sorted(SUBCLASSES[class_]))} for class {class_!r}",
        )
    if class_ == "acylcarnitine":
        if chain_length is None:
            raise _fail(source, line, "chain_length", "", "required for acylcarnitines")
        try:
            expected_subclass = acylcarnitine_subclass(chain_length)
        except ValueError as exc:
            raise _fail(source, line, "chain_length", str(chain_length), str(exc)) from None
        if subclass != expected_subclass:
            raise _fail(
                source,
                line,
                "subclass",
                subclass or "",
                f"acylcarnitine with chain length {chain_length} must be {expected_subclass!r}",
            )
        for column, flag in (("hydroxy", hydroxy), ("dicarboxylic", dicarboxylic)):
            if flag is None:
                raise _fail(source, line, column, "", "'true' or 'false' required for acylcarnitines")
    else:
        for column, flag in (("hydroxy", hydroxy), ("dicarboxylic", dicarboxylic)):
            if flag is not None:
                raise _fail(source, line, column, values[column], "only used for acylcarnitines")
    hmdb = values["hmdb"] or None
    if hmdb is not None and not _HMDB_RE.match(hmdb):
        raise _fail(source, line, "hmdb", hmdb, "expected HMDB followed by 7 digits (HMDB0000214)")
    kegg = values["kegg"] or None
    if kegg is not None and not _KEGG_RE.match(kegg):
        raise _fail(
            source, line, "kegg", kegg, "expected a KEGG COMPOUND id: C followed by 5 digits (C00077)"
        )
    loinc = values["loinc"] or None
    if loinc is not None and not _LOINC_RE.match(loinc):
        raise _fail(source, line, "loinc", loinc, "expected a LOINC code such as 20652-4")
    default_unit = normalize_unit(values["default_unit"])
    if values["units"] == "":
        raise _fail(source, line, "units", "", f"must list at least '{default_unit}=1'")
    units = _parse_units(source, line, values["units"], default_unit)
    synonyms = tuple(s.strip() for s in values["synonyms"].split("|") if s.strip())
    exact_synonyms: list[str] = []
    for entry in values["exact_synonyms"].split("|"):
        text = _exact_form(entry)
        if not text:
            continue
        if text in exact_synonyms:
            raise _fail(source, line, "exact_synonyms", text, "listed twice")
        exact_synonyms.append(text)
    matrix = tuple(m.strip() for m in values["matrix"].split("|") if m.strip())
    for m in matrix:
        if m not in MATRICES:
            raise _fail(source, line, "matrix", values["matrix"], f"expected {', '.join(sorted(MATRICES))}")
    return Analyte(
        id=analyte_id,
        display_name=values["display_name"],
        synonyms=synonyms,
        exact_synonyms=tuple(exact_synonyms),
        class_=class_,
        subclass=subclass,
        chain_length=chain_length,
        double_bonds=double_bonds,
        hydroxy=hydroxy,
        dicarboxylic=dicarboxylic,
        hmdb=hmdb,
        kegg=kegg,
        loinc=loinc,
        default_unit=default_unit,
        units=units,
        matrix=matrix,
        notes=values["notes"] or None,
    )


def _parse_catalog(text: str, source: str) -> Catalog:
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    # The optional columns may be left out (catalogs written before they existed).
    expected = tuple(c for c in COLUMNS if c in header or c not in _OPTIONAL)
    if header != expected:
        missing = [c for c in COLUMNS if c not in header and c not in _OPTIONAL]
        extra = [c for c in header if c not in COLUMNS]
        raise ValueError(
            f"{source}: line 1: header must be {','.join(COLUMNS)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
            + ("; columns out of order" if not missing and not extra else "")
        )
    reader.fieldnames = list(header)
    analytes: list[Analyte] = []
    lines: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            raise ValueError(f"{source}: line {line}: more fields than the {len(header)} columns")
        if all((v or "").strip() == "" for v in row.values()):
            continue
        analyte = _parse_row(source, line, row)
        if analyte.id in lines:
            raise _fail(
                source, line, "id", analyte.id, f"duplicate id (first defined on line {lines[analyte.id]})"
            )
        lines[analyte.id] = line
        analytes.append(analyte)
    return Catalog(analytes, source=source, lines=lines)


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    data = resources.files("hikisig.catalog") / "data" / "analytes.csv"
    return _parse_catalog(data.read_text(encoding="utf-8"), source="hikisig/catalog/data/analytes.csv")


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Load and validate an analyte catalog.

    Parameters
    ----------
    path : str or path-like, optional
        A catalog CSV with the columns of :data:`COLUMNS` (``exact_synonyms``
        and ``kegg`` may be left out). Without a path the catalog shipped
        with hikisig is returned (parsed once and cached).

    Returns
    -------
    Catalog

    Raises
    ------
    ValueError
        With the CSV line number, column and value, for a duplicate id, an
        empty required field, a non-integer chain length or double-bond count,
        a malformed ``units`` entry or one without the default unit at factor
        1, an HMDB id not of the form ``HMDB`` + 7 digits, a KEGG id not of
        the form ``C`` + 5 digits, a malformed LOINC code, a case-sensitive
        synonym listed twice; and, naming both analytes, two analytes whose
        names normalise to the same key, or that claim the same
        case-sensitive synonym, HMDB id or KEGG id.

    Examples
    --------
    >>> from hikisig.catalog import load_catalog
    >>> cat = load_catalog()
    >>> len(cat) >= 150
    True
    """
    if path is None:
        return _default_catalog()
    p = Path(path)
    return _parse_catalog(p.read_text(encoding="utf-8"), source=str(p))


def resolve(name: str) -> Analyte | None:
    """Resolve a name against the default catalog.

    Shortcut for ``load_catalog().resolve(name)``.

    Examples
    --------
    >>> from hikisig.catalog import resolve
    >>> resolve("L-ornithine").id
    'ornithine'
    """
    return _default_catalog().resolve(name)

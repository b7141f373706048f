"""Unit strings: one canonical spelling for each unit the catalog knows.

Laboratory exports spell the same unit in many ways (``µmol/l``, ``umol/L``,
``μM``, ``nmol/mL``, ``IU/L``...). :func:`normalize_unit` maps them onto the
canonical spellings of :data:`CANONICAL_UNITS`, which are the keys used in the
``units`` column of the analyte catalog. Conversion factors themselves live in
the catalog data (they depend on the analyte's molar mass), not here.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CANONICAL_UNITS", "UnknownUnitError", "normalize_unit"]

#: Canonical unit spellings used in the catalog's ``default_unit`` and ``units`` columns.
CANONICAL_UNITS: tuple[str, ...] = (
    "umol/L",
    "mmol/L",
    "nmol/L",
    "mg/dL",
    "g/dL",
    "ug/dL",
    "g/L",
    "mg/L",
    "ng/mL",
    "U/L",
    "ukat/L",
    "mEq/L",
    "uEq/L",
    "mmol/mol",
    "mL/min/1.73m2",
    "%",
)

# Compact, lower-case spelling (see ``_compact``) -> canonical spelling.
# Entries that look like a different unit are exact equivalents: 1 nmol/mL is
# 1 umol/L, 1 ug/mL is 1 mg/L, 1 ug/L is 1 ng/mL, 1 IU/L of enzyme activity is
# 1 U/L, 1 mg/100 mL is 1 mg/dL.
_ALIASES: dict[str, str] = {
    # micromolar
    "umol/l": "umol/L",
    "um": "umol/L",
    "umoll": "umol/L",
    "umol/dm3": "umol/L",
    "micromol/l": "umol/L",
    "micromolar": "umol/L",
    "nmol/ml": "umol/L",
    "pmol/ul": "umol/L",
    # millimolar
    "mmol/l": "mmol/L",
    "mm": "mmol/L",
    "mmoll": "mmol/L",
    "mmol/dm3": "mmol/L",
    "millimol/l": "mmol/L",
    "millimolar": "mmol/L",
    "umol/ml": "mmol/L",
    # nanomolar
    "nmol/l": "nmol/L",
    "nm": "nmol/L",
    "nmoll": "nmol/L",
    "nanomol/l": "nmol/L",
    "nanomolar": "nmol/L",
    "pmol/ml": "nmol/L",
    # mass concentrations
    "mg/dl": "mg/dL",
    "mg/100ml": "mg/dL",
    "mg%": "mg/dL",
    "g/dl": "g/dL",
    "g/100ml": "g/dL",
    "ug/dl": "ug/dL",
    "ug/100ml": "ug/dL",
    "g/l": "g/L",
    "mg/l": "mg/L",
    "ug/ml": "mg/L",
    "ng/ml": "ng/mL",
    "ug/l": "ng/mL",
    # enzyme activity
    "u/l": "U/L",
    "iu/l": "U/L",
    "units/l": "U/L",
    "unit/l": "U/L",
    "ukat/l": "ukat/L",
    # equivalents
    "meq/l": "mEq/L",
    "ueq/l": "uEq/L",
    # ratios and rates
    "mmol/mol": "mmol/mol",
    "%": "%",
    "percent": "%",
    "ml/min/1.73m2": "mL/min/1.73m2",
    "ml/min/1.73m^2": "mL/min/1.73m2",
    "ml/min/173m2": "mL/min/1.73m2",
}

_SPACES = re.compile(r"\s+")


class UnknownUnitError(ValueError):
    """A unit that the catalog does not accept for an analyte.

    Parameters
    ----------
    analyte_id : str
        Catalog id of the analyte.
    unit : str
        The unit as given by the caller.
    accepted : tuple of str
        Canonical units accepted for the analyte (default unit first).
    display_name : str, optional
        Human name of the analyte, used in the message.

    Examples
    --------
    >>> err = UnknownUnitError("uric_acid", "mg/g", ("mg/dL", "umol/L"))
    >>> "mg/g" in str(err) and "umol/L" in str(err)
    True
    """

    def __init__(
        self,
        analyte_id: str,
        unit: str,
        accepted: tuple[str, ...],
        display_name: str | None = None,
    ) -> None:
        self.analyte_id = analyte_id
        self.unit = unit
        self.accepted = tuple(accepted)
        name = f"{analyte_id!r}" + (f" ({display_name})" if display_name else "")
        canonical = normalize_unit(unit) if isinstance(unit, str) else unit
        shown = f"{unit!r}" + (f" (read as {canonical!r})" if canonical != unit else "")
        super().__init__(
            f"analyte {name}: unit {shown} is not accepted; "
            f"accepted units: {', '.join(self.accepted)} (default {self.accepted[0]})"
            if self.accepted
            else f"analyte {name}: unit {shown} is not accepted; no units are defined"
        )


def _compact(unit: str) -> str:
    """Return the lookup form of a unit string: NFKC, micro as 'u', no spaces, lower case."""
    text = unicodedata.normalize("NFKC", unit).strip()
    # NFKC turns MICRO SIGN into GREEK SMALL LETTER MU; handle both anyway.
    text = text.replace("\u00b5", "u").replace("\u03bc", "u").replace("\u039c", "u")
    text = _SPACES.sub("", text)
    text = text.lower()
    text = text.replace("mcg", "ug").replace("mcmol", "umol")
    text = text.replace("litre", "l").replace("liter", "l")
    # After lower-casing, 'uM'/'mM'/'nM' become 'um'/'mm'/'nm': the aliases
    # read them as molar concentrations (the catalog has no lengths).
    return text.lower()


def normalize_unit(unit: str) -> str:
    """Return the canonical spelling of a unit string.

    Handles the micro sign and Greek mu (``µ``, ``μ``) as ``u``, ``mcg`` as
    ``ug``, upper or lower case ``l``/``L``, spaces, molar shorthand (``uM``,
    ``µM`` -> ``umol/L``; ``mM`` -> ``mmol/L``; ``nM`` -> ``nmol/L``) and exact
    equivalents (``nmol/mL`` -> ``umol/L``, ``IU/L`` -> ``U/L``,
    ``mg/100 mL`` -> ``mg/dL``, ``ug/mL`` -> ``mg/L``, ``ug/L`` -> ``ng/mL``).
    A string that is not recognised is returned stripped but otherwise
    unchanged.

    Parameters
    ----------
    unit : str
        A unit as written in a laboratory export.

    Returns
    -------
    str
        One of :data:`CANONICAL_UNITS`, or the stripped input if unknown.

    Examples
    --------
    >>> normalize_unit("µmol/l")
    'umol/L'
    >>> normalize_unit(" uM ")
    'umol/L'
    >>> normalize_unit("mg/dl")
    'mg/dL'
    >>> normalize_unit("furlongs")
    'furlongs'
    """
    stripped = unit.strip()
    return _ALIASES.get(_compact(stripped), stripped)

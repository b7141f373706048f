"""Analyte catalog: names, synonyms, codes, classes and units of blood analytes.

The catalog sits at the bottom of hikisig: it imports nothing else from the
package. It ships a validated CSV of amino acids, biogenic amines,
acylcarnitines, cholesterol esters, (lyso)phosphatidylcholines,
sphingomyelins, organic and bile acids and routine serum chemistry, and
resolves the names laboratory exports use (``Orn``, ``C18:1``,
``lysoPC a C16:0``, ``T-Bil``, ``hexanoyl-L-carnitine``, HMDB and KEGG ids...)
to stable ids, telling how each name matched (``Catalog.match``).

Examples
--------
>>> from hikisig.catalog import load_catalog, resolve, normalize_unit
>>> resolve("Orn").id
'ornithine'
>>> resolve("GLU").id, resolve("Glu").id
('glucose', 'glutamic_acid')
>>> cat = load_catalog()
>>> round(5 / cat.factor("uric_acid", "umol/L"), 1)
297.4
>>> normalize_unit("µmol/l")
'umol/L'
"""

from hikisig.catalog.analytes import (
    ACYLCARNITINE_SUBCLASSES,
    CLASSES,
    COLUMNS,
    MATCH_KINDS,
    MATRICES,
    SUBCLASSES,
    Analyte,
    Catalog,
    MatchKind,
    acylcarnitine_subclass,
    load_catalog,
    normalize_name,
    resolve,
)
from hikisig.catalog.units import CANONICAL_UNITS, UnknownUnitError, normalize_unit

__all__ = [
    "ACYLCARNITINE_SUBCLASSES",
    "CANONICAL_UNITS",
    "CLASSES",
    "COLUMNS",
    "MATCH_KINDS",
    "MATRICES",
    "SUBCLASSES",
    "Analyte",
    "Catalog",
    "MatchKind",
    "UnknownUnitError",
    "acylcarnitine_subclass",
    "load_catalog",
    "normalize_name",
    "normalize_unit",
    "resolve",
]

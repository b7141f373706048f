"""Check an Excel workbook before it is parsed: no zip bombs.

An ``.xlsx`` file is a zip archive of XML parts. A few megabytes can hold a
sheet that expands to gigabytes of XML (or declares millions of cells), which
openpyxl would load into memory. :func:`check_xlsx` reads only the zip's central
directory and the first bytes of each worksheet and refuses a workbook whose

- parts add up to more than ``max_total`` bytes uncompressed,
- parts are more than ``max_ratio`` times smaller compressed than expanded
  (only parts above 1 MB expanded: small parts may compress very well),
- sheets declare (``<dimension ref="A1:Z99"/>``) more than ``max_cells`` cells,
  more than 1,048,576 rows or 16,384 columns,
- has more than ``max_members`` parts, or is not a zip at all.

The readers call it before every ``pandas.read_excel`` / ``ExcelFile``, so the
CLI and the web app are both protected; the web app also parses in a worker
process with memory and time limits.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hikisig.errors import InputError, Problem

__all__ = ["XlsxLimits", "check_xlsx", "sheet_dimensions"]

MB = 1024 * 1024
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"([A-Z]{1,3})?(\d+)?(?::([A-Z]{1,3})(\d+))?\"")
_SHEET = re.compile(r"^xl/(?:worksheets|chartsheets|dialogsheets)/[^/]+\.xml$", re.IGNORECASE)
_HEAD = 64 * 1024  # bytes of a sheet's XML read to find its <dimension>


@dataclass(frozen=True)
class XlsxLimits:
    """What a workbook may hold (defaults fit lab files of tens of thousands of samples)."""

    max_total: int = 512 * MB
    max_ratio: float = 100.0
    max_cells: int = 20_000_000
    max_members: int = 10_000
    max_rows: int = 1_048_576
    max_cols: int = 16_384


def _col(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - 64)
    return n


def sheet_dimensions(zf: zipfile.ZipFile, name: str) -> tuple[int, int] | None:
    """(rows, columns) a sheet declares in its ``<dimension>``, read from the first 64 kB of its
    XML (decompressed as a stream, never the whole part); None when it declares none."""
    with zf.open(name) as fh:
        head = fh.read(_HEAD)
    m = _DIMENSION.search(head)
    if m is None:
        return None
    c1, r1, c2, r2 = (g.decode() if g else None for g in m.groups())
    if c2 is None or r2 is None:  # a single cell ("A1")
        return (1, 1) if r1 else None
    rows = int(r2) - (int(r1) if r1 else 1) + 1
    cols = _col(c2) - (_col(c1) if c1 else 1) + 1
    return max(rows, 1), max(cols, 1)


def check_xlsx(path: str | Path, limits: XlsxLimits | None = None, *, file: str | None = None) -> None:
    """Refuse (:class:`InputError`) a workbook that would expand beyond ``limits`` (see the module).

    Old ``.xls`` files (not zip archives) are left to their reader. Cheap: reads the central
    directory and 64 kB of each sheet.

    Examples
    --------
    >>> check_xlsx("labs.xlsx")  # doctest: +SKIP
    """
    lim = limits or XlsxLimits()
    p = Path(path)
    shown = file or str(path)

    def refuse(message: str) -> InputError:
        return InputError([Problem(shown, f"refused before reading: {message}")])

    if p.suffix.lower() == ".xls" and not zipfile.is_zipfile(p):
        return
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        message = f"cannot read as Excel: not a valid .xlsx (zip) file ({exc})"
        raise InputError([Problem(shown, message)]) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.max_members:
            raise refuse(f"the workbook has {len(infos)} parts (at most {lim.max_members})")
        total = sum(i.file_size for i in infos)
        if total > lim.max_total:
            raise refuse(f"the workbook expands to {total / MB:.0f} MB (at most {lim.max_total // MB} MB)")
        for i in infos:
            if i.file_size > MB and i.file_size > lim.max_ratio * max(i.compress_size, 1):
                raise refuse(f"part {i.filename} expands {i.file_size / max(i.compress_size, 1):.0f} times "
                             f"(at most {lim.max_ratio:g}): a zip bomb or not a plain workbook")
        cells = 0
        for i in infos:
            if not _SHEET.match(i.filename):
                continue
            try:
                dims = sheet_dimensions(zf, i.filename)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                raise refuse(f"part {i.filename} cannot be read ({exc})") from exc
            if dims is None:
                continue
            rows, cols = dims
            if rows > lim.max_rows or cols > lim.max_cols:
                raise refuse(f"sheet {i.filename} declares {rows} rows x {cols} columns "
                             f"(Excel's limit is {lim.max_rows} x {lim.max_cols})")
            cells += rows * cols
            if cells > lim.max_cells:
                raise refuse(f"the sheets declare {cells} cells (at most {lim.max_cells})")

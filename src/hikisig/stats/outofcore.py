"""Out-of-core case-control statistics over Parquet data larger than memory.

:func:`case_control_parquet` returns the same tidy table as
:func:`hikisig.stats.case_control` for a Parquet file, or a folder of Parquet
files read as one table, without loading the analytes:

1. The row metadata (group, stratum, covariates, severity: a few values per
   participant) is given in memory.
2. **One pass of mergeable sums.** The data are read in tiles (one Parquet row
   group x a range of analyte columns, about ``block_cells`` values). Each tile
   gives, per stratum x group, the count, mean and centred sum of squares of the
   values and of the logs of the positive values (values <= 0 are left out of the
   log scale; nothing is logged with ``additive=True``), and per analyte the normal
   equations ``X'WX``, ``X'Wy``, ``y'Wy`` of the linear model (``y`` shifted by a
   per-analyte reference value). Tiles are merged exactly: means and sums of
   squares with Chan's pairwise formula, normal equations by re-shifting to a
   common reference. Welch and Student t, Hedges g, fold changes with their
   CIs, means, SDs, geometric means and ``log2(value) ~ group * sex + covariates``
   (``value ~ ...`` and differences of means with ``additive=True``) come from these
   sums, as in memory (same kernels).
3. **Column blocks for ranks.** When something rank-based is asked
   (Mann-Whitney U and Cliff's delta, medians and quartiles, correlations with
   severity), a second pass reads blocks of whole columns (about ``block_cells``
   values) and runs the in-memory rank kernels on each block.

Memory is bounded by the block size (plus one Parquet column chunk and the row
metadata), not by the size of the data. Tasks are independent and their
results are merged in a fixed order, so the result does not depend on the
backend or the number of workers: tasks run in threads of this process, or on
a :class:`hikisig.engine.Engine` (loky, Dask), where each task reads its own
tiles from the files (Dask workers need the same paths).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hikisig.errors import InputError, Problem
from hikisig.stats import univariate as uv
from hikisig.stats.casecontrol import (
    TESTS,
    _assemble,
    _block_moments,
    _block_rows,
    _block_task,
    _BlockMoments,
    _blocks,
    _Design,
    _design,
    _Found,
    _map_blocks,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hikisig.engine import Engine

__all__ = ["ParquetSource", "case_control_parquet"]

#: Tiles per task of the pass of sums (fewer, larger tasks for a cluster).
TILES_PER_TASK = 8

_CACHE_LOCK = threading.Lock()
_META_CACHE: dict[tuple[str, int, int], Any] = {}


def _metadata(path: str) -> pq.FileMetaData:
    """The footer of a Parquet file, read once per process (large for many row groups)."""
    import pyarrow.parquet as pq

    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        hit = _META_CACHE.get(key)
    if hit is None:
        hit = pq.read_metadata(path)
        with _CACHE_LOCK:
            if len(_META_CACHE) >= 64:
                _META_CACHE.clear()
            _META_CACHE[key] = hit
    return hit


def _is_number(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t))


#: One row group: (file index, row group in the file, first row in the table, rows).
Piece = tuple[int, int, int, int]


def _read_values(files: Sequence[str], columns: Sequence[str], pieces: Sequence[Piece],
                 na_codes: tuple[float, ...] = ()) -> np.ndarray:
    """Float64 values (rows of ``pieces`` in order x ``columns``), column-major; null and the
    missing-value codes ``na_codes`` = NaN; an infinite value is an error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = sum(p[3] for p in pieces)
    out = np.empty((n, len(columns)), dtype=np.float64, order="F")
    row = 0
    k = 0
    while k < len(pieces):
        fi = pieces[k][0]
        run = [pieces[k][1]]
        k += 1
        while k < len(pieces) and pieces[k][0] == fi:
            run.append(pieces[k][1])
            k += 1
        path = files[fi]
        pf = pq.ParquetFile(path, metadata=_metadata(path))
        table = pf.read_row_groups(run, columns=list(columns), use_threads=True)
        rows = table.num_rows
        for j, name in enumerate(columns):
            col = table.column(j)
            if not _is_number(col.type):
                raise InputError([Problem(path, f"expected numbers, found {col.type}",
                                          column=name)])
            if col.type != pa.float64():
                col = col.cast(pa.float64())
            v = col.to_numpy()
            if na_codes:
                v = np.where(np.isin(v, na_codes), np.nan, v)
            bad = np.flatnonzero(np.isinf(v))
            if bad.size:
                raise InputError([Problem(path, f"infinite value in {bad.size} row(s) (first: row "
                                          f"{int(bad[0]) + 1} of this part): not a measurement",
                                          column=name)])
            out[row:row + rows, j] = v
        row += rows
        del table
    return out


class ParquetSource:
    """A Parquet file, or a folder of Parquet files read as one table (files in name order).

    Only the footers are read here. Every file of a folder must have the columns of
    the first one (files and folders whose name starts with ``.`` or ``_`` are
    skipped).

    Parameters
    ----------
    path : str or Path
        A ``.parquet`` file or a folder holding them (searched recursively).
    na_codes : sequence of float
        Numbers that mean "missing" in the analyte columns (e.g. -9), read as NaN.

    Attributes
    ----------
    path : str
        Absolute path (the same path must be readable by Dask workers).
    files : list of str
        The files, in reading order.
    columns : list of str
    n_rows : int
    pieces : list of (file index, row group, first row, rows)
        The row groups in reading order.
    """

    def __init__(self, path: str | Path, na_codes: Sequence[float] = ()) -> None:
        self.na_codes = tuple(float(c) for c in na_codes)
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise InputError([Problem(str(path), "file or folder not found")])
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.parquet") if f.is_file() and not any(
                part.startswith((".", "_")) for part in f.relative_to(p).parts))
            if not files:
                raise InputError([Problem(str(path), "no .parquet file in this folder")])
        else:
            files = [p]
        self.path = str(p)
        self.files = [str(f) for f in files]
        self.pieces: list[Piece] = []
        problems: list[Problem] = []
        start = 0
        types: dict[str, pa.DataType] = {}
        for i, f in enumerate(self.files):
            try:
                meta = _metadata(f)
                schema = meta.schema.to_arrow_schema()
            except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
                raise InputError([Problem(f, f"not a readable Parquet file ({exc})")]) from exc
            if i == 0:
                self.columns: list[str] = list(schema.names)
                types = {name: schema.field(name).type for name in schema.names}
            else:
                here = set(schema.names)
                problems += [Problem(f, f"no column {c!r} (it is in {self.files[0]})", column=c)
                             for c in self.columns if c not in here]
                problems += [Problem(f, f"expected numbers as in {self.files[0]}, found "
                                     f"{schema.field(c).type}", column=c)
                             for c in self.columns if c in here and _is_number(types[c])
                             and not _is_number(schema.field(c).type)]
            for rg in range(meta.num_row_groups):
                rows = meta.row_group(rg).num_rows
                if rows:
                    self.pieces.append((i, rg, start, rows))
                    start += rows
        if problems:
            raise InputError(problems[:50], total=len(problems))
        self.n_rows = start
        self._types = types

    def is_numeric(self, column: str) -> bool:
        """Whether a column holds numbers (integer, floating point or decimal)."""
        return _is_number(self._types[column])

    def require(self, columns: Sequence[str], numeric: Sequence[str] = ()) -> None:
        """Raise :class:`~hikisig.errors.InputError` naming the file and every missing column
        (or a column of ``numeric`` that does not hold numbers)."""
        have = set(self.columns)
        shown = ", ".join(self.columns[:10]) + (", ..." if len(self.columns) > 10 else "")
        problems = [Problem(self.files[0], f"no column {c!r} (columns: {shown})", column=c)
                    for c in dict.fromkeys(columns) if c not in have]
        problems += [Problem(self.files[0], f"expected numbers, found {self._types[c]}", column=c)
                     for c in dict.fromkeys(numeric) if c in have and not self.is_numeric(c)]
        if problems:
            raise InputError(problems[:50], total=len(problems))

    def read_frame(self, columns: Sequence[str]) -> pd.DataFrame:
        """Some columns of every row as a DataFrame (for the row metadata: keep it small)."""
        import pyarrow.parquet as pq

        self.require(columns)
        parts = [pq.ParquetFile(f, metadata=_metadata(f)).read(columns=list(columns)).to_pandas()
                 for f in self.files]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def read_values(self, columns: Sequence[str], pieces: Sequence[Piece] | None = None
                    ) -> np.ndarray:
        """Float64 values of some numeric columns (all rows, or the row groups ``pieces``)."""
        self.require(columns, numeric=columns)
        return _read_values(self.files, columns, self.pieces if pieces is None else pieces,
                            self.na_codes)

    def iter_values(self, columns: Sequence[str], max_cells: int = 4_000_000
                    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first row, values)`` for runs of row groups of about ``max_cells`` values
        (at least one row group each), in row order."""
        self.require(columns, numeric=columns)
        run: list[Piece] = []
        cells = 0
        for piece in self.pieces:
            if run and cells + piece[3] * len(columns) > max_cells:
                yield run[0][2], _read_values(self.files, columns, run, self.na_codes)
                run, cells = [], 0
            run.append(piece)
            cells += piece[3] * len(columns)
        if run:
            yield run[0][2], _read_values(self.files, columns, run, self.na_codes)

    def __repr__(self) -> str:
        return (f"ParquetSource({self.path!r}: {len(self.files)} file(s), {self.n_rows} rows, "
                f"{len(self.columns)} columns)")


# -- tasks (module level: picklable) -------------------------------------------------------------


@dataclass
class _Shared:
    """What every task needs: the design, sent once to each worker."""

    design: _Design
    na_codes: tuple[float, ...] = ()

    @cached_property
    def offsets(self) -> np.ndarray:
        """Kept rows before each input row: kept rows of input rows [a, b) are [o[a], o[b])."""
        return np.concatenate([[0], np.cumsum(self.design.keep)])


@dataclass
class _Sums:
    """Mergeable sums of a range of analytes over some rows."""

    moments: _BlockMoments
    lm: uv.NormalEquations | None

    def merge(self, other: _Sums) -> _Sums:
        lm = None
        if self.lm is not None and other.lm is not None:
            lm = self.lm.merge(other.lm)
        return _Sums(self.moments.merge(other.moments), lm)


@dataclass
class _SumsTask:
    files: tuple[str, ...]
    columns: list[str]
    pieces: list[Piece]


def _kept(x: np.ndarray, start: int, rows: int, shared: _Shared) -> tuple[np.ndarray, slice]:
    keep = shared.design.keep[start:start + rows]
    o = shared.offsets
    return (x if keep.all() else x[keep]), slice(int(o[start]), int(o[start + rows]))


def _sums_task(task: _SumsTask, shared: _Shared) -> _Sums:
    """One pass over a task's tiles (row groups x its columns), merged in row order."""
    d = shared.design
    acc: _Sums | None = None
    for piece in task.pieces:
        x = _read_values(task.files, task.columns, [piece], shared.na_codes)
        xk, rows = _kept(x, piece[2], piece[3], shared)
        del x
        part = _Sums(_block_moments(xk, d.masks[rows], d.additive),
                     uv.normal_equations(xk, d.lm.design[rows], log=not d.additive)
                     if d.lm is not None else None)
        acc = part if acc is None else acc.merge(part)
    if acc is None:  # no rows at all: sums of nothing
        empty = np.empty((0, len(task.columns)))
        acc = _Sums(_block_moments(empty, d.masks[:0], d.additive),
                    uv.normal_equations(empty, d.lm.design[:0], log=not d.additive)
                    if d.lm is not None else None)
    return acc


@dataclass
class _ColumnsTask:
    files: tuple[str, ...]
    columns: list[str]
    pieces: list[Piece]
    moments: _BlockMoments
    lm: dict[str, dict[str, np.ndarray]] | None


def _columns_task(task: _ColumnsTask, shared: _Shared) -> list[_Found]:
    """Whole columns of a block: ranks, quantiles, correlations; moments from the sums."""
    x = _read_values(task.files, task.columns, task.pieces, shared.na_codes)
    xk, _ = _kept(x, 0, x.shape[0], shared)
    del x
    return _block_rows(xk, shared.design, task.moments, task.lm)


def _take_lm(lm: dict[str, dict[str, np.ndarray]] | None, cols: slice
             ) -> dict[str, dict[str, np.ndarray]] | None:
    if lm is None:
        return None
    return {key: {k: v[cols] for k, v in res.items()} for key, res in lm.items()}


def _row_runs(pieces: list[Piece], max_rows: int) -> list[list[Piece]]:
    """Consecutive row groups in runs of at most ``max_rows`` rows (or one row group)."""
    runs: list[list[Piece]] = []
    rows = 0
    for p in pieces:
        if runs and rows + p[3] <= max_rows:
            runs[-1].append(p)
            rows += p[3]
        else:
            runs.append([p])
            rows = p[3]
    return runs


def case_control_parquet(
    source: str | Path | ParquetSource,
    analytes: Sequence[str],
    case: pd.Series | np.ndarray,
    *,
    by: pd.Series | np.ndarray | None = None,
    covariates: pd.DataFrame | None = None,
    severity: pd.Series | np.ndarray | None = None,
    names: Sequence[str] | None = None,
    extra: pd.DataFrame | None = None,
    tests: Sequence[str] = TESTS,
    mwu_method: str = "asymptotic",
    ci: float = 0.95,
    block_cells: int = 4_000_000,
    quantiles: bool = True,
    n_jobs: int | None = None,
    engine: Engine | str | None = None,
    additive: bool = False,
) -> pd.DataFrame:
    """:func:`~hikisig.stats.case_control` over Parquet data, without loading it.

    Parameters
    ----------
    source : path or ParquetSource
        A Parquet file or a folder of Parquet files (one table).
    analytes : sequence of str
        Numeric columns to analyse.
    case, by, covariates, severity
        As in :func:`~hikisig.stats.case_control`, one value per row of the source
        (in reading order).
    names : sequence of str, optional
        Output names of ``analytes`` (default: the column names).
    extra : DataFrame, optional
        More analytes already in memory (e.g. derived markers), one row per row of
        the source; analysed as in memory and reported after the file's analytes.
    tests, mwu_method, ci, quantiles, additive
        As in :func:`~hikisig.stats.case_control` (``additive=True``: values on an
        additive scale, no log anywhere; it applies to ``extra`` too).
    block_cells : int
        Values per tile of the pass of sums and per block of whole columns: the
        memory bound (a tile holds at least one Parquet column chunk).
    n_jobs : int, optional
        Threads when running in this process (default: the number of CPUs).
    engine : Engine or backend name, optional
        ``None``/``"serial"``: threads of this process; ``"loky"``/``"dask"``: one
        task per tile run or column block on the engine's workers (which read the
        files themselves). Results do not depend on it.

    Returns
    -------
    DataFrame
        The tidy table of :func:`~hikisig.stats.case_control` (same columns; the
        same numbers up to rounding in the last digits).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hikisig.stats import case_control
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.lognormal(size=(60, 3)), columns=["a", "b", "c"])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.parquet"
    >>> X.to_parquet(path)
    >>> case = np.arange(60) < 30
    >>> t = case_control_parquet(path, ["a", "b", "c"], case, tests=["welch"])
    >>> m = case_control(X, case, tests=["welch"])
    >>> bool(np.allclose(t["statistic"], m["statistic"], rtol=1e-12))
    True
    """
    if isinstance(engine, str) and engine != "serial":
        from hikisig.engine import Engine

        with Engine(engine) as own:  # one cluster for both passes, closed at the end
            return case_control_parquet(
                source, analytes, case, by=by, covariates=covariates, severity=severity,
                names=names, extra=extra, tests=tests, mwu_method=mwu_method, ci=ci,
                block_cells=block_cells, quantiles=quantiles, n_jobs=n_jobs, engine=own,
                additive=additive)
    src = source if isinstance(source, ParquetSource) else ParquetSource(source)
    analytes = list(analytes)
    src.require(analytes, numeric=analytes)
    out_names = [str(a) for a in (analytes if names is None else names)]
    if len(out_names) != len(analytes):
        raise ValueError(f"{len(out_names)} names for {len(analytes)} analytes")
    if len(np.asarray(case, dtype=object)) != src.n_rows:
        raise ValueError(f"case has {len(np.asarray(case, dtype=object))} values for "
                         f"{src.n_rows} rows of {src.path}")
    if extra is not None and len(extra) != src.n_rows:
        raise ValueError(f"extra has {len(extra)} rows for {src.n_rows} rows of {src.path}")
    if block_cells < 1:
        raise ValueError("block_cells must be at least 1")
    index = pd.RangeIndex(src.n_rows)
    cov = None if covariates is None else covariates.set_axis(index, axis=0)
    d = _design(index, case, by, cov, severity, tests, mwu_method, ci, quantiles, additive)
    shared = _Shared(d, src.na_codes)
    files = tuple(src.files)
    p = len(analytes)
    per_block: list[list[_Found]] = []
    sizes: list[int] = []
    if p:
        # pass 1: mergeable sums over tiles (row group x column range)
        biggest = max((q[3] for q in src.pieces), default=1)
        tile_cols = max(1, block_cells // max(1, biggest))
        col_ranges = _blocks(p, tile_cols)
        runs = _row_runs(src.pieces, max(biggest, TILES_PER_TASK * block_cells // tile_cols))
        tasks = [_SumsTask(files, analytes[r.start:r.stop], run) for r in col_ranges
                 for run in (runs or [[]])]
        parts = _map_blocks(_sums_task, tasks, shared, engine, n_jobs)
        merged: list[_Sums] = []
        n_runs = max(1, len(runs))
        for i in range(len(col_ranges)):
            acc = parts[i * n_runs]
            for part in parts[i * n_runs + 1:(i + 1) * n_runs]:
                acc = acc.merge(part)
            merged.append(acc)
        moments = _BlockMoments.concat([m.moments for m in merged])
        lm = None
        if d.lm is not None:
            lm = uv.solve_interaction(uv.NormalEquations.concat(
                [m.lm for m in merged if m.lm is not None]), ci)
        # pass 2: whole columns, only for what needs ranks
        if d.needs_columns:
            width = max(1, block_cells // max(1, src.n_rows))
            blocks = _blocks(p, width)
            col_tasks = [_ColumnsTask(files, analytes[b.start:b.stop], src.pieces,
                                      moments.take(slice(b.start, b.stop)),
                                      _take_lm(lm, slice(b.start, b.stop))) for b in blocks]
            per_block += _map_blocks(_columns_task, col_tasks, shared, engine, n_jobs)
            sizes += [len(b) for b in blocks]
        else:
            per_block.append(_block_rows(None, d, moments, lm))
            sizes.append(p)
    if extra is not None and extra.shape[1]:
        x = extra.to_numpy(dtype=np.float64)[d.keep]
        width = max(1, block_cells // max(1, x.shape[0]))
        blocks = _blocks(x.shape[1], width)
        per_block += _map_blocks(_block_task, [x[:, b.start:b.stop] for b in blocks], d, engine,
                                 n_jobs)
        sizes += [len(b) for b in blocks]
        out_names += [str(c) for c in extra.columns]
    if not sizes:
        raise ValueError("no analyte to analyse")
    return _assemble(out_names, per_block, sizes)

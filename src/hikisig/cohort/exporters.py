"""Exporting a study to the formats the field uses.

AnnData ``.h5ad`` (obs = sample metadata, var = catalog annotations), Parquet
(wide or long), wide CSV and the Workflow4Metabolomics three-table TSV; a study's
intervention log goes beside them as CSV (:func:`write_interventions`). Every
writer writes to a temporary file beside the target and renames it at the
end, so a failed export leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from hikisig.cohort.dataset import Dataset, study_note
from hikisig.errors import HikisigError

__all__ = ["EXPORT_FORMATS", "export_dataset", "interventions_path", "long_frame", "wide_frame",
           "write_interventions", "write_json"]

#: Formats of ``hikisig export``.
EXPORT_FORMATS = ("anndata", "parquet", "csv", "w4m")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path; move it onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def wide_frame(ds: Dataset) -> pd.DataFrame:
    """One row per sample: ``sample``, the metadata columns, then one column per analyte.

    Examples
    --------
    >>> wide_frame(ds).columns[:3].tolist()  # doctest: +SKIP
    ['sample', 'participant', 'visit']
    """
    obs = ds.obs.dropna(axis=1, how="all")
    clash = [c for c in obs.columns if c in ds.X.columns]
    if clash:
        raise HikisigError(f"metadata column(s) {', '.join(clash)} have the name of an analyte")
    out = pd.concat([obs, ds.X], axis=1)
    out.index.name = "sample"
    return out.reset_index()


def long_frame(ds: Dataset) -> pd.DataFrame:
    """One row per stored cell: sample, participant, visit, analyte, value, unit, flag, raw."""
    x = ds.X.to_numpy()
    r, c = np.nonzero(~np.isnan(x))
    base = pd.DataFrame({
        "sample": ds.X.index.to_numpy()[r],
        "analyte": ds.X.columns.to_numpy()[c],
        "value": x[r, c],
        "flag": pd.Series([None] * len(r), dtype=object),
        "raw": pd.Series([None] * len(r), dtype=object),
    })
    flags = ds.flags.assign(value=np.nan)[["sample", "analyte", "value", "flag", "raw"]]
    out = pd.concat([base, flags], ignore_index=True) if len(flags) else base
    out["participant"] = ds.obs["participant"].reindex(out["sample"]).to_numpy()
    out["visit"] = ds.obs["visit"].reindex(out["sample"]).to_numpy()
    out["unit"] = ds.var["unit"].reindex(out["analyte"]).to_numpy()
    order = ["participant", "visit", "sample", "analyte", "value", "unit", "flag", "raw"]
    return out[order]


def write_anndata(ds: Dataset, path: Path) -> None:
    """Write an AnnData ``.h5ad`` file (:meth:`Dataset.to_anndata`)."""
    adata = ds.to_anndata()
    with _atomic(path) as tmp:
        adata.write_h5ad(tmp)


def write_parquet(ds: Dataset, path: Path, layout: str = "wide") -> None:
    """Write Parquet, ``wide`` (one row per sample) or ``long`` (one row per value)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = wide_frame(ds) if layout == "wide" else long_frame(ds)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"hikisig"] = json.dumps(study_note(ds)).encode()
    table = table.replace_schema_metadata(meta)
    with _atomic(path) as tmp:
        pq.write_table(table, tmp)


def write_csv(ds: Dataset, path: Path) -> None:
    """Write a wide CSV (full float precision)."""
    frame = wide_frame(ds)
    with _atomic(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=None)


def write_w4m(ds: Dataset, folder: Path) -> list[Path]:
    """Write ``dataMatrix.tsv``, ``sampleMetadata.tsv`` and ``variableMetadata.tsv`` into a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=".w4m.", dir=folder))
    try:
        dm = ds.X.T.copy()
        dm.index.name = "dataMatrix"
        dm.to_csv(tmpdir / "dataMatrix.tsv", sep="\t", na_rep="NA")
        sm = ds.obs.dropna(axis=1, how="all").copy()
        sm.index.name = "sampleMetadata"
        sm.to_csv(tmpdir / "sampleMetadata.tsv", sep="\t", na_rep="")
        vm = ds.var.dropna(axis=1, how="all").copy()
        vm.index.name = "variableMetadata"
        vm.to_csv(tmpdir / "variableMetadata.tsv", sep="\t", na_rep="")
        out = []
        for name in ("dataMatrix.tsv", "sampleMetadata.tsv", "variableMetadata.tsv"):
            os.replace(tmpdir / name, folder / name)
            out.append(folder / name)
        return out
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def interventions_path(fmt: str, out: str | Path) -> Path:
    """Where an export puts the study's intervention log: ``interventions.csv`` in the w4m folder,
    ``<name>.interventions.csv`` beside a single-file export.

    Examples
    --------
    >>> interventions_path("w4m", "out").as_posix()
    'out/interventions.csv'
    >>> interventions_path("csv", "out/study.csv").as_posix()
    'out/study.interventions.csv'
    """
    path = Path(out)
    if fmt == "w4m":
        return path / "interventions.csv"
    return path.with_name(f"{path.stem}.interventions.csv")


def write_interventions(frame: pd.DataFrame, path: Path) -> None:
    """Write an intervention log (participant, kind, start, end, detail; ISO dates, empty end
    while ongoing) as CSV, atomically."""
    out = frame[["participant", "kind", "start", "end", "detail"]].copy()
    for col in ("start", "end"):
        out[col] = pd.to_datetime(out[col]).dt.strftime("%Y-%m-%d")
    with _atomic(path) as tmp:
        out.to_csv(tmp, index=False, na_rep="", lineterminator="\n")


def write_json(data: object, path: Path) -> None:
    """Write JSON atomically."""
    with _atomic(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def export_dataset(ds: Dataset, fmt: str, out: str | Path, layout: str = "wide") -> list[Path]:
    """Export a dataset.

    Parameters
    ----------
    ds : Dataset
        The study to export.
    fmt : {"anndata", "parquet", "csv", "w4m"}
        Output format.
    out : str or Path
        Output file (a folder for ``w4m``).
    layout : {"wide", "long"}
        Parquet layout.

    Returns
    -------
    list of Path
        Files written.

    Examples
    --------
    >>> export_dataset(ds, "csv", "study.csv")  # doctest: +SKIP
    """
    path = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise HikisigError(f"unknown export format {fmt!r} (expected {', '.join(EXPORT_FORMATS)})")
    if layout not in ("wide", "long"):
        raise HikisigError(f"unknown layout {layout!r} (expected wide or long)")
    if fmt == "w4m":
        return write_w4m(ds, path)
    if path.is_dir():
        raise HikisigError(f"{path} is a folder; give a file name")
    if fmt == "anndata":
        write_anndata(ds, path)
    elif fmt == "parquet":
        write_parquet(ds, path, layout)
    else:
        write_csv(ds, path)
    return [path]

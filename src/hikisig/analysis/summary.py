"""Per-site summary statistics for a federated meta-analysis: what may leave a site.

A site computes, per analyte and stratum (``all`` and each level of ``by``, e.g. ``F``,
``M``), the counts, the means and SDs of log2 values in cases and controls, Hedges' g and
the log2 fold change with their standard errors. No participant-level value, code or id
is in the table; strata with fewer than ``min_n`` participants in a group are not written
(``suppressed`` says which, by count). :func:`hikisig.stats.meta.meta_analysis` pools the
tables of several sites. See docs/meta.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hikisig.analysis.repeated import one_per_participant
from hikisig.cohort.dataset import Dataset
from hikisig.errors import HikisigError
from hikisig.stats import univariate as uv

__all__ = ["SUMMARY_COLUMNS", "SUPPRESSED_COLUMNS", "catalog_version", "settings_sha256",
           "site_summary", "write_site_summaries"]

#: Columns of a site summary, in order.
SUMMARY_COLUMNS = ("analyte", "hmdb", "stratum", "n_case", "n_control", "mean_log_case",
                   "sd_log_case", "mean_log_control", "sd_log_control", "effect", "effect_se",
                   "log2fc", "log2fc_se", "site", "kit")
#: Columns of the suppressed strata (counts only: no analyte is named).
SUPPRESSED_COLUMNS = ("site", "stratum", "n_analytes", "n_case", "n_control", "reason")


def _hmdb(data: Dataset, names: list[str]) -> list[str]:
    """HMDB id of every column: the dataset's annotation, else the catalog's."""
    from hikisig.catalog import load_catalog

    given = data.var["hmdb"] if "hmdb" in data.var.columns else pd.Series(dtype=object)
    cat = load_catalog()
    out = []
    for name in names:
        value = given.get(name)
        if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
            value = cat.get(name).hmdb if name in cat else ""
        out.append(str(value or ""))
    return out


def _kit(obs: pd.DataFrame) -> str:
    if "kit" not in obs.columns:
        return ""
    return "|".join(sorted({str(v) for v in obs["kit"].dropna()}))


def _one_site(X: pd.DataFrame, is_case: np.ndarray, by: pd.Series | None, label: str, kit: str,
              hmdb: list[str], min_n: int, log: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary rows and suppressed strata of one site (rows: its participants)."""
    x = X.to_numpy(dtype=np.float64)
    strata: list[tuple[str, np.ndarray]] = [("all", np.ones(len(x), dtype=bool))]
    if by is not None:
        known = by.notna().to_numpy()
        labels = by.astype(str).to_numpy()
        strata += [(lev, known & (labels == lev)) for lev in sorted(set(labels[known]))]
    masks = np.column_stack([m for _, rows in strata for m in (rows & is_case, rows & ~is_case)])
    mom = uv.moment_sums(x, masks)  # values as given: Hedges' g, as hikisig stats
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            lx = np.log2(np.where(x > 0, x, np.nan))  # values <= 0: below detection
    else:
        lx = x  # already on an additive (e.g. log) scale
    lmom = uv.moment_sums(lx, masks)
    names = [str(c) for c in X.columns]
    rows, gone = [], []
    for k, (stratum, member) in enumerate(strata):
        c, o = 2 * k, 2 * k + 1
        p_case, p_control = int((member & is_case).sum()), int((member & ~is_case).sum())
        if min(p_case, p_control) < min_n:
            gone.append({"site": label, "stratum": stratum, "n_analytes": len(names),
                         "n_case": p_case, "n_control": p_control,
                         "reason": f"fewer than {min_n} participants in a group"})
            continue
        var = mom.var
        g = uv.hedges_from(mom.n[c], mom.mean[c], var[c], mom.n[o], mom.mean[o], var[o])["effect"]
        n1, n2 = mom.n[c], mom.n[o]
        ln1, ln2 = lmom.n[c], lmom.n[o]
        lv = lmom.var
        with np.errstate(invalid="ignore", divide="ignore"):
            g_se = np.sqrt((n1 + n2) / (n1 * n2) + g**2 / (2 * (n1 + n2)))
            fc_se = np.sqrt(lv[c] / ln1 + lv[o] / ln2)
        small = np.minimum(np.minimum(n1, n2), np.minimum(ln1, ln2)) < min_n
        if small.any():
            pairs = pd.DataFrame({"n_case": np.minimum(n1, ln1)[small].astype(int),
                                  "n_control": np.minimum(n2, ln2)[small].astype(int)})
            for (nc, nk), cnt in pairs.value_counts(sort=False).sort_index().items():
                gone.append({"site": label, "stratum": stratum, "n_analytes": int(cnt),
                             "n_case": int(nc), "n_control": int(nk),
                             "reason": f"fewer than {min_n} non-missing"
                                       f"{' positive' if log else ''} values in a group"})
        keep = ~small
        part = pd.DataFrame({
            "analyte": np.asarray(names, dtype=object), "hmdb": np.asarray(hmdb, dtype=object),
            "stratum": stratum, "n_case": n1.astype(np.int64), "n_control": n2.astype(np.int64),
            "mean_log_case": lmom.mean[c], "sd_log_case": np.sqrt(lv[c]),
            "mean_log_control": lmom.mean[o], "sd_log_control": np.sqrt(lv[o]),
            "effect": g, "effect_se": g_se, "log2fc": lmom.mean[c] - lmom.mean[o],
            "log2fc_se": fc_se, "site": label, "kit": kit})
        rows.append(part[keep])
    table = (pd.concat(rows, ignore_index=True) if rows
             else pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS}))
    return table, pd.DataFrame(gone, columns=list(SUPPRESSED_COLUMNS))


def site_summary(data: Dataset, *, group: str = "group", case: str = "case",
                 control: str = "control", by: str | None = "sex", site: str | None = None,
                 min_n: int = 5, log: bool = True, participant: str | None = "participant",
                 markers: bool = True, name: str | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary statistics of cases and controls per analyte and stratum, for a meta-analysis.

    Parameters
    ----------
    data : Dataset
        Samples x analytes on the linear scale (``log=False``: on an additive scale, e.g.
        already logged). One row per participant is used: when ``participant`` is a column
        of the data and a participant has several samples, the first by visit (the rule
        of :func:`hikisig.analysis.repeated.one_per_participant`); ``StudyData.per_participant``
        is already reduced.
    group, case, control : str
        The group column and the labels of cases and controls (other rows are left out).
    by : str or None
        Stratify by this column (its levels, e.g. ``F``, ``M``, beside ``all``).
    site : str or None
        A column naming each participant's site: one block of rows per site value (rows
        without a site are left out). None: the data are one site, named ``name`` (default:
        the dataset's study).
    min_n : int
        A stratum with fewer participants than this in a group is not written; an analyte
        with fewer non-missing (with ``log``: positive) values in a group neither.
    log : bool
        Take log2 of the values (values <= 0 are below detection and left out of the
        log-scale columns); False: the values are on an additive scale and the ``*_log_*``
        columns and ``log2fc`` are of the values as given.
    markers : bool
        Add hikisig's curated derived markers (ratios and sums of analytes; with ``log``).

    Returns
    -------
    table : DataFrame
        Columns :data:`SUMMARY_COLUMNS`. ``n_case``/``n_control`` count non-missing values;
        ``mean_log_*``/``sd_log_*`` are of log2 values; ``log2fc`` = ``mean_log_case -
        mean_log_control`` with ``log2fc_se = sqrt(sd_case^2/n_case + sd_control^2/n_control)``;
        ``effect`` is Hedges' g of the values as given (the ``effect`` of ``hikisig stats``),
        ``g = (1 - 3 / (4 (n1 + n2) - 9)) (m1 - m2) / s_pooled``, with the large-sample SE
        ``sqrt((n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2)))``; ``hmdb`` from the catalog;
        ``kit`` from a ``kit`` column of the data, else empty.
    suppressed : DataFrame
        Columns :data:`SUPPRESSED_COLUMNS`: what was not written and why, as counts.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.lognormal(size=(40, 2)), columns=["ornithine", "m1"])
    >>> obs = pd.DataFrame({"group": ["case", "control"] * 20, "sex": ["F"] * 36 + ["M"] * 4},
    ...                    index=X.index)
    >>> t, s = site_summary(Dataset(X, obs), name="A")
    >>> sorted(t["stratum"].unique()), s[["stratum", "n_case", "n_control"]].values.tolist()
    (['F', 'all'], [['M', 2, 2]])
    """
    if min_n < 2:
        raise HikisigError("min_n must be at least 2 (an SD needs two values)")
    if participant is not None and data.column_name(participant) is not None:
        data, _ = one_per_participant(data, participant, "first")
    labels = data.column(group).astype(str)
    is_case, is_control = (labels == case).to_numpy(), (labels == control).to_numpy()
    if not is_case.any() or not is_control.any():
        raise HikisigError(f"column {group!r} has no {case!r} or no {control!r} rows "
                           "(--case/--control name the labels)")
    X = data.X
    if markers and log:
        from hikisig.prep.markers import derived_markers

        values, _ = derived_markers(X)
        X = pd.concat([X, values], axis=1) if values.shape[1] else X
    rows = is_case | is_control
    hmdb = _hmdb(data, [str(c) for c in X.columns])
    by_s = data.column(by) if by else None
    if site is None:
        blocks = [(name or data.study, rows)]
    else:
        where = data.column(site)
        blocks = [(str(v), rows & (where.astype(str) == str(v)).to_numpy() & where.notna().to_numpy())
                  for v in sorted({str(v) for v in where.dropna()})]
        if not blocks:
            raise HikisigError(f"column {site!r} names no site")
    tables, gone = [], []
    for label, member in blocks:
        t, s = _one_site(X[member], is_case[member], None if by_s is None else by_s[member],
                         label, _kit(data.obs[member]), hmdb, min_n, log)
        tables.append(t)
        gone.append(s)
    table = pd.concat(tables, ignore_index=True)[list(SUMMARY_COLUMNS)]
    suppressed = pd.concat(gone, ignore_index=True) if any(len(s) for s in gone) \
        else pd.DataFrame(columns=list(SUPPRESSED_COLUMNS))
    return table, suppressed


def catalog_version() -> str:
    """The analyte catalog's version: ``sha256:`` and the first 16 hex digits of the SHA-256
    of the shipped ``analytes.csv``."""
    data = (resources.files("hikisig.catalog") / "data" / "analytes.csv").read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def settings_sha256(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the settings as canonical JSON (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_name(site: str) -> str:
    return "summary_" + (re.sub(r"[^A-Za-z0-9._-]+", "_", site).strip("._") or "site")


def write_site_summaries(table: pd.DataFrame, suppressed: pd.DataFrame, out: Path, *,
                         settings: Mapping[str, Any] | None = None) -> list[Path]:
    """Write one ``summary_<site>.csv`` and ``.parquet`` per site and ``manifest.json``
    (hikisig and catalog versions, the settings and their SHA-256, the date, the sites
    and the suppressed strata) into the folder ``out``.

    Everything is written into a temporary folder beside ``out`` that is renamed at the
    end, so a failure leaves nothing half-written. ``out`` must not exist, be empty or hold
    an earlier summary export (a ``manifest.json``), which is replaced.
    """
    from hikisig.versions import __version__

    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "manifest.json").is_file())):
        raise HikisigError(f"{out} exists and is not an earlier summary export: choose a new "
                           "folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    sites = list(dict.fromkeys(table["site"].astype(str))) if len(table) else []
    names = [_file_name(s) for s in sites]
    if len(set(names)) < len(names):
        raise HikisigError(f"two sites give the same file name: {', '.join(sites)}")
    settings = dict(settings or {})
    manifest = {
        "kind": "hikisig site summary",
        "hikisig_version": __version__,
        "catalog_version": catalog_version(),
        "config_sha256": settings_sha256(settings),
        "settings": settings,
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "columns": list(SUMMARY_COLUMNS),
        "sites": [{"site": s, "file": f"{n}.csv", "rows": int((table["site"] == s).sum()),
                   "strata": sorted(set(table.loc[table["site"] == s, "stratum"]))}
                  for s, n in zip(sites, names, strict=True)],
        "suppressed": suppressed.to_dict(orient="records"),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for site, name in zip(sites, names, strict=True):
            part = table[table["site"] == site].reset_index(drop=True)
            part.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
            part.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_jsonable) + "\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.replace(old / "previous")
            tmp.replace(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HikisigError(f"cannot write {out}: {exc}; nothing was written") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / f"{n}.{ext}" for n in names for ext in ("csv", "parquet")] + [out / "manifest.json"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)

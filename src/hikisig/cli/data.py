"""Reading an analysis table for the stats and model commands: a wide CSV or the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hikisig.cli.common import err, open_store, study_for_read
from hikisig.errors import HikisigError
from hikisig.pipeline.data import read_wide_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_table"]


def _from_store(meta: list[str], numeric: list[str], visit: int | None, all_visits: bool
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    import numpy as np

    from hikisig.cohort.assessments import load_assessments
    from hikisig.cohort.dataset import load_dataset

    store = open_store()
    study = study_for_read(store)
    ds = load_dataset(store, study)
    obs = ds.obs[ds.obs["sample_type"] == "study"]
    if not all_visits:
        if visit is None:
            first = obs.groupby("participant")["visit"].transform("min")
            obs = obs[obs["visit"] == first]
        else:
            obs = obs[obs["visit"] == visit]
    obs = obs.copy()
    for c in [*meta, *numeric]:
        if c in obs.columns:
            continue
        try:
            scores = load_assessments(store, study, c)
        except HikisigError:
            raise HikisigError(f"study {study!r} has no sample/participant field or instrument "
                               f"{c!r}") from None
        key = scores.set_index(["id", "visit"])["total"]
        obs[c] = [key.get((p, v), np.nan) for p, v in zip(obs["participant"], obs["visit"],
                                                          strict=True)]
    return ds.X.loc[obs.index], obs


def load_table(file: Path | None, *, meta: list[str], numeric: list[str],
               id_column: str | None = None, visit: int | None = None, all_visits: bool = False
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Analytes (samples x analytes, catalog ids where resolvable) and the named metadata.

    With a FILE: a wide CSV (id column, metadata columns, analyte columns); otherwise the
    study in the store (first visit by default; a name that is not a field is read as an
    instrument's total score).
    """
    if file is not None:
        X, obs = read_wide_table(file, id_column, meta, numeric)
        skipped = obs.attrs.get("not_analysed") or []
        if skipped:
            err.print(f"note: column(s) not analysed (metadata or text): {', '.join(skipped[:10])}"
                      f"{', ...' if len(skipped) > 10 else ''}", markup=False)
        return X, obs
    return _from_store(meta, numeric, visit, all_visits)

"""Participants with several samples in the analysed set: which samples the statistics and
the stratification use (they assume independent samples), and what the models group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hikisig.cohort.dataset import Dataset

__all__ = ["RepeatSummary", "one_per_participant"]


@dataclass
class RepeatSummary:
    """How repeated samples were handled.

    Attributes
    ----------
    rule : str
        ``first`` (each participant's first sample by visit), ``mean`` (the mean of a
        participant's samples) or ``all`` (every sample: they are not independent).
    participant : str or None
        The participant column (None: each sample is a different participant).
    n_samples, n_participants : int
        Analysed samples and participants.
    set_aside : int
        Samples the statistics and the stratification did not use (``first``, ``mean``).
    """

    rule: str
    participant: str | None
    n_samples: int
    n_participants: int
    set_aside: int

    @property
    def repeated(self) -> bool:
        """Whether some participant has several samples."""
        return self.n_participants < self.n_samples

    def describe(self) -> str:
        """One sentence for people."""
        if not self.repeated:
            return (f"{self.n_samples} samples, one per participant"
                    + ("" if self.participant else " (each sample taken as a different participant)"))
        head = (f"{self.n_samples} samples of {self.n_participants} participants "
                f"(column {self.participant!r})")
        if self.rule == "first":
            return (f"{head}: statistics and stratification use each participant's first sample "
                    f"by visit ({self.set_aside} later samples set aside); the models use all "
                    "samples, a participant's samples in one CV fold")
        if self.rule == "mean":
            return (f"{head}: statistics and stratification use the mean of each participant's "
                    f"samples ({self.set_aside} samples merged); the models use all samples, a "
                    "participant's samples in one CV fold")
        return (f"{head}: statistics and stratification count every sample, so samples are NOT "
                "independent and p-values are too small; the models keep a participant's "
                "samples in one CV fold")


def one_per_participant(data: Dataset, participant: str | None, rule: str
                        ) -> tuple[Dataset, RepeatSummary]:
    """The samples the statistics use: one per participant (``first`` by visit, ``mean``), or
    all (``all``)."""
    n = data.shape[0]
    if participant is None:
        return data, RepeatSummary(rule, None, n, n, 0)
    who = data.column(participant).astype(str)
    n_people = int(who.nunique())
    if n_people == n or rule == "all":
        return data, RepeatSummary(rule, participant, n, n_people, 0)
    visit = (pd.to_numeric(data.obs["visit"], errors="coerce") if "visit" in data.obs
             else pd.Series(np.nan, index=data.X.index))
    order = pd.DataFrame({"who": who.to_numpy(), "visit": visit.to_numpy(dtype=float),
                          "pos": np.arange(n)}).sort_values(["who", "visit", "pos"], kind="stable")
    first = order.drop_duplicates("who").sort_values("pos")["pos"].to_numpy()
    kept = data.subset(np.isin(np.arange(n), first))
    if rule == "mean":
        means = data.X.groupby(who.to_numpy(), sort=False).mean()
        X = means.loc[who.iloc[first].to_numpy()].set_axis(kept.X.index, axis=0)
        kept = Dataset(X, kept.obs, kept.var, kept.flags.iloc[0:0], kept.study, kept.synthetic,
                       kept.source, dict(kept.source_columns))
    return kept, RepeatSummary(rule, participant, n, n_people, n - n_people)

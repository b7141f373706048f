"""Settings of the synthetic reference study, with the ``setoyama2021`` preset.

Every number the generator uses is a field here, so that a study is fully
described by its config (written into ``truth.json``). docs/synthetic.md gives
the reason and source of each default.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PRESETS", "SITE_FIELDS", "SynthConfig", "preset"]

#: Fields about sites, left out of ``truth.json``'s config of a single-site study (so that its
#: files stay byte-identical to those written before sites existed).
SITE_FIELDS = ("sites", "site_case_share_spread", "site_male_share_spread", "site_offset_sd",
               "site_scale_sd")


class SynthConfig(BaseModel):
    """Configuration of a synthetic study (defaults: the ``setoyama2021`` preset)."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "setoyama2021"
    study: str = "setoyama2021-like-synthetic"
    seed: int = Field(default=2021, ge=0)
    # design
    n_cases: int = Field(default=42, ge=1)
    n_controls: int = Field(default=41, ge=1)
    male_share: float = Field(default=0.75, ge=0, le=1)
    age_min: int = Field(default=18, ge=0)
    age_max: int = Field(default=45, le=120)
    visits: int = Field(default=1, ge=1, le=50)
    visit_interval_months: int = Field(default=3, ge=1)
    #: share of cases that start an intervention after their first visit (visits > 1)
    treated_share: float = Field(default=0.5, ge=0, le=1)
    #: share of each planted case-control difference (blood and HQ-25) removed by the last
    #: visit in treated cases, linearly over the visits (``--treatment-effect``; also
    #: readable as :attr:`treatment_effect`)
    treatment_recovery: float = Field(default=0.8, ge=0, le=1)
    #: ISO date of the earliest first visit; first visits are spread over the following year
    study_start: str = "2025-01-06"
    # blood
    n_analytes: int = Field(default=127, ge=1, le=100_000)
    class_correlation: float = Field(default=0.3, ge=0, lt=1)
    #: share of the log-scale variance between persons (ICC) when visits > 1; the rest is
    #: visit-to-visit variation within a person. 0.57: median ICC of serum metabolites
    #: over 4 months, Biocrates p150 (Floegel et al. 2011); docs/synthetic.md
    participant_icc: float = Field(default=0.57, ge=0, le=1)
    lod: bool = True
    batches: int = Field(default=1, ge=1)
    batch_sd: float = Field(default=0.0, ge=0)
    qc_every: int = Field(default=0, ge=0)
    dtype: Literal["float64", "float32"] = "float64"
    # sites of a multi-site consortium (``--sites``; docs/synthetic.md "Sites")
    #: number of recruiting sites, each with its own laboratory; 1 = a single-site study
    sites: int = Field(default=1, ge=1, le=20)
    #: a site's case share is the study's share + Uniform(-spread, +spread) (then the
    #: requested n_cases/n_controls are apportioned to the sites with these weights)
    site_case_share_spread: float = Field(default=0.2, ge=0, le=0.45)
    #: a site's male share is male_share + Uniform(-spread, +spread), clipped to 0-1
    site_male_share_spread: float = Field(default=0.15, ge=0, le=0.5)
    #: SD of a site's laboratory offset per analyte on the natural-log scale (log offset ~
    #: N(0, sd^2) per site x analyte; multiplicative, 0.15 ~ an inter-laboratory CV of 15 %)
    site_offset_sd: float = Field(default=0.15, ge=0, le=2)
    #: SD of the log of a site's scale factor on the within-site SD (one factor per site)
    site_scale_sd: float = Field(default=0.1, ge=0, le=1)
    # planted effects (Cohen's d on the log scale)
    lcac_d: float = 0.8
    male_d: float = 0.8
    subtype_d: float = 1.5
    subtype_share: float = Field(default=0.5, gt=0, lt=1)
    severity_instrument: Literal["hq25", "hq25m"] = "hq25"
    severity_r2: float = Field(default=0.5, ge=0, lt=1)
    severity_analytes: dict[str, float] = {
        "c16": 1.0, "c18_1": 1.0, "ornithine": 0.8, "kynurenine": 0.8, "lysopc_a_c18_2": -0.8}
    case_severity_mean: float = 60.0
    case_severity_sd: float = Field(default=12.0, gt=0)
    control_severity_mean: float = 22.0
    control_severity_sd: float = Field(default=10.0, gt=0)
    #: test-retest reliability (ICC) of the severity total between visits (HQ-25: Teo 2018)
    severity_retest_icc: float = Field(default=0.8, ge=0, le=1)
    instruments: list[str] = ["hq25", "phq9", "k6", "ucla3"]
    # output
    chunk_cells: int = Field(default=2_000_000, ge=1000)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: object) -> object:
        # ``treatment_effect`` is another name of ``treatment_recovery``
        if isinstance(data, dict) and "treatment_effect" in data:
            data = dict(data)
            value = data.pop("treatment_effect")
            if data.get("treatment_recovery", value) != value:
                raise ValueError("treatment_effect and treatment_recovery are the same setting; "
                                 "give one")
            data["treatment_recovery"] = value
        return data

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        if self.age_min > self.age_max:
            raise ValueError("age_min must not exceed age_max")
        if "synthetic" not in self.study.casefold():
            raise ValueError("a synthetic study's name must contain 'synthetic'")
        try:
            date.fromisoformat(self.study_start)
        except ValueError:
            raise ValueError(f"study_start must be an ISO date yyyy-mm-dd, not {self.study_start!r}") \
                from None
        if self.sites > 1 and min(self.n_cases, self.n_controls) < self.sites:
            raise ValueError(f"{self.sites} sites need at least {self.sites} cases and "
                             f"{self.sites} controls (one of each per site)")
        if self.severity_instrument not in self.instruments:
            raise ValueError(f"the severity instrument {self.severity_instrument} must be among "
                             "the instruments")
        return self

    @property
    def treatment_effect(self) -> float:
        """The share of the planted differences removed by the last visit in treated cases
        (the ``treatment_recovery`` field, ``--treatment-effect`` on the command line)."""
        return self.treatment_recovery

    def truth_dump(self) -> dict[str, object]:
        """The config as written into ``truth.json`` (site fields only with ``sites`` > 1)."""
        return self.model_dump(exclude=set(SITE_FIELDS) if self.sites == 1 else None)

    @property
    def n_participants(self) -> int:
        """Cases plus controls."""
        return self.n_cases + self.n_controls


#: Named starting points; ``setoyama2021`` mirrors the published study's design.
PRESETS: dict[str, dict[str, object]] = {"setoyama2021": {}}


def preset(name: str = "setoyama2021", **overrides: object) -> SynthConfig:
    """A preset with some fields changed.

    Examples
    --------
    >>> preset(n_cases=10).n_participants
    51
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return SynthConfig(preset=name, **values)  # type: ignore[arg-type]

"""Generating the synthetic reference study, chunk by chunk.

:class:`SyntheticStudy` draws the participant table (group, sex, age, case
subtype, treatment) in full, and the blood values, questionnaire answers and
criteria inputs in chunks of participants, each chunk from its own
``SeedSequence`` child. The same config therefore gives the same data whatever
is done with it, and memory is bounded by the chunk, not the study.

The model, on the natural-log scale of each analyte j for row (participant p,
visit v)::

    log x = log(geo_mean_j) +/- male_log_ratio_j / 2
            + log_sd_j * (z_pvj + shift_pvj) + batch_bj
    z     = sqrt(icc) * u_pj + sqrt(1 - icc) * w_pvj        (unit variance)
    u, w  = sqrt(rho) * F_class(j) + sqrt(1 - rho) * E       (class correlation rho)

``shift`` holds the planted effects in SD units (Cohen's d on the log scale):
long-chain acylcarnitines +lcac_d in cases, ornithine/arginase +male_d and
arginine/bilirubin -male_d in male cases, and the two case subtypes at
-subtype_d/2 and +subtype_d/2 in uric acid and cholesterol esters (so the
case-control contrast of those stays null). The severity score of cases is
linear in the standardised values of ``severity_analytes`` with the configured
R^2.

Follow-up (``visits`` > 1)
--------------------------
Within-person variation. ``u_pj`` is the participant's stable person-level value
and ``w_pvj`` the visit's deviation from it, both of unit variance, so the total
log-scale SD of every analyte stays ``log_sd_j`` at every visit (visit-1
marginals and the planted Cohen's d are those of a single-visit study). The
within-person (visit-to-visit) SD on the natural-log scale is therefore::

    within_log_sd_j = log_sd_j * sqrt(1 - participant_icc),  participant_icc = 0.57

0.57 is the median intraclass correlation of serum metabolites (Biocrates
AbsoluteIDQ p150) measured twice 4 months apart in EPIC-Potsdam (Floegel et al.
2011, PLoS One 6:e21103, doi:10.1371/journal.pone.0021103); Carayol
et al. 2015 (PLoS One 10:e0135437, p180 kit, two years apart) report medians of
0.70 (fasting) and 0.50 (non-fasting), and Townsend et al. 2013 (Clin Chem
59:1657-1667) similar ICCs of plasma metabolites over 1-2 years. With the panel's
median ``log_sd`` of 0.30 this gives a within-person SD of 0.20 on the log scale,
an intra-individual CV of about 20 % (0.04-0.66 across the panel: 4 % for
hexose, 66 % for CRP), between-person variation larger, as in those studies.

The severity total (HQ-25) has a test-retest reliability of ``severity_retest_icc``
(0.8; Teo et al. 2018, Psychiatry Clin Neurosci 72:780-788, report a satisfactory
test-retest reliability of the HQ-25). In controls the total is split into a
person part and a visit part with that ICC: within-person SD
``control_severity_sd * sqrt(1 - 0.8)`` = 4.5. In cases the part linked to the blood
already varies between visits with the analytes (variance
``severity_r2 * (1 - participant_icc) * case_severity_sd**2``); the residual gets a
visit part only for what that leaves to reach ``(1 - 0.8) * case_severity_sd**2``,
so the case within-person SD is ``case_severity_sd * sqrt(max(0.2, 0.5 * 0.43))``
= 5.6 with the defaults (``truth.json``, ``treatment.within_person``).

Treatment. ``treated_share`` of the cases (``treated``) start an intervention
between visit 1 and visit 2. By visit v they have lost
``treatment_recovery * (v - 1) / (visits - 1)`` of each planted case effect in the
blood (long-chain acylcarnitines; the male-only effects; not the subtypes, which
are no case-control difference) and the same share of the case-control
difference of the severity means (``case_severity_mean - control_severity_mean``)
in their severity total: by the last visit, ``treatment_recovery`` of each; at
the last visit that share of them also go out 4 or more days a week (criteria).
Untreated cases and controls do not drift. Visit 1 of each participant falls on
a seeded day within a year from ``study_start``, the next visits every
``30 * visit_interval_months`` days (:meth:`SyntheticStudy.visit_dates`); each
treated case has one intervention (:meth:`SyntheticStudy.interventions`).

Sites (``sites`` K > 1)
-----------------------
A multi-site consortium: every participant belongs to one of K recruiting sites
(``site1`` ... ``siteK``), each measured by its own laboratory. All site draws
come from a stream of their own (``SeedSequence(seed, spawn_key=(0, 1))``), in
this order:

* case share: ``n_cases / n_participants + Uniform(-site_case_share_spread,
  +site_case_share_spread)`` per site (0.2: between 0.3 and 0.7 for a 50/50
  study), clipped to 0.05-0.95;
* male share: ``male_share + Uniform(-site_male_share_spread,
  +site_male_share_spread)`` per site (0.15), clipped to 0-1;
* sizes: the participants are split as evenly as possible (the first
  ``n_participants % K`` sites get one more); the requested ``n_cases`` are
  apportioned to the sites in proportion to size x case share (largest
  remainder, at least one case and one control per site), the rest of each site
  are controls; which cases and controls go to which site is a seeded
  permutation;
* laboratory offset per site x analyte: ``log offset ~ N(0, site_offset_sd^2)``
  on the natural-log scale (0.15; a multiplicative factor ``exp(offset)``,
  about +-15 %), rounded to 6 decimals;
* scale factor per site: ``exp(N(0, site_scale_sd^2))`` (0.1; about +-10 %),
  rounded to 6 decimals, multiplying the random part ``z`` (person and visit
  variation) of every analyte at the site.

The men of a site are ``round(male share x n)`` of its cases and of its
controls alike (drawn from the participant stream), so sex stays balanced
between the groups within a site. The measured value of a study sample is::

    log x = log(geo_mean_j) +/- male_log_ratio_j / 2
            + log_sd_j * (scale_k * z_pvj + shift_pvj) + batch_bj + offset_kj

so the planted shifts (case effects, sexes, subtypes, treatment) are the same
log ratios at every site: the offset multiplies everyone at a site alike, and
the scale factor widens or narrows only the spread around the group means
(location and scale differences, the model of ComBat). The severity scores
follow the biology (``z``), not the laboratory. The limit of detection is the
same everywhere, so a site with a negative offset has more values below it.
QC samples belong to no site and get no offset. With ``sites`` = 1 nothing of
this is drawn and the files are those of a single-site study, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from hikisig.assess.definition import Instrument, load_instrument
from hikisig.synth.config import SynthConfig
from hikisig.synth.items import answers_for_totals
from hikisig.synth.panel import MALE_EFFECTS, build_panel

__all__ = ["INTERVENTION_KINDS", "Chunk", "SyntheticStudy", "instrument_means"]


def _apportion(total: int, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integers summing to ``total``, proportional to ``weights`` (largest remainder), each
    between ``lo`` and ``hi`` (``lo.sum() <= total <= hi.sum()``)."""
    target = total * weights / weights.sum()
    counts = np.clip(np.floor(target).astype(np.int64), lo, hi)
    while counts.sum() < total:
        room = np.where(counts < hi, target - counts, -np.inf)
        counts[int(np.argmax(room))] += 1
    while counts.sum() > total:
        excess = np.where(counts > lo, counts - target, -np.inf)
        counts[int(np.argmax(excess))] -= 1
    return counts

#: Kinds of intervention (``interventions.csv``), with the detail written for each.
INTERVENTION_KINDS: dict[str, str] = {
    "psychotherapy": "individual psychotherapy sessions",
    "family_support": "family support and psychoeducation sessions",
    "online_programme": "online support programme",
    "social_robot": "social robot at home",
    "medication": "pharmacotherapy (substance not specified)",
    "day_programme": "day programme at a community centre",
    "other": "other support",
}

#: Where the within-person variation of the follow-up comes from (``truth.json``).
WITHIN_PERSON_SOURCES: list[str] = [
    "Floegel A et al. Reliability of serum metabolite concentrations over a 4-month period "
    "using a targeted metabolomic approach. PLoS One 2011;6:e21103 "
    "(Biocrates p150, median ICC 0.57)",
    "Carayol M et al. Reliability of serum metabolites over a two-year period: a targeted "
    "metabolomic approach in fasting and non-fasting samples from EPIC. PLoS One "
    "2015;10:e0135437 (Biocrates p180, median ICC 0.70 fasting, 0.50 non-fasting)",
    "Townsend MK et al. Reproducibility of metabolomic profiles among men and women in 2 large "
    "cohort studies. Clin Chem 2013;59:1657-1667 (plasma metabolites over 1-2 years)",
    "Teo AR et al. Development and validation of the 25-item Hikikomori Questionnaire (HQ-25). "
    "Psychiatry Clin Neurosci 2018;72:780-788 (test-retest reliability satisfactory; ICC 0.8 "
    "assumed here)",
]

#: (case mean, case SD, control mean, control SD) of the other questionnaires' totals.
instrument_means: dict[str, tuple[float, float, float, float]] = {
    "phq9": (11.0, 5.0, 3.0, 3.0),
    "k6": (10.0, 5.0, 3.0, 3.0),
    "k10": (25.0, 7.0, 14.0, 4.0),
    "ucla3": (56.0, 8.0, 38.0, 8.0),
    "lsns6": (8.0, 4.0, 17.0, 5.0),
}


@dataclass
class Chunk:
    """One block of rows (participant-visits) with everything generated for them."""

    samples: pd.DataFrame
    values: np.ndarray
    below_lod: np.ndarray
    responses: dict[str, pd.DataFrame]
    criteria: pd.DataFrame
    true_log: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


class SyntheticStudy:
    """A synthetic study defined by a :class:`SynthConfig`.

    Examples
    --------
    >>> from hikisig.synth.config import preset
    >>> study = SyntheticStudy(preset(seed=1))
    >>> study.participants["group"].value_counts().to_dict()
    {'case': 42, 'control': 41}
    """

    def __init__(self, config: SynthConfig) -> None:
        self.config = c = config
        unknown = [a for a in c.severity_analytes if a not in set(build_panel(10**4, set())["id"])]
        if unknown:
            raise ValueError(f"severity analytes not in the catalog panel: {', '.join(unknown)}")
        keep = set(c.severity_analytes) | set(MALE_EFFECTS) | {"uric_acid"}
        self.panel = build_panel(c.n_analytes, keep)
        self.instruments: dict[str, Instrument] = {i: load_instrument(i) for i in c.instruments}
        root = np.random.SeedSequence(c.seed)
        self.rows_per_participant = c.visits
        per_chunk = max(1, c.chunk_cells // max(1, c.n_analytes * c.visits))
        self.chunk_participants = per_chunk
        self.n_chunks = -(-c.n_participants // per_chunk)
        children = root.spawn(2 + self.n_chunks)
        self._participant_seed, self._batch_seed = children[0], children[1]
        self._chunk_seeds = children[2:]
        # visit dates and interventions: a stream of their own, so that adding them left every
        # other value of a seed unchanged
        self._dates_seed = np.random.SeedSequence(c.seed, spawn_key=(0, 0))
        # sites: a stream of their own too (see "Sites" in the module docstring)
        self._site_seed = np.random.SeedSequence(c.seed, spawn_key=(0, 1))
        self.participants = self._draw_participants()
        self._effects()
        self._site_effects()

    # -- participants ---------------------------------------------------------
    def _draw_participants(self) -> pd.DataFrame:
        c = self.config
        rng = np.random.default_rng(self._participant_seed)
        n = c.n_participants
        is_case = np.zeros(n, dtype=bool)
        is_case[rng.permutation(n)[: c.n_cases]] = True
        male = np.zeros(n, dtype=bool)
        site = np.zeros(n, dtype=np.int64)
        if c.sites == 1:
            for grp in (is_case, ~is_case):
                idx = np.flatnonzero(grp)
                n_male = round(c.male_share * idx.size)
                male[rng.permutation(idx)[:n_male]] = True
        else:
            site = self._assign_sites(is_case)
            for k in range(c.sites):
                for grp in (is_case, ~is_case):
                    idx = np.flatnonzero(grp & (site == k))
                    n_male = round(float(self.site_male_share[k]) * idx.size)
                    male[rng.permutation(idx)[:n_male]] = True
        age = rng.integers(c.age_min, c.age_max + 1, size=n)
        subtype = np.zeros(n, dtype=np.int8)
        cases = np.flatnonzero(is_case)
        n_two = round(c.subtype_share * cases.size)
        subtype[cases] = 1
        subtype[rng.permutation(cases)[:n_two]] = 2
        treated = np.zeros(n, dtype=bool)
        if c.visits > 1:
            treated[rng.permutation(cases)[: round(c.treated_share * cases.size)]] = True
        width = max(5, len(str(n)))
        self.site_index = site
        frame = pd.DataFrame({
            "id": [f"SYN{k:0{width}d}" for k in range(1, n + 1)],
            "sex": np.where(male, "M", "F"),
            "age": age,
            "group": np.where(is_case, "case", "control"),
            "subtype": subtype,
            "treated": treated,
        })
        if c.sites > 1:
            frame["site"] = self.site_names[site]
        return frame

    # -- sites -----------------------------------------------------------------
    def _assign_sites(self, is_case: np.ndarray) -> np.ndarray:
        """Draw each site's case and male share, apportion the cases and controls to the sites
        and assign them (a site index per participant); see "Sites" in the module docstring."""
        c = self.config
        k_sites = c.sites
        rng = np.random.default_rng(self._site_seed)
        self._site_rng = rng
        self.site_names = np.array([f"site{k + 1}" for k in range(k_sites)])
        share = c.n_cases / c.n_participants
        self.site_case_share_target = np.clip(
            share + rng.uniform(-c.site_case_share_spread, c.site_case_share_spread, k_sites),
            0.05, 0.95)
        self.site_male_share = np.clip(
            c.male_share + rng.uniform(-c.site_male_share_spread, c.site_male_share_spread,
                                       k_sites), 0.0, 1.0)
        n = c.n_participants
        size = np.full(k_sites, n // k_sites)
        size[: n % k_sites] += 1
        n_case = _apportion(c.n_cases, size * self.site_case_share_target,
                            np.ones(k_sites, dtype=np.int64), size - 1)
        self.site_n_case, self.site_n_control = n_case, size - n_case
        site = np.zeros(n, dtype=np.int64)
        for grp, counts in ((is_case, n_case), (~is_case, size - n_case)):
            idx = rng.permutation(np.flatnonzero(grp))
            site[idx] = np.repeat(np.arange(k_sites), counts)
        return site

    def _site_effects(self) -> None:
        """The laboratory offset (site x analyte) and scale factor (site) on the log scale."""
        c = self.config
        n_an = len(self.log_mean)
        self.site_log_offset: np.ndarray = np.zeros((1, n_an))
        self.site_scale: np.ndarray = np.ones(1)
        if c.sites == 1:
            return
        rng = self._site_rng
        self.site_log_offset = np.round(rng.normal(0.0, c.site_offset_sd, (c.sites, n_an)), 6)
        self.site_scale = np.round(np.exp(rng.normal(0.0, c.site_scale_sd, c.sites)), 6)

    def sites_truth(self) -> dict[str, Any]:
        """The ``sites`` entry of ``truth.json`` (only with ``sites`` > 1)."""
        c, p = self.config, self.participants
        ids = self.panel["id"].tolist()
        per_site: dict[str, Any] = {}
        for k, name in enumerate(self.site_names):
            at = self.site_index == k
            per_site[str(name)] = {
                "n": int(at.sum()),
                "n_case": int(self.site_n_case[k]),
                "n_control": int(self.site_n_control[k]),
                "case_share": float(self.site_n_case[k] / at.sum()),
                "case_share_drawn": float(self.site_case_share_target[k]),
                "women_share": float((p["sex"].to_numpy()[at] == "F").mean()),
                "male_share_drawn": float(self.site_male_share[k]),
                "scale": float(self.site_scale[k]),
                "log_offset": {a: float(o) for a, o in zip(ids, self.site_log_offset[k],
                                                           strict=True)},
            }
        return {
            "n_sites": c.sites,
            "offset_log_sd": c.site_offset_sd,
            "scale_log_sd": c.site_scale_sd,
            "case_share_spread": c.site_case_share_spread,
            "male_share_spread": c.site_male_share_spread,
            "rule": "log x = log(geo_mean) +/- male_log_ratio/2 + log_sd * (scale_site * z + "
                    "shift) + batch + log_offset[site, analyte] (natural log): log_offset ~ "
                    "N(0, offset_log_sd^2) per site x analyte, scale_site = exp(N(0, "
                    "scale_log_sd^2)) per site on the random part only; planted shifts are the "
                    "same at every site. Site case share = study share + U(-spread, +spread), "
                    "male share = male_share + U(-spread, +spread); n_cases apportioned to "
                    "near-equal sites by size x case share. QC samples have no site.",
            "sites": per_site,
        }

    # -- effects -------------------------------------------------------------
    def _effects(self) -> None:
        c, p = self.config, self.panel
        ids = p["id"].tolist()
        self.lcac = ((p["class"] == "acylcarnitine") & (p["subclass"] == "long")).to_numpy(float)
        self.male_vec = np.array([MALE_EFFECTS.get(i, 0.0) for i in ids])
        self.subtype_vec = ((p["class"] == "cholesterol_ester") | (p["id"] == "uric_acid")).to_numpy(float)
        classes = p["class"].astype("category")
        self.class_idx = classes.cat.codes.to_numpy()
        self.n_classes = len(classes.cat.categories)
        self.log_mean = np.log(p["geo_mean"].to_numpy(float))
        self.log_sd = p["log_sd"].to_numpy(float)
        self.half_sex = p["male_log_ratio"].to_numpy(float) / 2
        q = p["lod_quantile"].to_numpy(float)
        with np.errstate(divide="ignore"):
            self.lod = np.where((q > 0) & c.lod, np.exp(self.log_mean + self.log_sd * sps.norm.ppf(
                np.clip(q, 1e-12, 1 - 1e-12))), 0.0)
        rng = np.random.default_rng(self._batch_seed)
        self.batch_shift = (rng.normal(0, c.batch_sd, size=(c.batches, len(ids))) if c.batch_sd > 0
                            else np.zeros((c.batches, len(ids))))
        # severity: beta scaled so that var(signal) = r2 * sd^2 given the class correlation
        self.sev_idx = np.array([ids.index(a) for a in c.severity_analytes])
        w = np.array(list(c.severity_analytes.values()), dtype=float)
        same = self.class_idx[self.sev_idx][:, None] == self.class_idx[self.sev_idx][None, :]
        corr = np.where(same, c.class_correlation, 0.0)
        np.fill_diagonal(corr, 1.0)
        scale = np.sqrt(c.severity_r2 * c.case_severity_sd**2 / float(w @ corr @ w)) if c.severity_r2 else 0.0
        self.sev_beta = w * scale
        self.sev_noise_sd = np.sqrt(1 - c.severity_r2) * c.case_severity_sd
        # within-person (visit-to-visit) variation, see the module docstring
        follow_up = c.visits > 1
        self.within_log_sd = self.log_sd * np.sqrt(1 - c.participant_icc) if follow_up \
            else np.zeros_like(self.log_sd)
        target = (1 - c.severity_retest_icc) * c.case_severity_sd**2
        blood = c.severity_r2 * (1 - c.participant_icc) * c.case_severity_sd**2
        noise_within = min(self.sev_noise_sd**2, max(0.0, target - blood))
        self.sev_noise_within_sd = float(np.sqrt(noise_within))
        self.sev_noise_person_sd = float(np.sqrt(self.sev_noise_sd**2 - noise_within))
        self.sev_within_sd = {
            "case": float(np.sqrt(blood + noise_within)) if follow_up else 0.0,
            "control": float(c.control_severity_sd * np.sqrt(1 - c.severity_retest_icc))
            if follow_up else 0.0}

    # -- chunks --------------------------------------------------------------
    def _structured_normal(self, rng: np.random.Generator, n: int) -> np.ndarray:
        rho = self.config.class_correlation
        f = rng.standard_normal((n, self.n_classes))
        e = rng.standard_normal((n, len(self.log_mean)))
        out = np.sqrt(1 - rho) * e
        out += np.sqrt(rho) * f[:, self.class_idx]
        return out

    def chunks(self) -> Iterator[Chunk]:
        """Yield the study chunk by chunk (rows ordered by participant, then visit)."""
        for k in range(self.n_chunks):
            yield self.chunk(k)

    def chunk(self, k: int) -> Chunk:
        """Generate chunk ``k`` (reproducible on its own)."""
        c = self.config
        rng = np.random.default_rng(self._chunk_seeds[k])
        a = k * self.chunk_participants
        b = min(c.n_participants, a + self.chunk_participants)
        part = self.participants.iloc[a:b]
        n_p, v = b - a, c.visits
        n = n_p * v
        pidx = np.repeat(np.arange(n_p), v)
        visit = np.tile(np.arange(1, v + 1), n_p)
        u = self._structured_normal(rng, n_p)
        icc = c.participant_icc if v > 1 else 1.0
        z = np.sqrt(icc) * u[pidx]
        if icc < 1.0:
            z += np.sqrt(1 - icc) * self._structured_normal(rng, n)
        case = (part["group"].to_numpy() == "case")[pidx]
        male = (part["sex"].to_numpy() == "M")[pidx]
        subtype = part["subtype"].to_numpy()[pidx]
        treated = part["treated"].to_numpy()[pidx]
        progress = (visit - 1) / (v - 1) if v > 1 else np.zeros(n)
        keep_effect = np.where(treated, 1 - c.treatment_recovery * progress, 1.0)
        shift = np.outer(case * keep_effect * c.lcac_d, self.lcac)
        shift += np.outer(case * male * keep_effect * c.male_d, self.male_vec)
        sub_sign = np.where(subtype == 2, 0.5, np.where(subtype == 1, -0.5, 0.0))
        shift += np.outer(sub_sign * c.subtype_d, self.subtype_vec)
        sev_z = z[:, self.sev_idx]
        if c.sites > 1:
            site = self.site_index[a:b][pidx]
            z *= self.site_scale[site][:, None]
        z += shift
        z *= self.log_sd
        z += self.log_mean
        z += np.where(male, 1.0, -1.0)[:, None] * self.half_sex
        global_row = a * v + np.arange(n)
        batch = (global_row * c.batches) // (c.n_participants * v)
        if c.batch_sd > 0:
            z += self.batch_shift[batch]
        if c.sites > 1:
            z += self.site_log_offset[site]
        values = np.exp(z)
        below = values < self.lod
        ids = part["id"].to_numpy()[pidx]
        samples = pd.DataFrame({"id": ids, "visit": visit, "sample_type": "study",
                                "batch": batch + 1})
        # questionnaires
        totals: dict[str, np.ndarray] = {}
        if v == 1:
            sev = np.where(case,
                           c.case_severity_mean + sev_z @ self.sev_beta
                           + self.sev_noise_sd * rng.standard_normal(n),
                           c.control_severity_mean + c.control_severity_sd * rng.standard_normal(n))
        else:  # a stable person part and a visit part (test-retest reliability)
            person = rng.standard_normal(n_p)[pidx]
            occasion = rng.standard_normal(n)
            rel = c.severity_retest_icc
            sev = np.where(case,
                           c.case_severity_mean + sev_z @ self.sev_beta
                           + self.sev_noise_person_sd * person + self.sev_noise_within_sd * occasion,
                           c.control_severity_mean + c.control_severity_sd
                           * (np.sqrt(rel) * person + np.sqrt(1 - rel) * occasion))
        sev = np.where(case & treated, sev - c.treatment_recovery * progress
                       * (c.case_severity_mean - c.control_severity_mean), sev)
        totals[c.severity_instrument] = np.clip(np.rint(sev), 0, 100)
        sev_std = np.where(case, (sev - c.case_severity_mean) / c.case_severity_sd,
                           (sev - c.control_severity_mean) / c.control_severity_sd)
        mood = 0.5 * sev_std + np.sqrt(0.75) * rng.standard_normal(n)
        responses: dict[str, pd.DataFrame] = {}
        for iid, inst in self.instruments.items():
            if iid not in totals:
                cm, cs, km, ks = instrument_means.get(iid, (0.6, 0.15, 0.3, 0.15))
                if iid not in instrument_means:  # as a share of the range
                    span = inst.max_total - inst.min_total
                    cm, cs, km, ks = (inst.min_total + cm * span, cs * span,
                                      inst.min_total + km * span, ks * span)
                level = np.where(case, cm + cs * mood, km + ks * mood)
                if iid in ("ucla3", "lsns6"):
                    level = np.where(case, cm + cs * sev_std, km + ks * sev_std) if iid == "ucla3" \
                        else np.where(case, cm - cs * sev_std, km - ks * sev_std)
                totals[iid] = np.clip(np.rint(level), inst.min_total, inst.max_total)
            raw = answers_for_totals(inst, totals[iid], rng)
            frame = pd.DataFrame(raw.astype(np.int64), columns=inst.item_columns)
            frame.insert(0, "id", ids)
            if v > 1:
                frame.insert(1, "visit", visit)
            responses[iid] = frame
        criteria = self._criteria(rng, ids, visit, case, treated, progress, totals[c.severity_instrument])
        if c.qc_every > 0:
            samples, values, below = self._add_qc(rng, k, samples, values, below)
        if c.dtype == "float32":
            values = values.astype(np.float32)
        return Chunk(samples, values, below, responses, criteria, sev_z)

    def _criteria(self, rng: np.random.Generator, ids: np.ndarray, visit: np.ndarray,
                  case: np.ndarray, treated: np.ndarray, progress: np.ndarray,
                  severity: np.ndarray) -> pd.DataFrame:
        n = len(ids)
        # cases: severity class follows the severity score (higher -> more confined)
        rank = np.clip((severity - 30) / 60 + 0.25 * rng.standard_normal(n), 0, 1)
        severe = case & (rank > 0.75)
        moderate = case & ~severe & (rank > 0.4)
        days = np.where(severe, 0, np.where(moderate, rng.integers(0, 2, n), rng.integers(2, 4, n)))
        days = np.where(case, days, rng.integers(4, 8, n))
        months = np.where(case, np.round(6 + rng.lognormal(np.log(24), 0.8, n), 1), 0.0)
        impairment = case & (rng.random(n) < 0.9)
        distress = case & ((rng.random(n) < 0.8) | ~impairment)
        # at the last visit, a share treatment_recovery of the treated cases go out again
        recovered = np.zeros(n, dtype=bool)
        if self.config.visits > 1:
            recovered = (case & treated & (progress >= 0.99)
                         & (rng.random(n) < self.config.treatment_recovery))
        days = np.where(recovered, np.maximum(days, 4), days)
        frame = pd.DataFrame({
            "id": ids, "days_out_per_week": days,
            "rarely_leaves_room": np.where(severe & ~recovered, "yes", "no"),
            "months_isolated": months,
            "impairment": np.where(impairment, "yes", "no"),
            "distress": np.where(distress, "yes", "no")})
        if self.config.visits > 1:
            frame.insert(1, "visit", visit)
        return frame

    def _add_qc(self, rng: np.random.Generator, k: int, samples: pd.DataFrame, values: np.ndarray,
                below: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        c = self.config
        n_qc = -(-len(samples) // c.qc_every)
        log_qc = self.log_mean + 0.05 * rng.standard_normal((n_qc, len(self.log_mean)))
        pos = np.arange(n_qc) * c.qc_every
        qc_batch = samples["batch"].to_numpy()[np.minimum(pos, len(samples) - 1)]
        if c.batch_sd > 0:
            log_qc += self.batch_shift[qc_batch - 1]
        qc_vals = np.exp(log_qc)
        qc = pd.DataFrame({"id": [f"QC{k + 1:04d}_{j + 1:03d}" for j in range(n_qc)],
                           "visit": 0, "sample_type": "qc", "batch": qc_batch})
        order = np.argsort(np.concatenate([pos - 0.5, np.arange(len(samples))]), kind="stable")
        all_samples = pd.concat([qc, samples], ignore_index=True).iloc[order].reset_index(drop=True)
        all_vals = np.concatenate([qc_vals, values])[order]
        all_below = np.concatenate([qc_vals < self.lod, below])[order]
        return all_samples, all_vals, all_below

    # -- visits and interventions -------------------------------------------------
    @property
    def visit_interval_days(self) -> int:
        """Days between two visits of a participant (30 per ``visit_interval_months``)."""
        return 30 * self.config.visit_interval_months

    def _dates(self) -> tuple[np.ndarray, np.random.Generator]:
        rng = np.random.default_rng(self._dates_seed)
        start = np.datetime64(self.config.study_start, "D")
        first = start + rng.integers(0, 365, size=self.config.n_participants).astype("timedelta64[D]")
        return first, rng

    def visit_dates(self) -> pd.DataFrame:
        """``id, visit, date`` (ISO) of every participant's visits: visit 1 on a seeded day
        within a year from ``study_start``, then every :attr:`visit_interval_days` days."""
        c = self.config
        first, _ = self._dates()
        step = (np.arange(c.visits) * self.visit_interval_days).astype("timedelta64[D]")
        dates = (first[:, None] + step[None, :]).ravel()
        return pd.DataFrame({"id": np.repeat(self.participants["id"].to_numpy(), c.visits),
                             "visit": np.tile(np.arange(1, c.visits + 1), c.n_participants),
                             "date": np.datetime_as_string(dates, unit="D")})

    def interventions(self) -> pd.DataFrame:
        """One intervention per treated case: ``participant, kind, start, end, detail``.

        ``kind`` is a seeded choice of :data:`INTERVENTION_KINDS`; ``start`` falls strictly
        between the participant's visit 1 and visit 2; ``end`` is empty (ongoing, half of
        them) or 1-180 days after the last visit. Empty without follow-up or treated cases.
        """
        c = self.config
        columns = ["participant", "kind", "start", "end", "detail"]
        treated = np.flatnonzero(self.participants["treated"].to_numpy())
        if c.visits < 2 or treated.size == 0:
            return pd.DataFrame(columns=columns)
        first, rng = self._dates()
        kinds = list(INTERVENTION_KINDS)
        kind = np.array(kinds)[rng.integers(0, len(kinds), size=treated.size)]
        gap = self.visit_interval_days
        start = first[treated] + rng.integers(1, gap, size=treated.size).astype("timedelta64[D]")
        last = first[treated] + np.timedelta64((c.visits - 1) * gap, "D")
        ongoing = rng.random(treated.size) < 0.5
        end = last + rng.integers(1, 181, size=treated.size).astype("timedelta64[D]")
        return pd.DataFrame({
            "participant": self.participants["id"].to_numpy()[treated],
            "kind": kind,
            "start": np.datetime_as_string(start, unit="D"),
            "end": np.where(ongoing, "", np.datetime_as_string(end, unit="D")),
            "detail": [INTERVENTION_KINDS[k] for k in kind],
        }, columns=columns)

    def treatment_truth(self) -> dict[str, Any]:
        """The ``treatment`` entry of ``truth.json``: who was treated, by how much the planted
        differences shrink, and the within-person variation with its sources."""
        c, p = self.config, self.participants
        ids = self.panel["id"].tolist()
        treated = p.loc[p["treated"].to_numpy(), "id"].tolist()
        gap = c.case_severity_mean - c.control_severity_mean
        follow_up = c.visits > 1
        return {
            "treated_share": c.treated_share,
            "treatment_effect": c.treatment_effect,
            "n_treated": len(treated),
            "treated": treated,
            "population": "cases (controls are never treated)",
            "visits": list(range(1, c.visits + 1)),
            "intervention_starts": "between visit 1 and visit 2" if follow_up else None,
            "share_removed_by_visit": {
                str(v): (c.treatment_effect * (v - 1) / (c.visits - 1) if follow_up else 0.0)
                for v in range(1, c.visits + 1)},
            "blood": "each planted case effect (log_shift in effects) is multiplied by "
                     "1 - share_removed_by_visit in treated cases; subtype differences stay",
            "severity": {
                "instrument": c.severity_instrument,
                "case_control_difference": gap,
                "drop_by_last_visit": c.treatment_effect * gap if follow_up else 0.0,
                "rule": "treated cases' total lowered by share_removed_by_visit x "
                        "(case_severity_mean - control_severity_mean), then rounded and "
                        "clipped to 0-100"},
            "visit_dates": (f"visit 1 on a seeded day within 365 days from {c.study_start}, then "
                            f"every {self.visit_interval_days} days") if follow_up else None,
            "interventions_file": "interventions.csv" if len(treated) and follow_up else None,
            "within_person": {
                "blood_rule": "within_log_sd = log_sd * sqrt(1 - participant_icc) on the natural-"
                              "log scale; total SD log_sd unchanged" if follow_up
                              else "single visit: no within-person variation",
                "participant_icc": c.participant_icc if follow_up else None,
                "within_log_sd": {a: round(float(sd), 6) for a, sd in
                                  zip(ids, self.within_log_sd, strict=True)},
                "median_within_log_sd": float(np.median(self.within_log_sd)),
                "severity_retest_icc": c.severity_retest_icc if follow_up else None,
                "severity_within_sd": self.sev_within_sd,
                "sources": WITHIN_PERSON_SOURCES,
            },
        }

    # -- truth -----------------------------------------------------------------
    def truth(self) -> dict[str, Any]:
        """Everything planted: effects, subtypes, severity model, levels, config."""
        c, p = self.config, self.panel
        ids = p["id"].tolist()
        effects = []
        for j in np.flatnonzero(self.lcac):
            effects.append({"analyte": ids[j], "contrast": "case_vs_control", "sexes": ["M", "F"],
                            "cohen_d": c.lcac_d, "direction": "higher in cases",
                            "log_shift": c.lcac_d * self.log_sd[j]})
        for j in np.flatnonzero(self.male_vec):
            effects.append({"analyte": ids[j], "contrast": "case_vs_control", "sexes": ["M"],
                            "cohen_d": float(c.male_d * self.male_vec[j]),
                            "direction": "higher in male cases" if self.male_vec[j] > 0
                            else "lower in male cases",
                            "log_shift": float(c.male_d * self.male_vec[j] * self.log_sd[j])})
        planted = set(np.flatnonzero(self.lcac)) | set(np.flatnonzero(self.male_vec)) | set(
            np.flatnonzero(self.subtype_vec))
        cases = self.participants[self.participants["group"] == "case"]
        return {
            "synthetic": True,
            "study": c.study,
            "note": "Synthetic data generated by hikisig; no real participant.",
            "config": c.truth_dump(),
            "effects": effects,
            "subtypes": {
                "analytes": [ids[j] for j in np.flatnonzero(self.subtype_vec)],
                "cohen_d_between_subtypes": c.subtype_d,
                "description": "subtype 2 higher than subtype 1 by subtype_d in uric acid and "
                               "cholesterol esters; centred so cases and controls do not differ",
                "assignment": dict(zip(cases["id"], cases["subtype"].astype(int).tolist(),
                                       strict=True)),
            },
            "severity": {
                "instrument": c.severity_instrument,
                "population": "cases",
                "intercept": c.case_severity_mean,
                "coefficients_per_sd_log": dict(zip(c.severity_analytes, self.sev_beta.tolist(),
                                                    strict=True)),
                "noise_sd": self.sev_noise_sd,
                "r2": c.severity_r2,
                "standardisation": "value of log(x) minus its group/sex/subtype mean, divided by "
                                   "the analyte's log_sd",
            },
            "sex_baseline_log_ratio": {ids[j]: float(2 * self.half_sex[j])
                                       for j in np.flatnonzero(self.half_sex)},
            "null_analytes": [ids[j] for j in range(len(ids)) if j not in planted],
            "limits_of_detection": {ids[j]: float(self.lod[j]) for j in np.flatnonzero(self.lod)},
            "analytes": p.drop(columns=["source"]).to_dict("records"),
            "treatment": self.treatment_truth(),
            **({"sites": self.sites_truth()} if c.sites > 1 else {}),
        }

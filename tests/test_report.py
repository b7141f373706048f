"""The self-contained HTML report."""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from hikisig.assess.answers import check_answers
from hikisig.assess.scoring import score
from hikisig.config import StudyConfig
from hikisig.models.discriminate import discriminate
from hikisig.models.projection import cluster_matrix, pca_scores
from hikisig.models.severity import severity
from hikisig.models.signature import consensus_signature
from hikisig.models.stratify import stratify
from hikisig.prep.markers import derived_markers
from hikisig.report import render_report
from hikisig.results import PreprocessingStep, Provenance, RunMethods, RunResults
from hikisig.stats import case_control
from hikisig.stats.describe import cohort_summary, group_summary, missingness
from hikisig.synth import SyntheticStudy, preset

FIGURES = ["fig-missingness", "fig-pca", "fig-volcano-all", "fig-volcano-M", "fig-volcano-F", "fig-boxplots",
           "fig-markers", "fig-roc", "fig-calibration", "fig-pls", "fig-vip", "fig-clusters", "fig-profiles"]
STEPS = ["values below LOD set missing", "half-minimum imputation", "probabilistic quotient normalisation",
         "log2 transform", "autoscaling"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results() -> RunResults:
    s = SyntheticStudy(preset(seed=1))
    chunks = list(s.chunks())
    ids = pd.concat([c.samples for c in chunks], ignore_index=True)["id"].to_numpy()
    values = np.concatenate([c.values for c in chunks])
    below = np.concatenate([c.below_lod for c in chunks])
    X = pd.DataFrame(np.where(below, np.nan, values), columns=list(s.panel["id"]), index=ids)
    obs = s.participants.set_index("id").loc[X.index, ["group", "sex", "age"]].copy()
    obs["participant"] = obs.index
    obs["visit"] = 1
    var = s.panel.set_index("id")[["class", "unit"]].copy()
    var.insert(0, "display_name", var.index)
    markers, formulas = derived_markers(X)
    case = obs["group"] == "case"
    stats = case_control(pd.concat([X, markers], axis=1), case, by=obs["sex"], covariates=obs[["age"]])
    frames = []
    for iid, inst in s.instruments.items():
        resp = pd.concat([c.responses[iid] for c in chunks], ignore_index=True)
        sc = score(check_answers(resp.astype(str), inst), inst)
        sc["instrument"] = iid
        frames.append(sc)
    q = pd.concat(frames, ignore_index=True)
    q["visit"] = 1
    q["group"] = obs.loc[q["id"], "group"].to_numpy()
    q["sex"] = obs.loc[q["id"], "sex"].to_numpy()
    crit = pd.DataFrame({"id": obs.index, "status": np.where(case, "hikikomori", "not"),
                         "severity": np.where(case, "moderate", ""), "group": obs["group"].to_numpy()})
    d = discriminate(X, case.to_numpy(), cv_repeats=1, permutations=50, n_estimators=50)
    Xc = X[case.to_numpy()]
    hq = q[q["instrument"] == "hq25"].set_index("id")["total"]
    sv = severity(Xc, hq.loc[Xc.index].to_numpy(float), cv_repeats=1, permutations=20, max_components=3)
    st = stratify(Xc, bootstraps=5)
    top = st.signature["analyte"].head(20).tolist()
    cluster_values, cluster_of = cluster_matrix(X, st.tables["assignments"], top)
    per_analyte, per_sample = missingness(X)
    qs = pd.concat([group_summary(sub["total"], sub["group"], ["control", "case"]).assign(instrument=i)
                    for i, sub in q.groupby("instrument")], ignore_index=True)
    return RunResults(
        config=StudyConfig(), study="Synthetic reference study", synthetic=True, X=X, obs=obs,
        var=var, markers=markers, marker_formulas=formulas, stats=stats,
        cohort=cohort_summary(obs["group"], "case", "control", obs["sex"], obs["age"]),
        missing_by_analyte=per_analyte, missing_by_sample=per_sample, pca=pca_scores(X),
        questionnaires=q[["id", "visit", "instrument", "total", "band", "group", "sex"]],
        questionnaire_summary=qs, criteria=crit, discrimination=d, severity=sv, stratification=st,
        cluster_values=cluster_values, cluster_of=cluster_of,
        consensus=consensus_signature([d, sv, st]),
        methods=RunMethods(preprocessing=[PreprocessingStep(n) for n in STEPS],
                           tests=["welch", "mwu"], by="sex", covariates=["age"], seed=0,
                           engine="local"),
        provenance=Provenance(config_sha256="a" * 64, data_sha256="b" * 64, study="s", synthetic=True,
                              seed=0, engine="local", start_time="2024-05-01T11:58:00+00:00",
                              end_time="2024-05-01T12:00:00+00:00", platform="test",
                              versions={"hikisig": "0.1.0", "numpy": np.__version__,
                                        "pandas": pd.__version__}))


@pytest.fixture(scope="module")
def html(results: RunResults) -> str:
    return render_report(results)


class _Checker(HTMLParser):
    VOID: ClassVar[set[str]] = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.imgs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img":
            self.imgs.append(a)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()


def test_report_content(results: RunResults, html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    p = _Checker()
    p.feed(html)
    p.close()
    assert p.stack == []
    assert len(p.ids) == len(set(p.ids))
    for fid in FIGURES:
        assert fid in p.ids
        assert re.search(rf'<figure id="{fid}">\s*<img [^>]*alt="[^"]+"', html)
    assert "SYNTHETIC DATA" in html
    assert "Research use only" in html
    methods = html[html.index('<section id="methods">'):html.index('<section id="provenance">')]
    for word in ["DeLong", "bootstrap", "Benjamini", "Wilson", *STEPS, "numpy", "seed"]:
        assert word in methods, word
    assert "http://" not in html and "https://" not in html
    assert html.index('id="cohort"') < html.index('id="pca"') < html.index('id="discrimination"') \
        < html.index('id="provenance"')
    assert "2024-05-01T12:00:00+00:00" in html
    assert "women" in html and "a" * 64 in html
    assert len(p.imgs) == len(FIGURES)
    for img in p.imgs:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG)
        assert img.get("alt")


def test_report_deterministic(results: RunResults, html: str) -> None:
    assert render_report(results) == html


def test_report_without_models_or_stats(results: RunResults) -> None:
    bare = dataclasses.replace(results, discrimination=None, severity=None, stratification=None,
                               stats=None, consensus=None, questionnaires=None,
                               questionnaire_summary=None, criteria=None, markers=pd.DataFrame(),
                               marker_formulas=pd.DataFrame(), methods=RunMethods(), provenance=None,
                               synthetic=False, cluster_values=None, cluster_of=None,
                               skipped={"discrimination": "only 2 'case' samples",
                                        "severity": "disabled in the study config"})
    html = render_report(bare)
    assert "not run" in html
    assert "SYNTHETIC DATA" not in html and "Research use only" in html
    for fid in ["fig-missingness", "fig-pca"]:
        assert f'id="{fid}"' in html
    for fid in ["fig-roc", "fig-volcano-all", "fig-pls", "fig-clusters"]:
        assert f'id="{fid}"' not in html
    for section in ["discrimination", "severity", "stratification", "volcano"]:
        block = html[html.index(f'<section id="{section}">'):]
        block = block[:block.index("</section>")]
        assert "Not run." in block
    assert "http://" not in html and "https://" not in html
    notes = html[html.index('<section id="notes">'):]
    notes = notes[:notes.index("</section>")]
    assert "Discrimination did not run: only 2 &#39;case&#39; samples." in notes
    block = html[html.index('<section id="discrimination">'):]
    assert "The discrimination model was not run: only 2 &#39;case&#39; samples." in block[:block.index(
        "</section>")]


def test_methods_name_every_model_and_leave_no_empty_placeholder(results: RunResults) -> None:
    from hikisig.report.methods import methods_paragraphs

    text = " ".join(methods_paragraphs(results))
    for needle in ["Discrimination: rf classifier, 5-fold stratified CV x 1 repeats",
                   "Severity: PLS regression", "Stratification: gmm clustering of cases",
                   "50 label permutations", "20 permutations of the score",
                   "over 5 bootstrap resamples", "log2(value) ~ group * sex + age",
                   "over 1000 bootstrap resamples of participants", "headline AUC",
                   "validated when", "random seed 0"]:
        assert needle in text, needle
    for empty in ["None", "nan", "()", "''", "  ", " .", " ,", "{", "}", "?"]:
        assert empty not in text, empty
    bare = dataclasses.replace(results, discrimination=None, severity=None, stratification=None,
                               stats=None, skipped={"severity": "disabled in the study config"})
    text = " ".join(methods_paragraphs(bare))
    assert "Discrimination: not run." in text
    assert "Severity: not run (disabled in the study config)." in text
    assert "Univariate statistics were not run." in text
    for empty in ["None", "nan", "()", "''", "  "]:
        assert empty not in text, empty

"""Analysis settings: every default, bound and allowed value, defined once.

The study config (one TOML file, :class:`StudyConfig`) is made of sections whose
pydantic fields hold each setting's default, its bounds and its meaning. Everything
else derives from them: the defaults of the Python API (``hikisig.discriminate``,
...), the command line's options and their bounds, the web app's analysis form, and
the commented starting config (:data:`DEFAULT_CONFIG`, rendered from the fields).

An unknown key is an error that suggests the nearest valid one.

Examples
--------
>>> StudyConfig().discriminate.cv_repeats
5
>>> field_bounds(DiscriminateSection, "cv_repeats")
(1, 50)
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hikisig.errors import HikisigError

__all__ = [
    "CLUSTER_METHODS",
    "DEFAULT_CONFIG",
    "DEFAULT_PREVALENCE",
    "DRIFTS",
    "ENGINES",
    "INPUT_SCALES",
    "MODELS",
    "MWU_METHODS",
    "NORMALISATIONS",
    "PERMUTATION_SCHEMES",
    "REPEATED_RULES",
    "SEVERITY_SCALINGS",
    "TESTS",
    "Design",
    "DiscriminateSection",
    "Preprocessing",
    "RunSection",
    "Screening",
    "SeveritySection",
    "Source",
    "StatsSection",
    "StratifySection",
    "StudyConfig",
    "config_sha256",
    "field_bounds",
    "load_config",
    "parse_overrides",
    "render_config",
    "validate_config",
]

Test = Literal["welch", "student", "mwu"]
Model = Literal["rf", "logistic", "plsda"]
PermutationScheme = Literal["oof", "refit"]
ClusterMethod = Literal["gmm", "kmeans", "ward"]
SeverityScaling = Literal["pareto", "auto", "centre"]
Engine = Literal["serial", "loky", "dask"]
InputScale = Literal["linear", "log10", "log2", "ln", "z"]
Repeated = Literal["first", "mean", "all"]
Drift = Literal["none", "loess"]
Normalise = Literal["none", "pqn", "total", "median"]
Arm = Literal["treated", "untreated", "control"]
Harmonise = Literal["none", "combat"]
CvScheme = Literal["stratified", "leave-site-out"]
MwuMethod = Literal["asymptotic", "exact"]

#: Two-group tests of the case-control statistics.
TESTS: tuple[str, ...] = get_args(Test)
#: Classifiers of the discrimination model.
MODELS: tuple[str, ...] = get_args(Model)
#: Permutation schemes of the discrimination model's AUC test.
PERMUTATION_SCHEMES: tuple[str, ...] = get_args(PermutationScheme)
#: Clustering methods of the stratification.
CLUSTER_METHODS: tuple[str, ...] = get_args(ClusterMethod)
#: Scalings of the severity (PLS) model.
SEVERITY_SCALINGS: tuple[str, ...] = get_args(SeverityScaling)
#: Compute engines (same results on each).
ENGINES: tuple[str, ...] = get_args(Engine)
#: Scales the stored values may be on.
INPUT_SCALES: tuple[str, ...] = get_args(InputScale)
#: Mann-Whitney p-value methods.
MWU_METHODS: tuple[str, ...] = get_args(MwuMethod)
#: How several samples of one participant enter the statistics and the stratification.
REPEATED_RULES: tuple[str, ...] = get_args(Repeated)
#: Drift corrections on QC samples.
DRIFTS: tuple[str, ...] = get_args(Drift)
#: Sample normalisations.
NORMALISATIONS: tuple[str, ...] = get_args(Normalise)
#: Hikikomori prevalence, Japan, ages 15-39 (Cabinet Office 2015): the default
#: population prevalence of PPV and NPV.
DEFAULT_PREVALENCE = 0.0157


def _f(default: Any, description: str, example: Any = None, **bounds: Any) -> Any:
    extra = {"example": example} if example is not None else None
    return Field(default=default, description=description, json_schema_extra=extra, **bounds)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Source(_Section):
    """Where the data come from: a store (``db`` + study name) or a table ``file``."""

    db: str | None = _f(None, "the store: SQLite path or postgresql://... (default hikisig.db "
                        "when no file is given)", example="hikisig.db")
    study: str | None = _f(None, "study in the store (default: the only one)", example="my-study")
    file: str | None = _f(None, "a table instead of the store (wide CSV/TSV/XLSX/Parquet, long, "
                          "W4M, CIMCB, h5ad)", example="cohort.csv")
    id_column: str | None = _f(None, "sample id column of the file (default: guessed)",
                               example="id")
    criteria: str | None = _f(None, "inputs of the 2020 criteria (see hikisig assess criteria); "
                              "default with a store: the criteria recorded at visits",
                              example="criteria.csv")
    interventions: str | None = _f(None, "intervention log (participant, kind, start, end, "
                                   "detail) for the follow-up; default with a store: the "
                                   "interventions recorded in it", example="interventions.csv")
    na_values: list[str] = _f([], "missing-value codes of the file, e.g. [\"-9\", \"-99\"] (the "
                              "usual ones such as NA and ND are always missing)")


class Design(_Section):
    """The columns of the design, by name. A column named here must exist in the data,
    except the defaults of ``covariates`` and ``severity``, used where present."""

    group: str = _f("group", "column with the group labels")
    case: str = _f("case", "label of cases (the positive class)")
    control: str = _f("control", "label of controls")
    sex: str | None = _f("sex", "statistics are run overall and within each sex; \"\" for none")
    covariates: list[str] = _f(["age"], "covariates of log2(value) ~ group * sex + covariates")
    participant: str | None = _f("participant", "participant column: a participant's samples "
                                 "stay in one CV fold; \"\" when each sample is a different "
                                 "participant")
    repeated: Repeated = _f("first", "participants with several samples: statistics and "
                            "stratification take the first (by visit), the mean, or all samples")
    severity: str | None = _f("hq25", "instrument (store) or column (file) used as severity")
    site: str | None = _f(None, "site column: a categorical covariate of the linear model, the "
                          "batch of ComBat and the unit of leave-site-out validation "
                          "(default: none)", example="site")
    matrix: str = _f("blood", "what was measured (blood, serum, plasma, urine, ...): titles the "
                     "report")
    instruments: list[str] = _f(["hq25", "phq9", "k6", "ucla3"], "questionnaires summarised in "
                                "the report")


class Preprocessing(_Section):
    """Steps before the analyses (the models add their own, fitted inside CV)."""

    max_missing: float = _f(0.5, "drop analytes missing in more than this share of samples",
                            ge=0, le=1)
    input_scale: InputScale = _f("linear", "or log10 / log2 / ln when the data are already "
                                 "logged (brought back to the linear scale), or z for values on "
                                 "an additive scale that may be negative (z-scores): no log, "
                                 "differences of means")
    sample_type: str = _f("sample_type", "column telling study, QC and blank samples apart")
    qc_label: str = _f("qc", "label of pooled QC samples in that column")
    blank_label: str = _f("blank", "label of blank samples in that column")
    batch: str = _f("batch", "batch column (drift correction within batch)")
    order: str = _f("injection_order", "injection order column (drift correction)")
    qc_rsd_max: float | None = _f(None, "drop analytes whose RSD over the QC samples exceeds "
                                  "this share", example=0.3, gt=0, le=10)
    drift: Drift = _f("none", "or loess: QC-based drift correction within batch")
    normalise: Normalise = _f("none", "or pqn, total, median: sample normalisation")
    harmonise: Harmonise = _f("none", "or combat: remove site (design.site) location and scale "
                              "differences by empirical Bayes, keeping the biological "
                              "covariates; fitted inside training folds in models")


class StatsSection(_Section):
    """Univariate case-control statistics."""

    enabled: bool = _f(True, "run the statistics")
    tests: list[Test] = _f(["welch", "mwu"], "welch, student, mwu")
    mwu_method: MwuMethod = _f("asymptotic", "or \"exact\" (small samples without ties)")


class DiscriminateSection(_Section):
    """Case vs control classifier."""

    enabled: bool = _f(True, "run the discrimination model")
    model: Model = _f("rf", "rf, logistic, plsda")
    cv_folds: int = _f(5, "folds of stratified cross-validation", ge=2, le=20)
    cv_repeats: int = _f(5, "repeats of the cross-validation", ge=1, le=50)
    cv: CvScheme = _f("stratified", "or leave-site-out: one fold per site (design.site), the "
                      "test of transportability")
    permutations: int = _f(1000, "label permutations for the AUC p-value", ge=0, le=10000)
    permutation_scheme: PermutationScheme = _f("oof", "oof (fast) or refit (slow, rigorous)")
    n_estimators: int = _f(200, "trees of the random forest", ge=10, le=2000)
    test_size: float | None = _f(None, "also hold out this share as a test set", example=0.25,
                                 gt=0, lt=1)
    inner_cv: bool = _f(False, "tune hyper-parameters by nested CV")
    recalibrate: bool = _f(False, "recalibrate probabilities (sigmoid) inside training folds")
    sensitivity_target: float = _f(0.9, "sensitivity of the second threshold rule", gt=0, le=1)


class SeveritySection(_Section):
    """PLS regression of the severity score."""

    enabled: bool = _f(True, "run the severity model")
    cases_only: bool = _f(True, "severity within cases, as in the study")
    scaling: SeverityScaling = _f("pareto", "pareto, auto, centre")
    max_components: int = _f(5, "largest number of PLS components tried", ge=1, le=20)
    cv_folds: int = _f(7, "folds of the cross-validation", ge=2, le=20)
    cv_repeats: int = _f(5, "repeats of the cross-validation", ge=1, le=50)
    cv: CvScheme = _f("stratified", "or leave-site-out: one fold per site (design.site)")
    permutations: int = _f(200, "permutations of the Q2 test", ge=0, le=10000)


class StratifySection(_Section):
    """Clustering of cases."""

    enabled: bool = _f(True, "run the stratification of cases")
    method: ClusterMethod = _f("gmm", "gmm, kmeans, ward")
    k: int | None = _f(None, "number of strata (default: chosen by BIC / silhouette)", example=2,
                       ge=2, le=20)
    bootstraps: int = _f(100, "bootstrap resamples for stability", ge=0, le=1000)


class FollowupSection(_Section):
    """Follow-up of participants with several visits (:mod:`hikisig.analysis.followup`)."""

    enabled: bool = _f(True, "run the follow-up when the data have more than one visit")
    model: Model = _f("rf", "classifier of the cross-fitted discrimination score")
    folds: int = _f(5, "participant folds of the cross-fitting (no participant is scored by a "
                    "model that saw them)", ge=2, le=20)
    n_estimators: int = _f(200, "trees of the random forest", ge=10, le=2000)
    z: float = _f(1.96, "reliable change: |change| > z x sqrt(2) x within-person SD", gt=0, le=5)
    reference_arms: list[Arm] = _f(["untreated", "control"], "arms whose repeat visits measure "
                                   "within-person variation (people without an intervention)")
    test_retest: str | None = _f(None, "a file of participant codes (column participant) whose "
                                 "repeat visits measure within-person variation instead",
                                 example="test_retest.csv")
    markers: int = _f(5, "derived markers and analytes drawn as trajectories", ge=0, le=50)
    mixed_model: bool = _f(True, "fit log2(value) ~ visit * arm + (1 | participant) per analyte")


class CompareSection(_Section):
    """Replication of a published signature (:mod:`hikisig.analysis.compare`)."""

    reference: str | None = _f(None, "published findings to compare with (e.g. setoyama2021); "
                               "default: no comparison", example="setoyama2021")


class Screening(_Section):
    """Population figures for prevalence-aware metrics."""

    prevalence: float = _f(DEFAULT_PREVALENCE, "population prevalence for PPV and NPV", gt=0, lt=1)
    prevalence_source: str = _f("hikikomori, Japan, ages 15-39 (Cabinet Office 2015)",
                                "where the prevalence comes from (shown beside every PPV/NPV)")


class RunSection(_Section):
    """Seed, engine, output."""

    seed: int = _f(2021, "seed of every random step", ge=0, le=2**31 - 1)
    engine: Engine = _f("serial", "serial, loky, dask (same results)")
    scheduler: str | None = _f(None, "an existing Dask cluster (engine = \"dask\")",
                               example="tcp://host:8786")
    workers: int | None = _f(None, "worker processes of loky or a local Dask cluster (default: "
                             "CPUs)", example=2, ge=1, le=1024)
    out: str = _f("hikisig-output", "output folder")


class StudyConfig(_Section):
    """A whole study config."""

    source: Source = Field(default_factory=Source)
    design: Design = Field(default_factory=Design)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    stats: StatsSection = Field(default_factory=StatsSection)
    discriminate: DiscriminateSection = Field(default_factory=DiscriminateSection)
    severity: SeveritySection = Field(default_factory=SeveritySection)
    stratify: StratifySection = Field(default_factory=StratifySection)
    followup: FollowupSection = Field(default_factory=FollowupSection)
    compare: CompareSection = Field(default_factory=CompareSection)
    screening: Screening = Field(default_factory=Screening)
    run: RunSection = Field(default_factory=RunSection)


def field_bounds(section: type[BaseModel], name: str) -> tuple[float | None, float | None]:
    """The inclusive (low, high) bounds of a numeric setting (None where unbounded).

    Strict bounds (``gt``/``lt``) are returned as they are; callers that need them
    inclusive check them through the config itself.

    Examples
    --------
    >>> field_bounds(StratifySection, "bootstraps")
    (0, 1000)
    """
    lo: Any = None
    hi: Any = None
    for m in section.model_fields[name].metadata:
        if isinstance(m, annotated_types.Ge | annotated_types.Gt):
            lo = m.ge if isinstance(m, annotated_types.Ge) else m.gt
        elif isinstance(m, annotated_types.Le | annotated_types.Lt):
            hi = m.le if isinstance(m, annotated_types.Le) else m.lt
    return (None if lo is None else float(lo) if isinstance(lo, float) else int(lo),
            None if hi is None else float(hi) if isinstance(hi, float) else int(hi))


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    current: Any = StudyConfig
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if hasattr(current, "model_fields") else None
        ann = getattr(field, "annotation", None)
        if not isinstance(ann, type) or not issubclass(ann, BaseModel):
            return []
        current = ann
    return list(current.model_fields) if hasattr(current, "model_fields") else []


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``section.key=value`` strings (values in TOML syntax, bare words as strings).

    Examples
    --------
    >>> parse_overrides(["discriminate.cv_repeats=2", "run.engine=loky"])
    {'discriminate.cv_repeats': 2, 'run.engine': 'loky'}
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise HikisigError(f"--set {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def _apply(data: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HikisigError(f"--set {dotted}: {part!r} is not a section")
        node[parts[-1]] = value


def validate_config(data: Mapping[str, Any], where: str = "config",
                    overrides: Mapping[str, Any] | None = None) -> StudyConfig:
    """A :class:`StudyConfig` from nested dicts (as read from TOML), with ``section.key``
    overrides applied first.

    Raises
    ------
    HikisigError
        Every invalid entry, one line each; an unknown key names the nearest valid one.

    Examples
    --------
    >>> validate_config({"run": {"seed": 7}}, overrides={"stats.tests": ["welch"]}).stats.tests
    ['welch']
    """
    raw = copy.deepcopy(dict(data))
    _apply(raw, overrides or {})
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            key = ".".join(str(x) for x in e["loc"])
            if e["type"] == "extra_forbidden":
                keys = _valid_keys(tuple(e["loc"]))
                near = difflib.get_close_matches(str(e["loc"][-1]), keys, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(keys)}"
                lines.append(f"{where}: unknown key {key!r}{hint}")
            else:
                lines.append(f"{where}: {key}: {e['msg']}")
        raise HikisigError("\n".join(lines)) from exc
    if config.source.file is None and config.source.db is None:
        config.source.db = "hikisig.db"
    return config


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None
                ) -> tuple[StudyConfig, str]:
    """Read and validate a study config; returns it and the file's sha256.

    ``overrides`` (``{"section.key": value}``) replace entries of the file; they are
    part of the recorded sha256.

    Raises
    ------
    HikisigError
        Unreadable TOML, or every invalid entry (an unknown key names the nearest
        valid one).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise HikisigError(f"{p}: file not found (write one with `hikisig config init`)") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HikisigError(f"{p}: not valid TOML: {exc}") from exc
    config = validate_config(data, str(p), overrides)
    if overrides:
        raw = raw + repr(sorted(overrides.items())).encode()
    return config, hashlib.sha256(raw).hexdigest()


def config_sha256(config: StudyConfig) -> str:
    """The sha256 of a config object (of its rendered TOML)."""
    return hashlib.sha256(render_config(config).encode()).hexdigest()


# -- the commented TOML -----------------------------------------------------------------------

def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def render_config(config: StudyConfig | None = None) -> str:
    """The config as commented TOML: every key with its value (or, where unset, a commented
    example) and what it means. ``render_config()`` is :data:`DEFAULT_CONFIG`.

    Examples
    --------
    >>> "cv_repeats = 5" in render_config()
    True
    >>> tomllib.loads(render_config())["run"]["seed"]
    2021
    """
    config = config or StudyConfig()
    lines = ["# hikisig study config. Every key is optional; the values shown are the defaults",
             "# unless this file was written for a study. Run with: hikisig run study.toml",
             "# [--out DIR] [--set section.key=value]"]
    for name in StudyConfig.model_fields:
        section: BaseModel = getattr(config, name)
        lines += ["", f"[{name}]"]
        entries = []
        for key, field in type(section).model_fields.items():
            value = getattr(section, key)
            if value is None:
                extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
                text = f"# {key} = {_toml(extra.get('example', ''))}"
            else:
                text = f"{key} = {_toml(value)}"
            entries.append((text, field.description or ""))
        width = max(len(t) for t, _ in entries)
        lines += [f"{t.ljust(width)}  # {d}" if d else t for t, d in entries]
    return "\n".join(lines) + "\n"


#: The commented starting config written by ``hikisig config init``.
DEFAULT_CONFIG = render_config()
